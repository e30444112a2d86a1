import CNetMPChannel
import CNetMPLinux
import Glibc
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire
import Synchronization

/// An application's side of the stack: its region (socket table, reply slots, one request
/// ring per core), what it must know of the stack (its address and routes, the TCP
/// defaults, how many cores and which owns a 4-tuple) and how to wake a core. Sockets are
/// made on a client and touch nothing else: they name their slots in its table and send
/// every request through its rings. It is what the client library holds once attached to
/// the stack process (docs/STACK-SERVICE.md); a stack in a test's own process has one too,
/// its `primary`.
public final class StackClient: @unchecked Sendable {
    /// The client's number on the cores (the messages that set its sockets up name it).
    public let id: UInt32
    public let region: ClientRegion
    public let sockets: SocketTable
    public let replies: ReplyBoard
    let requests: [RequestRing]
    public let configuration: StackConfiguration
    /// The subnet's IPv4 broadcast address, and the link's MTU: read at every datagram sent,
    /// where a copy of `configuration` (a struct holding arrays) would retain and release them.
    public let subnetBroadcast: IPv4Address
    public let mtu: Int
    /// The TCP options a new stream socket starts with (shared by every socket that keeps them).
    public let tcpDefaults: TCPSettings
    public var tcpConfiguration: TCPConfiguration { tcpDefaults.configuration }
    public let steering: FlowSteering
    /// The interface's routes, for calls that must fail at once without a route (ENETUNREACH).
    public let routes: RoutingTable
    public var cores: Int { requests.count }
    /// How to wake each core after a record (its sleep announcement and eventfd).
    let wakers: [CoreWaker]
    /// The eventfd this client writes to wake each core: in the stack service its own
    /// bells, which no other client holds.
    public var bells: [Int32] { wakers.map(\.eventfd) }
    let nextCore = AtomicCounter()
    /// A client of the stack service: this process's connection to the stack (when it
    /// ends, the stack closes the sockets no other process of the client holds), -1
    /// in-process. A forked child replaces it with one of its own (`joinAfterFork`).
    final class Connection: Sendable {
        let fd: Atomic<Int32>
        init(_ fd: Int32) { self.fd = Atomic(fd) }
    }
    let connectionBox: Connection
    public var connection: Int32? {
        let fd = connectionBox.fd.load(ordering: .acquiring)
        return fd >= 0 ? fd : nil
    }
    /// This process's number in the client (its bit in a socket's holders); a forked child
    /// gets its own. Changed only in a child right after fork, while it has one thread.
    public nonisolated(unsafe) var process: UInt32 = 0
    /// Attached: copies of the files this process named, for later sockets in their slots.
    let namedFiles: NamedDoorbellFiles?
    /// Attached: the eventfd in every placeholder of this process (Doorbell), which the
    /// application side rings for changes it makes itself (a listener closed under a
    /// poller, a shutdown for reading, the stack's end): it keeps no copy of a socket's own
    /// bell. It wakes every poller of the process, each of which looks and sleeps again.
    /// Inherited by a forked child with the placeholders; never emptied.
    public let commonBell: Int32

    /// A new socket's doorbell (its descriptor `fd`) stands on a file the stack already
    /// rings for its slot when this process kept one (NamedDoorbellFiles); true when so.
    public func adoptNamedFile(into fd: Int32, cloexec: Bool, for doorbell: Doorbell) -> Bool {
        namedFiles?.adopt(into: fd, cloexec: cloexec, for: doorbell) ?? false
    }

    /// The descriptor for a new socket whose doorbell is `doorbell` (nil: it has none yet, a
    /// UDP socket before bind): a copy of the file this process kept for its slot
    /// (NamedDoorbellFiles), else a new placeholder; -errno.
    public func placeholder(cloexec: Bool, for doorbell: Doorbell?) -> Int32 {
        doorbell.flatMap { namedFiles?.copy(cloexec: cloexec, for: $0) } ?? netmp_placeholder(cloexec ? 1 : 0)
    }

    /// The descriptors the attachment lives on (connection, names socket, the cores'
    /// eventfds, the region's and the wake page's memfds), which a program's close_range
    /// must not take: sorted.
    public var ownDescriptors: [Int32] {
        var own: [Int32] = []
        _ = anyOwnDescriptor { own.append($0); return false }
        return own.sorted()
    }

    /// The cores' wake page as this client mapped it (read-only), nil in the stack's own process.
    public var wakePage: CoreWakePage? { ownsWakers ? wakers.first?.page as? CoreWakePage : nil }

    /// Whether `fd` is one of them: asked at every close of a descriptor that is not a
    /// netmp socket, so it allocates nothing.
    public func isOwnDescriptor(_ fd: Int32) -> Bool { anyOwnDescriptor { $0 == fd } }

