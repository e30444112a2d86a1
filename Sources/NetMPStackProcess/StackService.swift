import CNetMPChannel
import CNetMPLinux
import Glibc
import NetMPStack
import NetMPSystem
import NetMPWire
import Synchronization

/// The stack process's door (docs/STACK-SERVICE.md): an abstract Unix socket in the
/// stack's network namespace where programs attach. Each program that connects gets a
/// region of its own (a memfd), the cores' wake page and eventfds, and a names socket
/// through which it gives core 0 its doorbells' eventfds as it first polls them; every
/// core serves it from then on. When a program's connection closes (the program ended,
/// SIGKILL included), the stack closes what that process still held, as Linux closes a
/// dead process's sockets.
///
/// Everything here runs on one thread, the one that calls `serve` (other threads read only
/// the counters): the door is touched once per attach, join and hang-up, never per socket
/// or packet.
public final class StackService: @unchecked Sendable {
    public let stack: NetworkStack
    public let door: String
    let listener: Int32
    /// The uids whose programs may attach (the stack's own and root always may).
    let allowed: Set<uid_t>
    let log: Log
    /// A client: its region and the stack's side of it, and its processes' connections
    /// (the first process's, and one per forked process that joined).
    final class Client {
        let process: AttachedProcess
        let pid: Int32
        let uid: uid_t
        /// Set when the last connection closed while a forked child's number was still
        /// taken: the child's join may be on its way (daemon(): the parent ends right
        /// after fork), so the client waits for it until then.
        var waitingForChildUntil: Instant?
        /// Each live process's pid by its number (SO_PEERCRED of its connection; an exec
        /// keeps it), which `netmp stat` names a socket's holders by.
        var pids: [UInt32: Int32]
        init(process: AttachedProcess, pid: Int32, uid: uid_t) {
            self.process = process; self.pid = pid; self.uid = uid
            pids = [0: pid]
        }
    }
    /// By connection: the client and the number of the process at its other end.
    var clients: [Int32: (client: Client, process: UInt32)] = [:]
    var clientsByID: [UInt32: Client] = [:]
    /// Connections accepted whose hello has not come yet, with who they are and when the
    /// stack stops waiting for it: a program that connects and says nothing holds up no
    /// other.
    var greeting: [Int32: (pid: Int32, uid: uid_t, until: Instant)] = [:]
    static let helloWait = Interval.seconds(2)
    /// How long a client whose processes all ended waits for a forked child's join.
    static let joinWait = Interval.seconds(5)
    /// Faulty records a client may write before it is detached (`expel`). The library
    /// writes none: each one is a record of no known kind, a value out of range, or a
    /// name of what is not the client's, so a client past this is scribbling or hostile.
    public var faultLimit: UInt64 = 1000
    /// Writes the clients into the stack's stats page (`netmp stat` shows them).
    func publishClients() {
        guard let stats = stack.stats else { return }
        stats.publishClients(clientsByID.values.sorted { $0.process.id < $1.process.id }.map { client in
            (client.process.id, client.pid, client.uid, client.process.sockets.processNumbersTaken.nonzeroBitCount,
             client.process.sockets.inUse, client.process.faults.total)
        }, processes: clientsByID.values.flatMap { client in
            client.pids.sorted { $0.key < $1.key }.map { (client.process.id, $0.key, $0.value) }
        })
        published = MonotonicClock.now()
    }
    /// When the clients were last written (at most twice a second: counting a client's
    /// sockets scans its table).
    var published = Instant.zero

    /// Attaches since start, and clients gone since.
    let attachedCount = Atomic<Int>(0), departedCount = Atomic<Int>(0)
    public var attached: Int { attachedCount.load(ordering: .relaxed) }
    public var departed: Int { departedCount.load(ordering: .relaxed) }
    public var clientCount: Int { attached - departed }
    /// Forked processes that joined, and processes of a client gone while others stay.
    let joinedCount = Atomic<Int>(0), processesGoneCount = Atomic<Int>(0)
    /// Processes that exec'd a new program and resumed with the sockets they kept.
    let resumedCount = Atomic<Int>(0)
    public var resumed: Int { resumedCount.load(ordering: .relaxed) }
    public var joined: Int { joinedCount.load(ordering: .relaxed) }
    public var processesGone: Int { processesGoneCount.load(ordering: .relaxed) }
    /// Turns of the door thread done: a test that saw this move on twice knows that a
    /// whole turn (its checks of every client included) began after what it did before.
    let turnCount = Atomic<Int>(0)
    public var turns: Int { turnCount.load(ordering: .acquiring) }

    public enum ServiceError: Error, CustomStringConvertible {
        case door(String, errno: Int32)
        public var description: String {
            switch self {
            case .door(let name, let e):
                e == EADDRINUSE ? "a netmp stack already serves this TAP here (@\(name) is taken)"
                    : "cannot open the stack's door @\(name) (\(String(cString: strerror(e))))"
            }
        }
    }

    /// `door`: the name to serve at (tests; the TAP's door by default). `listener`: the
    /// door, when the caller claimed it before starting the stack (`claim`).
    public init(stack: NetworkStack, door: String? = nil, listener: Int32? = nil, allowing uids: Set<uid_t> = [],
                log: Log) throws(ServiceError) {
        self.stack = stack
        self.log = log
        self.door = door ?? StackDoor.name(tap: stack.configuration.tapName)
        if let listener { self.listener = listener } else { self.listener = try Self.claim(self.door) }
        allowed = uids.union([getuid(), 0])
        _ = netmp_raise_descriptor_limit() // one eventfd per polled socket of every client
    }

    /// The door `name`, listening (programs that connect wait until it is served). Claimed
    /// before the stack opens its TAP and given up after the stack has let go of it, so
    /// the door is the TAP's lock: of two stacks starting at once one gets EADDRINUSE and
    /// never touches the TAP, and a stack that starts as another stops finds the TAP free.
    public static func claim(_ name: String) throws(ServiceError) -> Int32 {
        let fd = netmp_attach_listen(name)
        guard fd >= 0 else { throw .door(name, errno: -fd) }
        return fd
    }

    /// Why `serve` returned.
    public enum Ending: Equatable { case stopped, asked, idle }
    /// Set when a `netmp down` asked the stack to stop.
    var stopAsked = false
    /// The capture running (one at a time), and the connection of the `netmp capture` that
    /// asked for it (nil for the stack's own, NETMP_CAPTURE, which runs to the stack's end).
    var capture: (asker: Int32?, session: CaptureSession)?
    /// Since when no program has been attached or attaching (nil while one is).
    var idleSince: Instant?

    /// The door and the connections close; the clients' sockets are left to the stack,
    /// which may have stopped already (a stack that stops takes everything with it).
    deinit { closeDoor() }

    /// The connections and the door close, once.
    func closeDoor() {
        guard !closed else { return }
        for fd in Array(clients.keys) + Array(greeting.keys) { close(fd) }
        clients = [:]
        greeting = [:]
        close(listener)
        closed = true
    }
    var closed = false

    /// Serves attaches, doorbells and hang-ups until `stop` says so (looked at every
    /// `tick` milliseconds at least), a `netmp down` asks, or, with `idle`, until no
    /// program has been attached for that long and every connection has delivered what
    /// was written on it (a stack started for a program ends after its last one).
    @discardableResult
    public func serve(tick: Int32 = 200, exitIdleAfter idle: Interval? = nil, until stop: () -> Bool) -> Ending {
        while true {
            if stop() { return .stopped }
            if stopAsked { return .asked }
            turn(timeout: tick)
            guard let idle, clientsByID.isEmpty, greeting.isEmpty else { idleSince = nil; continue }
            let now = MonotonicClock.now()
            let since = idleSince ?? now
            idleSince = since
            if now >= since + idle && stack.connectionsStillSending == 0 { return .idle }
        }
    }

    /// The stack's end: every core stops and the TAP's queues are detached first, then the
    /// door closes (programs waiting at it see it reset and try again: a stack of theirs
    /// may start only once this one has let go of the TAP).
    public func end() {
        endCapture()
        try? stack.device?.setQueuesEnabled(false)
        stack.stop()
        closeDoor()
    }