    /// Calls `body` with each descriptor the attachment lives on until it returns true.
    private func anyOwnDescriptor(_ body: (Int32) -> Bool) -> Bool {
        guard ownsWakers else { return false }
        if let fd = connection, body(fd) { return true }
        if let fd = names, body(fd) { return true }
        if let fd = region.descriptor, body(fd) { return true }
        if let fd = wakePage?.descriptor, body(fd) { return true }
        if commonBell >= 0, body(commonBell) { return true }
        for waker in wakers where body(waker.eventfd) { return true }
        return false
    }

    /// The program closes descriptors `first` to `last` (close, dup2 over one,
    /// close_range): kept copies among them are forgotten.
    public func descriptorsClosing(_ first: UInt32, _ last: UInt32) {
        guard let files = namedFiles, files.kept.load(ordering: .relaxed) > 0 else { return }
        let end = min(last, UInt32(NamedDoorbellFiles.numbers - 1))
        guard first <= end else { return }
        for number in first...end { files.closing(Int32(number)) }
    }

    /// Attached: the names socket (the doorbells' eventfds go to the stack through it).
    let namesBox: Connection
    public var names: Int32? {
        let fd = namesBox.fd.load(ordering: .acquiring)
        return fd >= 0 ? fd : nil
    }
    /// The stack's door, for a forked child's own connection.
    let door: String?
    /// Set when the stack's process ended (`stackEnded`): calls fail at once from then on.
    let gone = Atomic<Bool>(false)
    public var stackGone: Bool { gone.load(ordering: .acquiring) }

    /// `names`: attached, the client's names socket (its doorbells' eventfds go to core 0
    /// through it). A client in the stack's own process (NetMPInProcess) has none of the three.
    public init(id: UInt32, region: ClientRegion, configuration: StackConfiguration, tcpConfiguration: TCPConfiguration,
         steering: FlowSteering, wakers: [CoreWaker], connection: Int32? = nil, names: Int32? = nil, door: String? = nil) {
        self.id = id
        self.region = region
        connectionBox = Connection(connection ?? -1)
        self.door = door
        let namesBox = Connection(names ?? -1)
        self.namesBox = namesBox
        ownsWakers = names != nil
        var naming: (@Sendable (UInt32, Int32, UInt32) -> Bool)? = nil
        let files = names != nil ? NamedDoorbellFiles(capacity: region.capacity) : nil
        namedFiles = files
        commonBell = names != nil ? netmp_move_high(netmp_eventfd()) : -1
        if let files, let core0 = wakers.first {
            // A name, then the count, then core 0 woken if it sleeps: it takes the names on
            // its next turn. A copy of the placeholder is kept for the slot's next socket.
            naming = { slot, placeholder, count in
                guard StackClient.name(doorbell: slot, placeholder: placeholder, on: namesBox.fd.load(ordering: .acquiring)) else { return false }
                region.countNamePending()
                core0.wakeIfSleeping()
                files.keep(placeholder, for: slot, count: count)
                return true
            }
        }
        sockets = SocketTable(region: region, namingDoorbell: naming)
        replies = ReplyBoard(in: region)
        requests = (0..<region.cores).map { RequestRing(in: region, core: $0) }
        self.configuration = configuration
        subnetBroadcast = IPv4Address(configuration.address.value | ~IPv4Address.mask(prefixLength: configuration.prefixLength))
        mtu = configuration.mtu
        tcpDefaults = TCPSettings(tcpConfiguration)
        self.steering = steering
        routes = RoutingTable(interface: configuration.address, prefixLength: configuration.prefixLength,
                              gateway: configuration.gateway)
        self.wakers = wakers
    }

    /// Attached: the bells were received for this client alone (in a stack's own process
    /// they are the ports' eventfds).
    let ownsWakers: Bool
    deinit {
        guard ownsWakers else { return }
        hangUp()
        for waker in wakers { _ = netmp_close_descriptor(waker.eventfd) }
        if commonBell >= 0 { _ = netmp_close_descriptor(commonBell) }
    }

    /// The core an unbound connect (or a UDP socket's sends) starts on: the cores in turn,
    /// so connections spread even when one thread opens them all.
    func coreForNewConnection() -> Int { nextCore.increment() % cores }

    /// Sends a usrreq record to core `core` and wakes the core if it sleeps; a full ring
    /// (the core far behind) is waited out, yielding the CPU, rather than a usrreq lost.
    /// From the record's place to its publication no signal handler runs (withSignalsDeferred):
    /// one that jumped out would leave an unpublished record the core waits behind forever.
    func request(_ request: Request, to core: Int) {
        withSignalsDeferred {
            while !requests[core].send(request) { sched_yield() }
            wakers[core].wakeIfSleeping()
        }
    }

    /// Sends `request` as a client that writes its own records would (tests of what the
    /// stack does with records it did not expect), and waits for the core's answer.
    public func askForTesting(_ request: Request) { onEveryCore(request) }

    /// Writes `count` copies of `request` to the core its handle names, one reply slot
    /// named by all and no answer awaited, as a client flooding its ring would.
    public func floodForTesting(_ request: Request, count: Int) {
        var request = request
        request.reply = replies.take()
        for _ in 0..<count { self.request(request, to: Int(request.handle.slot) % requests.count) }
    }

    /// bind()'s address rules, as Linux's inet_bind and inet6_bind check them: one of the
    /// stack's own addresses or a wildcard (0.0.0.0; for an IPv6 socket :: or, unless
    /// v6-only, an IPv4 address mapped).
    /// `groupsAllowed`: a UDP socket may bind an IPv4 group or broadcast address too, and
    /// then takes only datagrams sent to it (RTN_MULTICAST and RTN_BROADCAST pass inet_bind).
    func checkBindAddress(_ address: IPAddress, family: SocketFamily, v6Only: Bool, groupsAllowed: Bool = false) throws(SocketError) {
        if let v4 = address.v4 {
            // A mapped address on a v6-only socket is EINVAL.
            if family == .ipv6 && v6Only { throw SocketError.invalidArgument }
            let group = groupsAllowed && (v4.isMulticast || v4.isLimitedBroadcast || v4 == subnetBroadcast)
            guard v4.isUnspecified || v4 == configuration.address || group else { throw SocketError.addressNotAvailable }
        } else {
            guard family == .ipv6 else { throw SocketError.familyNotSupported }
            guard address.bits.isUnspecified || configuration.holds(address.bits) else { throw SocketError.addressNotAvailable }
        }
    }

    /// bind(): a port of the stack's (0: an ephemeral one), in UDP's namespace or TCP's,
    /// in the namespaces of `families` (`FamilyPort`). The port tables are the stack's, not
    /// any one client's, so the answer is the core's.
    func reservePort(_ port: UInt16, datagram: Bool, families: AddressFamilies, shared: Bool = false,
                     reuseAddress: Bool = false) -> Result<UInt16, SocketError> {
        let (error, reserved) = askForPort(.reservePort, port, datagram: datagram, families: families, shared: shared,
                                           reuseAddress: reuseAddress)
        return error == 0 ? .success(reserved) : .failure(SocketError(error))
    }

    /// The port goes back (before the call returns, so a bind right after finds it free).
    func releasePort(_ port: UInt16, datagram: Bool, families: AddressFamilies) {
        _ = askForPort(.releasePort, port, datagram: datagram, families: families)
    }

    func askForPort(_ kind: Request.Kind, _ port: UInt16, datagram: Bool, families: AddressFamilies,
                    shared: Bool = false, reuseAddress: Bool = false) -> (error: Int32, port: UInt16) {
        if stackGone { return (ENETDOWN, 0) }
        var request = Request(kind, SocketHandle(slot: 0, generation: 0))
        request.localPort = port
        request.datagram = datagram
        request.shared = shared
        request.reuseAddress = reuseAddress
        request.families = families
        return ask(request, to: Int(port) % requests.count) { answer in
            guard answer.count >= MemoryLayout<netmp_port_reply>.size else { return (EIO, 0) }
            let reply = answer.load(as: netmp_port_reply.self)
            return (reply.error, UInt16(truncatingIfNeeded: reply.port))
        }
    }

    /// Sends a request that sets a socket up (or takes it down) on every core to the core
    /// its slot hashes to, and waits until every core has: listen, stop listening, UDP
    /// bind and unbind.
    func onEveryCore(_ request: Request) {
        ask(request, to: Int(request.handle.slot) % requests.count) { _ in () }
    }

    /// Sends `request` to core `core` naming a reply slot of its own, waits for the core's
    /// answer and hands its bytes to `read`.
    func ask<T>(_ request: Request, to core: Int, _ read: (UnsafeRawBufferPointer) -> T) -> T {
        if stackGone { return read(UnsafeRawBufferPointer(start: nil, count: 0)) }
        var request = request
        request.reply = replies.take()
        self.request(request, to: core)
        return replies.awaitAnswer(request.reply, read)
    }
}

extension StackClient {
    /// The stack's process ended (its connection hung up): nothing will answer a record
    /// again. Every connection of the client fails with ECONNRESET, as the kernel's would
    /// if the interface went with its sockets; listeners and UDP sockets fail with
    /// ENETDOWN; every waiter and poller wakes; later calls fail at once (ENETDOWN).
    public func stackEnded() {
        guard !gone.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for (slot, kind, _) in sockets.namedSlots() where sockets.tryHold(slot) {
            switch kind {
            case .stream:
                SocketChannel(adopting: slot, in: sockets)?.publish([.failed, .closed], error: ECONNRESET)
            case .listener:
                if let queue = ListenQueue(adopting: slot, in: sockets, port: 0) {
                    queue.arrivals.wakeAll()
                    queue.doorbell.ring()
                }
            case .datagram:
                DatagramChannel(adopting: slot, in: sockets)?.fail(ENETDOWN)
            }
        }
        replies.answerEveryQuestion()
    }
}