    /// One wait for the door and the clients' connections, and what they say.
    public func turn(timeout: Int32) {
        var watched = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
        for fd in Array(clients.keys) + Array(greeting.keys) { watched.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
        if let asker = capture?.asker { watched.append(pollfd(fd: asker, events: Int16(POLLIN), revents: 0)) }
        // A capture's limit is noticed within a tenth of a second.
        let waiting = !greeting.isEmpty || capture != nil || clientsByID.values.contains { $0.waitingForChildUntil != nil }
        let wait = waiting ? min(timeout, 100) : timeout
        if poll(&watched, nfds_t(watched.count), wait) > 0 {
            for entry in watched where entry.revents != 0 {
                if entry.fd == listener { admit() }
                else if greeting[entry.fd] != nil { greet(entry.fd) }
                else if entry.fd == capture?.asker { endCapture() }
                else { hear(entry.fd) }
            }
        }
        if capture?.session.hasEnded == true { endCapture() }
        for client in clientsByID.values where client.process.faults.total > faultLimit { expel(client) }
        defer { turnCount.add(1, ordering: .releasing) }
        let now = MonotonicClock.now()
        if now >= published + .milliseconds(500) { publishClients() }
        for client in clientsByID.values {
            guard let until = client.waitingForChildUntil, until < now else { continue }
            log.info("stack: client \(client.process.id): a forked child never joined")
            depart(client)
        }
        for (fd, waiting) in greeting where waiting.until < now {
            log.info("stack: process \(waiting.pid) connected and said nothing")
            greeting[fd] = nil
            refuse(fd, EPROTO)
        }
    }

    /// Every program waiting at the door; its hello comes next (`greet`).
    func admit() {
        while true {
            var uid: UInt32 = 0, pid: Int32 = 0
            let fd = netmp_attach_accept(listener, &uid, &pid)
            guard fd >= 0 else { return }
            greeting[fd] = (pid, uid, MonotonicClock.now() + Self.helloWait)
        }
    }

    /// A connection's first message: a hello this stack understands from a uid it
    /// serves is welcomed, anything else refused.
    func greet(_ fd: Int32) {
        guard let (pid, uid, _) = greeting.removeValue(forKey: fd) else { return }
        // Room for the largest hello (a capture's, which brings its output's descriptor).
        var request = netmp_capture_request()
        var given: Int32 = -1
        var count: Int32 = 0
        let received = netmp_message_receive(fd, &request, Int32(MemoryLayout<netmp_capture_request>.size), &given, 1, &count)
        let output: Int32? = count > 0 ? given : nil
        let hello = request.hello
        let expected = Int32(hello.request) == NETMP_HELLO_CAPTURE ? MemoryLayout<netmp_capture_request>.size
                                                                    : MemoryLayout<netmp_attach_hello>.size
        guard received == expected, hello.version == UInt32(NETMP_ATTACH_VERSION) else {
            if let output { close(output) }
            log.info("stack: process \(pid) connected without a hello this stack understands")
            return refuse(fd, EPROTO)
        }
        if Int32(hello.request) == NETMP_HELLO_CAPTURE { return startCapture(fd, request, output: output, pid: pid, uid: uid) }
        if let output { close(output) }
        guard allowed.contains(uid) else {
            log.info("stack: process \(pid) of uid \(uid) may not attach (allowed: \(allowed.sorted()))")
            return refuse(fd, EACCES)
        }
        switch Int32(hello.request) {
        case NETMP_HELLO_ATTACH: return welcome(fd, pid: pid, uid: uid)
        case NETMP_HELLO_JOIN: break
        case NETMP_HELLO_STOP:
            // Only the stack's own uid and root stop it (--allow-uid admits programs, not this).
            guard uid == getuid() || uid == 0 else {
                log.info("stack: process \(pid) of uid \(uid) asked the stack to stop; refused")
                return refuse(fd, EACCES)
            }
            log.info("stack: process \(pid) asked the stack to stop")
            stopAsked = true
            return refuse(fd, 0) // the answer: done
        default:
            log.info("stack: process \(pid) sent a hello with request \(hello.request)")
            return refuse(fd, EPROTO)
        }
        // A forked process of a client, under the number its parent took for it. Only a
        // process of the client's own uid joins it (a child keeps its parent's uid unless
        // it changed it, and then it is another principal).
        guard let client = clientsByID[hello.client], client.uid == uid,
              client.process.sockets.processNumberTaken(hello.process) else {
            log.info("stack: process \(pid) asked to join client \(hello.client) as \(hello.process); refused")
            return refuse(fd, EPROTO)
        }
        clients[fd] = (client, hello.process)
        client.pids[hello.process] = pid
        client.waitingForChildUntil = nil
        joinedCount.wrappingAdd(1, ordering: .relaxed)
        log.debug("stack: process \(pid) joined client \(hello.client) as process \(hello.process)")
    }

    /// A reply that says `error` (0: done), and the connection closed.
    func refuse(_ fd: Int32, _ error: Int32) {
        var reply = netmp_attach_reply()
        reply.version = UInt32(NETMP_ATTACH_VERSION)
        reply.error = error
        _ = netmp_message_send(fd, &reply, Int32(MemoryLayout<netmp_attach_reply>.size), nil, 0)
        close(fd)
    }

    func welcome(_ fd: Int32, pid: Int32, uid: uid_t) {
        let process: AttachedProcess
        do { process = try stack.attachProcess(privileged: Self.mayBindPrivilegedPorts(pid: pid, uid: uid), uid: uid) } catch {
            log.error("stack: cannot attach process \(pid): \(error)")
            return refuse(fd, ENOMEM)
        }
        guard let regionFD = process.region.descriptor, let page = stack.wakePageDescriptor else {
            stack.detach(client: process.id, closing: true)
            return refuse(fd, ENOMEM)
        }
        var reply = answer(client: process.id, process: 0)
        process.sockets.addProcessNumber(0)
        let fds = [regionFD, page, process.names] + process.bells
        let sent = netmp_message_send(fd, &reply, Int32(MemoryLayout<netmp_attach_reply>.size), fds, Int32(fds.count))
        close(process.names) // the client's end is the client's now (core 0 holds the other)
        guard sent >= 0 else {
            log.info("stack: process \(pid) left before its answer")
            stack.detach(client: process.id, closing: true)
            close(fd)
            return
        }
        let client = Client(process: process, pid: pid, uid: uid)
        clients[fd] = (client, 0)
        clientsByID[process.id] = client
        attachedCount.wrappingAdd(1, ordering: .relaxed)
        publishClients() // at once: `netmp stat PID` of the program finds its stack by it
        log.info("stack: process \(pid) (uid \(uid)) attached as client \(process.id)")
    }

    /// The reply to an attach (or a resume after exec): the client's and process's numbers,
    /// the cores, the TCP defaults and the configuration lines.
    func answer(client: UInt32, process: UInt32) -> netmp_attach_reply {
        var reply = netmp_attach_reply()
        reply.version = UInt32(NETMP_ATTACH_VERSION)
        reply.client = client
        reply.cores = UInt32(stack.cores)
        reply.send_buffer = UInt32(stack.tcpConfiguration.sendBufferSize)
        reply.receive_buffer = UInt32(stack.tcpConfiguration.receiveBufferSize)
        reply.maximum_segment = UInt32(stack.tcpConfiguration.maximumSegmentSize)
        reply.process = process
        let lines = Array(stack.configuration.environmentLines.utf8.prefix(MemoryLayout.size(ofValue: reply.configuration) - 1))
        withUnsafeMutableBytes(of: &reply.configuration) { $0.copyBytes(from: lines) }
        return reply
    }

    /// Whether the program may bind ports below ip_unprivileged_port_start: root, or
    /// CAP_NET_BIND_SERVICE among its effective capabilities (read once, at attach, as
    /// /proc says them; a program whose status cannot be read is not privileged).
    static func mayBindPrivilegedPorts(pid: Int32, uid: uid_t) -> Bool {
        uid == 0 || Capability.netBindService.isEffective(in: String(pid))
    }

    /// A client's connection said something or closed. A process says nothing after its
    /// hello (its doorbells' names go to core 0 through the names socket) but a resume
    /// after exec; anything else is dropped; the close is its end.
    func hear(_ fd: Int32) {
        guard let (client, number) = clients[fd] else { return }
        let capacity = MemoryLayout<netmp_attach_hello>.size + 4 * Int(NETMP_RESUME_SLOTS)
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        defer { bytes.deallocate() }
        while true {
            var given: [Int32] = Array(repeating: -1, count: 8)
            var count: Int32 = 0
            let received = netmp_message_receive(fd, bytes, Int32(capacity), &given, 8, &count)
            if received == -EAGAIN || received == -EWOULDBLOCK { return }
            guard received > 0 else {
                clients[fd] = nil
                close(fd)
                processGone(client, number)
                guard !clients.values.contains(where: { $0.client === client }) else { return }
                // A child whose number its parent took may not have joined yet.
                if client.process.sockets.processNumbersTaken == 0 { return depart(client) }
                client.waitingForChildUntil = MonotonicClock.now() + Self.joinWait
                return
            }
            for descriptor in given.prefix(Int(max(0, count))) { close(descriptor) }
            let hello = MemoryLayout<netmp_attach_hello>.size
            if Int(received) >= hello, (Int(received) - hello) % 4 == 0,
               bytes.loadUnaligned(as: netmp_attach_hello.self).version == UInt32(NETMP_ATTACH_VERSION),
               bytes.loadUnaligned(as: netmp_attach_hello.self).request == UInt32(NETMP_HELLO_RESUME) {
                let kept = Set((0..<(Int(received) - hello) / 4).map { bytes.loadUnaligned(fromByteOffset: hello + 4 * $0, as: UInt32.self) })
                resume(fd, client, number, keeping: kept)
                continue
            }
            log.info("stack: client \(client.process.id) (process \(client.pid)) sent a message on its connection; dropped")
        }
    }

    /// Process `number` of `client` exec'd a new program, which kept the sockets whose
    /// doorbell slots are `kept` (their descriptors were not close-on-exec) and asks for
    /// the client's memory again: what it no longer holds is let go, as at a process's end,
    /// and it gets the attach answer again (its names socket survived the exec).
    func resume(_ fd: Int32, _ client: Client, _ number: UInt32, keeping kept: Set<UInt32>) {
        dropHolds(client, number, except: kept)
        guard let regionFD = client.process.region.descriptor, let page = stack.wakePageDescriptor else {
            var refusal = answer(client: client.process.id, process: number)
            refusal.error = ENOMEM
            _ = netmp_message_send(fd, &refusal, Int32(MemoryLayout<netmp_attach_reply>.size), nil, 0)
            return
        }
        var reply = answer(client: client.process.id, process: number)
        let fds = [regionFD, page] + client.process.bells
        _ = netmp_message_send(fd, &reply, Int32(MemoryLayout<netmp_attach_reply>.size), fds, Int32(fds.count))
        resumedCount.wrappingAdd(1, ordering: .relaxed)
        log.info("stack: process \(number) of client \(client.process.id) exec'd a new program; it kept \(kept.count) sockets")
    }

    /// A client that keeps writing faulty records is detached, as docs/STACK-SERVICE.md
    /// (Distrust) says: its processes' connections close, so its library finds the stack
    /// gone and every call fails from then on (ECONNRESET, ENETDOWN), and every core closes
    /// what it held, as when it ends. Other clients never notice.
    func expel(_ client: Client) {
        log.error("stack: client \(client.process.id) (process \(client.pid)) wrote \(client.process.faults.total) "
                  + "faulty records; detached")
        for (fd, entry) in clients where entry.client === client {
            clients[fd] = nil
            close(fd)
        }
        depart(client)
    }

    /// The last connection of a client closed: every core closes what it held.
    func depart(_ client: Client) {
        stack.detach(client: client.process.id, closing: true)
        clientsByID[client.process.id] = nil
        departedCount.wrappingAdd(1, ordering: .relaxed)
        publishClients()
        log.info("stack: client \(client.process.id) (process \(client.pid)) is gone; its sockets are closed")
    }

    /// Process `number` of a client ended (its connection closed): it holds nothing now,
    /// and the sockets no other process holds close, as the kernel closes a socket when
    /// its last process ends. Its number is free again after. (When it was the client's
    /// last process, `depart` closes the rest.)
    func processGone(_ client: Client, _ number: UInt32) {
        let closed = dropHolds(client, number, except: [])
        client.process.sockets.freeProcessNumber(number)
        client.pids[number] = nil
        processesGoneCount.wrappingAdd(1, ordering: .relaxed)
        log.info("stack: process \(number) of client \(client.process.id) is gone; \(closed) sockets only it held close")
    }

    /// Process `number` of `client` holds none of its sockets but those of the doorbell
    /// slots `kept`: the sockets no other process holds close. How many closed.
    @discardableResult
    func dropHolds(_ client: Client, _ number: UInt32, except kept: Set<UInt32>) -> Int {
        let sockets = client.process.sockets
        let named = sockets.namedSlots()
        var lastHeld: Set<UInt32> = []
        for doorbell in Set(named.map(\.doorbell)) where !kept.contains(doorbell) {
            let (held, othersHold) = sockets.dropHolder(number, from: doorbell)
            if held && !othersHold { lastHeld.insert(doorbell) }
        }
        var standing = sockets.unnamedChannelsByDoorbell()
        dropFresh(client, number, except: kept.union(named.map(\.doorbell)), standing: &standing)
        // A socket that started over after a failed connect whose old name is still in its
        // first slot: its new channel stands on that doorbell, unnamed.
        for doorbell in lastHeld { dropStanding(on: doorbell, of: client, from: &standing) }
        let ending = named.filter { lastHeld.contains($0.doorbell) }
        guard !ending.isEmpty else { return 0 }
        // The ports connections' binds took, which their close would have given back (a
        // listener's goes back as core 0 stops it, ProtocolLoop.close(_:of:)).
        for entry in ending where entry.kind == .stream { releaseBoundPort(of: entry.slot, client) }
        stack.close(ending.map { SocketHandle(slot: $0.slot, generation: sockets.generationOf($0.slot)) }, of: client.process.id)
        // No process closes these now: the last holder ended without closing, and a process
        // that closed its descriptor while others held the socket keeps its view without
        // ever letting it go (SocketCalls' close). So the hold the application's view had
        // goes here, as its close would have let it go: the named slot's (a connection's
        // channel, a listener's queues, a UDP socket's channel) and, when the doorbell is in
        // another slot, that one's (a listener's own channel, a connection's first slot after
        // a failed connect). The slots come back once the cores' views end too.
        for entry in ending {
            sockets.letGo(entry.slot)
            if entry.doorbell != entry.slot { sockets.letGo(entry.doorbell) }
        }
        return ending.count
    }

    /// The sockets process `number` held that were never connected or listening (no
    /// socket is named in their slots, so no core has a view of them) and that no other
    /// process holds: their slots go back, as the application's close would have let
    /// them go, and so does a port their bind took (if the client holds it: the word is
    /// the client's to write). A socket whose connect failed stands on its first slot's
    /// doorbell with a channel of its own; that channel holds the bind's port then.
    /// `spared`: doorbells of named sockets and the slots an exec kept; `standing`:
    /// `SocketTable.unnamedChannelsByDoorbell`, less what went.
    func dropFresh(_ client: Client, _ number: UInt32, except spared: Set<UInt32>, standing: inout [UInt32: [UInt32]]) {
        let sockets = client.process.sockets
        for doorbell in sockets.unnamedSlots(heldBy: number) where !spared.contains(doorbell) {
            let (held, othersHold) = sockets.dropHolder(number, from: doorbell)
            guard held && !othersHold else { continue }
            if !dropStanding(on: doorbell, of: client, from: &standing) { releaseBoundPort(of: doorbell, client) }
            sockets.letGo(doorbell)
        }
    }

    /// The unnamed channels that stand on `doorbell` (a socket fresh again after a failed
    /// connect) go, with the ports their binds took; whether there were any (then the
    /// doorbell's own slot holds a stale bind: its channel was the failed one).
    @discardableResult
    func dropStanding(on doorbell: UInt32, of client: Client, from standing: inout [UInt32: [UInt32]]) -> Bool {
        let sockets = client.process.sockets
        let channels = standing.removeValue(forKey: doorbell) ?? []
        for slot in channels {
            releaseBoundPort(of: slot, client)
            sockets.letGo(slot)
        }
        return !channels.isEmpty
    }

    /// The port the bind of the socket whose channel is in `slot` took, as the application
    /// recorded it, goes back, if the client holds it (the word is the client's to write).
    func releaseBoundPort(of slot: UInt32, _ client: Client) {
        guard let (port, families) = client.process.sockets.boundPort(slot) else { return }
        stack.portTable.release(port, families: families, ifHeldBy: client.process.id)
    }
}
