import CNetMPLinux
import Glibc
import NetMPLink
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire

/// Writes the host's frames to one TAP queue.
public struct QueueSink: FrameSink {
    let queue: TAPQueue
    public internal(set) var failed: LinkError? = nil
    public internal(set) var writeErrors: UInt64 = 0
    /// Test impairments for both directions of this queue (nil: none, the normal case).
    public var faults: FaultInjector? = nil
    /// The time of the batch being handled, for the fault injector's delays.
    var now = Instant.zero
    /// The capture running (nil: none, the normal case): every frame written to the queue
    /// and read from it goes into it too.
    var capture: CaptureRing? = nil

    public init(queue: TAPQueue) { self.queue = queue }

    public mutating func transmit(_ frame: UnsafeRawBufferPointer) {
        if faults != nil {
            for copy in faults!.admit(frame, .outbound, now: now) { copy.withUnsafeBytes { write($0) } }
            return
        }
        write(frame)
    }

    /// A frame with a checksum or segmentation request: the kernel finishes it from the
    /// virtio-net header. Under fault injection each wire segment it will become draws its
    /// fate first: if none is touched the frame still goes whole (the fast path the test
    /// is about keeps running); otherwise it is cut here and each segment meets its fate.
    public mutating func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload) {
        guard faults != nil else { write(UnsafeRawBufferPointer(frame), offload: offload); return }
        fates.removeAll(keepingCapacity: true)
        var untouched = true
        for _ in 0..<offload.wireSegments(frameLength: frame.count) {
            let fate = faults!.fate(.outbound)
            untouched = untouched && fate.untouched
            fates.append(fate)
        }
        if untouched { write(UnsafeRawBufferPointer(frame), offload: offload); return }
        let scratchLength = offload.headerLength + max(offload.segmentSize, frame.count)
        if offload.segments && fates.allSatisfy({ $0.untouched || $0.plainDuplicate }) {
            // Duplicates only (1% of segments duplicated touches a third of 45-segment
            // frames): the frame still goes whole, and the duplicated segments again after it.
            write(UnsafeRawBufferPointer(frame), offload: offload)
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchLength, alignment: 16)
            defer { scratch.deallocate() }
            let drawn = fates
            offload.complete(frame, scratch: scratch, selecting: { drawn[$0].plainDuplicate }) { segment in
                faults!.countDuplicate()
                write(segment)
            }
            return
        }
        var next = 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchLength, alignment: 16)
        defer { scratch.deallocate() }
        offload.complete(frame, scratch: scratch) { piece in
            let fate = next < fates.count ? fates[next] : faults!.fate(.outbound)
            next += 1
            for copy in faults!.apply(fate, to: piece, .outbound, now: now) { copy.withUnsafeBytes { write($0) } }
        }
    }
    /// The fates of one frame's wire segments (kept: no allocation per frame once grown).
    var fates: [FaultInjector.Fate] = []

    /// A frame whose payload was left in the send ring: the write gathers it from there,
    /// unless the fault injector or a capture must see the frame whole.
    public mutating func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload, payload: PayloadSpans) {
        guard faults == nil, capture == nil, !payload.isEmpty else {
            payload.place(atEndOf: frame)
            transmit(frame, offload: offload)
            return
        }
        let headers = UnsafeRawBufferPointer(rebasing: frame[0..<(frame.count - payload.count)])
        write(headers, offload: offload, payload: payload)
    }

    /// `frame`, and `payload` after it when it was left in place.
    mutating func write(_ frame: UnsafeRawBufferPointer, offload: FrameOffload = .none, payload: PayloadSpans = .none) {
        if failed == .deviceGone { writeErrors &+= 1; return }
        do {
            try queue.transmit(frame, offload: offload, payload: payload)
            capture?.record(frame, .outbound) // what the TAP took, as the kernel side sees it
        } catch {
            if offload.datagrams, case .writeFailed(let e) = error, e == EINVAL {
                // A kernel before 6.2 knows no GSO_UDP_L4: cut this run here, and the loop
                // stops asking for runs.
                udpSegmentationRefused = true
                transmitCompletingInSoftware(UnsafeMutableRawBufferPointer(mutating: frame), offload: offload)
                return
            }
            writeErrors &+= 1
            if error == .deviceGone { failed = error }
        }
    }
    /// The TAP refused a run of datagrams as one frame.
    public internal(set) var udpSegmentationRefused = false
}

/// One turn of a protocol thread's work: wait for frames, messages or the next timer; handle
/// the messages, then a batch of frames (each on its owner core: frames for another core's
/// connections are forwarded there); run the timers; publish the counters. The thread loops
/// on it; a test driver that hosts the stack on its own thread calls it between its steps.
public final class ProtocolLoop {
    public let host: Host
    public let tcp: TCPEndpoints
    public let queue: TAPQueue
    public var sink: QueueSink
    let stats: StatsPage?
    public let core: Int
    /// This core's port (nil for a loop driven by its own thread's caller) and every core's.
    let port: MessagePort<CoreMessage>?
    let ports: [MessagePort<CoreMessage>]
    /// The clients this core serves (each with its request ring, socket table and reply
    /// slots), drained in turn; by number for the messages that name one.
    var clients: [ClientOnCore] = []
    var clientsByID: [UInt32: ClientOnCore] = [:]
    /// The client whose ring is drained first next turn (so none is always last).
    var firstClient = 0
    /// The attached clients' bells for this core (`netmp_bells_make`; -1 for a loop without
    /// a port, or if the epoll instance could not be made):
    /// a ring by a client shows as an edge here, which the core takes out without ever
    /// touching the client's file. The port's own eventfd is for the stack's threads only.
    var bells: Int32 = -1
    /// Messages for other cores whose ports were full, sent again each turn in order.
    var outbox: [(core: Int, message: CoreMessage)] = []
    let steering: FlowSteering
    /// Ports the application reserved with bind() (nil: none can be, a driver-run loop).
    let portTable: PortTable?
    /// UDP's ports (nil: none can be bound).
    let datagramPortTable: PortTable?
    let buffer: UnsafeMutableRawBufferPointer
    public private(set) var messagesHandled: UInt64 = 0
    public private(set) var framesForwarded: UInt64 = 0
    /// Frames that could not be forwarded because the owner's port was full (dropped).
    public private(set) var forwardOverflows: UInt64 = 0
    var nextConnectionPublish = Instant.zero
    /// A turn's work changed connections after the last listing, which the ten-a-second
    /// limit put off: the core wakes for it even if nothing else comes (an idle core would
    /// otherwise show the table as it was before its last work, until the next).
    var listingOwed = false
    /// The last turn handled messages or frames (adaptive polling spins only after work).
    var hadWork = false
    /// The connection whose segment is expected next, and its segments' header length
    /// (ProtocolLoop+Landing). Weak: a guess keeps no closed connection's buffers.
    weak var landingSocket: TCPSocket?
    var landingSplit = 0
    /// The stack's uid: its clients, and root's, may be landed on.
    let stackUID = getuid()
    /// Frames whose payload was stored where it landed (no copy), and frames that landed
    /// but were another connection's, out of order or not a plain segment (copied once,
    /// as without landing).
    public internal(set) var framesLanded: UInt64 = 0
    public internal(set) var landingMisses: UInt64 = 0
    /// How long to spin before sleeping (StackConfiguration.pollSpinMicroseconds).
    public var spinBudget = Interval.zero
    /// A test's time (nil: CLOCK_MONOTONIC, the normal case). Read once per turn.
    public var virtualClock: VirtualClock? = nil
    /// The time of this core's turn.
    func currentTime() -> Instant { virtualClock?.now ?? MonotonicClock.now() }
    /// This core's copy of the UDP bindings, by port in each family's namespace (a
    /// dual-stack socket is under both; sockets sharing a port by SO_REUSEPORT under the
    /// same key, each named by its client and slot).
    var datagramSockets: [FamilyPort: [DatagramBinding]] = [:]
    /// The multicast groups each bound UDP socket joined, by its identity (client and
    /// slot); the host counts them per group (`Host.groups`).
    var memberships: [UInt64: [IPAddress]] = [:]
    public internal(set) var stopped = false
    /// The queue was detached or the device removed: the core goes on answering its
    /// messages (calls get their errors, timers end the connections) but no longer polls,
    /// reads or writes the queue. A forked child that took a master's listeners over
    /// detaches the master's queues so (docs/SHIM.md).
    public var offTheWire: Bool { sink.failed == .deviceGone }
    /// Frames handled between two looks at the clock and the timers.
    static let batch = 64
    /// Rounds of frames to our own address received after a turn's batch.
    static let loopbackRounds = 8
    static let receiveBufferSize = 65_535 + 14 + 4 + VirtioNetHeader.length + 64

    public init(host: Host, tcp: TCPEndpoints, queue: TAPQueue, stats: StatsPage?, core: Int,
                steering: FlowSteering = FlowSteering(cores: 1), ports: [MessagePort<CoreMessage>] = [],
                portTable: PortTable? = nil, datagramPortTable: PortTable? = nil,
                clients: [(id: UInt32, region: ClientRegion)] = []) {
        self.host = host; self.tcp = tcp; self.queue = queue; self.stats = stats; self.core = core
        self.steering = steering; self.ports = ports; self.portTable = portTable; self.datagramPortTable = datagramPortTable
        port = ports.isEmpty ? nil : ports[core]
        // Made at the start, so that the stack's descriptors are the same before a client
        // attaches and after the last has gone.
        bells = ports.isEmpty ? -1 : netmp_bells_make()
        host.tcp = tcp
        // Connections hold their ports against binds until their TIME-WAIT ends, as Linux's do.
        if let portTable { tcp.portHoldChanged = { portTable.connection(on: $0, $1, held: $2) } }
        sink = QueueSink(queue: queue)
        // The largest frame a TAP with segmentation offload hands over: a 64 KiB IPv4
        // super-frame, its Ethernet header and the virtio-net header in front.
        buffer = .allocate(byteCount: Self.receiveBufferSize, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0) // first touch, on the owner's node
        for (id, region) in clients where !ports.isEmpty { attach(ClientOnCore(id: id, region: region, core: core)) }
        // A client that scribbles its rings' positions is faulty as one that writes bad records.
        tcp.positionFaultsFound = { [unowned self] client, count in clientsByID[client]?.requests.countMalformed(count) }
        host.udpReceiver = { [unowned self] payload, arrival in
            // A socket of another family, bound to another of our addresses or connected to
            // another peer does not take it: to the sender the port is closed (as on Linux).
            let destination = arrival.destination
            guard let group = datagramSockets[FamilyPort(destination.port, of: destination.address)] else { return .noSocket }
            if destination.address.isMulticast || host.isBroadcast(destination.address) {
                return deliverToAll(payload, arrival: arrival, among: group)
            }
            guard let channel = DatagramBinding.receiver(among: group, from: arrival.source, to: destination) else {
                return .noSocket
            }
            return channel.deliver(payload, arrival: arrival, core: self.core) ? .delivered : .queueFull
        }
        // An ICMP or ICMPv6 error about a datagram goes to the socket that would take the
        // answer to it (Linux's __udp4_lib_err looks it up by the datagram's 4-tuple; every
        // core holds the binding, so any core may report it): with IP_RECVERR to its error
        // queue and as its next error; without, a hard one about a connected socket's peer
        // as its next error.
        host.datagramErrorHandler = { [unowned self] error, quoted in
            let datagram = error.datagram
            guard let group = datagramSockets[FamilyPort(datagram.local.port, of: datagram.local.address)],
                  let binding = DatagramBinding.receiving(among: group, from: datagram.remote, to: datagram.local) else { return }
            let channel = binding.channel
            guard channel.receivesErrors(ipv6: !datagram.remote.address.isIPv4) else {
                if error.hard { channel.reportError(error.errorNumber, about: datagram.remote) }
                return
            }
            // The error queue is the home core's to write: another core's copy goes there,
            // and is made pending there.
            if channel.homeCore == core {
                channel.report(error, quoted: quoted, at: self.currentTime())
                return
            }
            // Dropped and counted when that port is full (or messages wait for it), as a
            // forwarded frame is: errors arrive as fast as the wire brings them, and
            // nothing would bound the ones kept.
            let home = channel.homeCore
            if outbox.contains(where: { $0.core == home })
                || !ports[home].send(.datagramError(identity: binding.identity, error, ForwardedFrame(copying: quoted))) {
                forwardOverflows &+= 1
            }
        }
    }
    deinit {
        buffer.deallocate()
        if bells >= 0 { Glibc.close(bells) }
    }

    public func announce() { host.announce(sink: &sink) }

    /// Starts duplicate address detection of the IPv6 addresses; one core `probes`.
    public func startAddressDetection(probes: Bool) {
        host.startDuplicateAddressDetection(now: currentTime(), probes: probes, sink: &sink)
    }

    /// Waits at most `maximumWait` (or until the next timer), then handles what arrived.
    public func runOnce(maximumWait: Interval? = nil) throws(LinkError) {
        var now = currentTime()
        var wait = maximumWait
        func consider(_ deadline: Instant?) {
            guard let deadline else { return }
            let untilTimer = deadline - now
            if wait == nil || untilTimer < wait! { wait = untilTimer }
        }
        consider(host.nextDeadline)
        if listingOwed { consider(nextConnectionPublish) }
        consider(sink.faults?.nextRelease)
        var timeout: Int32 = wait.map { Int32(min(($0.nanoseconds + 999_999) / 1_000_000, 60_000)) } ?? -1
        if !outbox.isEmpty { timeout = timeout < 0 ? 1 : min(timeout, 1) } // a full port: look again soon
        if host.hasLoopedFrames { timeout = 0 } // frames to ourselves are work already here
        // Adaptive polling: right after work, more work is likely soon, and a sleep and
        // wakeup cost more than a short look; an idle core never spins. What the look found
        // is handled at once: a poll of the same descriptors would only say it again (one
        // system call of the four a frame cost under connections-per-second load).
        let found = timeout != 0 && hadWork && spinBudget.nanoseconds > 0 && spin(until: now + spinBudget)
        if !found {
            // Announce the sleep before polling: a sender that publishes after this sees it
            // and writes the eventfd; one that published before is caught here (timeout 0).
            if let port, !port.prepareToSleep() { timeout = 0 }
            // A record published before the announcement is caught here; one after it
            // finds the announcement and writes the port's eventfd.
            else if let port, hasRequest { port.stopSleeping(); timeout = 0 }
            var pollers = (pollfd(fd: offTheWire ? -1 : queue.fd, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: port?.wakeupDescriptor ?? -1, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: bells, events: Int16(POLLIN), revents: 0))
            let (woken, rung) = withUnsafeMutablePointer(to: &pollers) {
                $0.withMemoryRebound(to: pollfd.self, capacity: 3) { p -> (Bool, Bool) in
                    _ = poll(p, port == nil ? 1 : 3, timeout)
                    return (p[1].revents != 0, p[2].revents != 0)
                }
            }
            if let port {
                if woken { port.awake() } else { port.stopSleeping() }
            }
            if rung { _ = netmp_bells_drain(bells) }
        }
        now = currentTime()
        sink.now = now
        var work = 0
        // Connections the turn's messages and frames reach are settled once, after them
        // (one ACK and one burst of output per turn, data and a close's FIN together),
        // also when the loop leaves early.
        do {
            tcp.beginBatch()
            defer { tcp.endBatch(now: now, host: host, sink: &sink) }
            if let port {
                if !outbox.isEmpty { flushOutbox() }
                work = port.drain(limit: 1024) { handle($0, now: now) }
                work += drainRequests(now: now)
                messagesHandled &+= UInt64(work)
            }
            if sink.faults != nil { releaseHeldFrames(now: now) }
            for _ in 0..<Self.batch where !offTheWire {
                let read: Read
                do { read = try readFrame(now: now) } catch {
                    switch error {
                    case .deviceGone: sink.failed = error
                    case .truncatedVirtioHeader, .unknownGSOType: host.countMalformed(.virtioHeaderBad); continue
                    default: throw error
                    }
                    break
                }
                guard case .whole(let header, let frame) = read else {
                    if case .nothing = read { break }
                    work += 1
                    continue
                }
                work += 1
                sink.capture?.record(frame, .inbound)
                let marks = ArrivalMarks(header, frameLength: frame.count)
                if sink.faults?.plan.inbound == true {
                    admitThroughFaults(frame, header: header, wireSegments: marks.wireSegments, now: now)
                } else {
                    arrived(frame, marks: marks, now: now)
                    followInOrderArrival(frame: frame)
                }
            }
            work += host.takeLoopedFrames { arrived($0, marks: $1, now: now) }
        }
        // Frames to our own address that the turn's output sent (one socket's data, the
        // other's ACK) are received at once, a few rounds of them, before the next look at
        // the queue and the ports.
        for _ in 0..<Self.loopbackRounds where host.hasLoopedFrames {
            tcp.beginBatch()
            work += host.takeLoopedFrames { arrived($0, marks: $1, now: now) }
            tcp.endBatch(now: now, host: host, sink: &sink)
        }
        // Set by a looped or forwarded frame (read frames take theirs at once): not left
        // holding a connection that may close while the core sleeps.
        tcp.inOrderArrival = nil
        hadWork = work > 0
        if sink.udpSegmentationRefused && host.offloads.udpSegmentation { host.offloads.udpSegmentation = false }
        host.tick(now: now, sink: &sink)
        publishStats(now: now)
    }

    /// Looks at the port (no system call) and the queue (a zero-timeout poll) until
    /// something is waiting or `deadline` passes; true when something is. Each look yields
    /// the CPU to any other runnable thread first: on a busy machine the application's
    /// threads (which make the work the core waits for) go ahead, on an idle one the yield
    /// returns at once.
    func spin(until deadline: Instant) -> Bool {
        var poller = pollfd(fd: offTheWire ? -1 : queue.fd, events: Int16(POLLIN), revents: 0)
        repeat {
            if port?.hasMessage == true || hasRequest { return true }
            if !offTheWire && poll(&poller, 1, 0) > 0 { return true }
            sched_yield()
        } while MonotonicClock.now() < deadline
        return false
    }

    /// Some client's ring has a record waiting (no system call: for spinning, and
    /// sequentially consistent for the look before sleeping).
    var hasRequest: Bool {
        for client in clients where client.requests.hasRequest || client.namesWaiting { return true }
        return false
    }

    /// Every client's records, up to 1024 of each per turn, starting with a different
    /// client each turn: a client flooding its ring delays only itself.
    func drainRequests(now: Instant) -> Int {
        guard !clients.isEmpty else { return 0 }
        var work = 0
        let first = firstClient % clients.count
        firstClient = first + 1
        for i in 0..<clients.count {
            let client = clients[(first + i) % clients.count]
            work += client.takeNames() // core 0 only: the others have no names socket
            work += client.requests.drain(limit: 1024) { handle($0, from: client, now: now) }
            client.reportFaults()
        }
        return work
    }

    /// Sends `message` to core `core`, or keeps it for the next turn if that core's port is
    /// full (behind whatever this core already kept for it, so one core's messages to
    /// another stay in order).
    func sendOrKeep(_ message: CoreMessage, to core: Int) {
        if outbox.contains(where: { $0.core == core }) || !ports[core].send(message) { outbox.append((core, message)) }
    }

    /// Sends what full ports refused before, in order, as far as there is room.
    func flushOutbox() {
        var blocked: Set<Int> = []
        outbox.removeAll { entry in
            guard !blocked.contains(entry.core), ports[entry.core].send(entry.message) else {
                blocked.insert(entry.core)
                return false
            }
            return true
        }
    }

    /// Starts serving a client (its region's ring for this core).
    func attach(_ client: ClientOnCore) {
        precondition(clientsByID[client.id] == nil, "client \(client.id) attached twice")
        clients.append(client)
        clientsByID[client.id] = client
        if let bell = client.bell {
            if bells < 0 || netmp_bells_add(bells, bell) != 0 {
                // Unwatched, its rings are missed: the client's records then wait until
                // something else wakes the core (a frame, a timer, another client's ring).
                Log.write("netmp: core \(core) cannot watch client \(client.id)'s bell; its wakeups are lost")
            }
        }
    }

    /// Stops serving a client: its records are no longer read. Its connections go on in
    /// their control blocks (each holds its own view of its slot) until they end.
    /// `closing`: the client's process is gone, so this core closes what it still held, as
    /// Linux closes the sockets of a process that ends: a connection with data the program
    /// never read is reset, any other closes after delivering what was written; its
    /// listeners (and the connections waiting in them) and UDP ports go.
    func detach(_ id: UInt32, closing: Bool = false, now: Instant) {
        guard let client = clientsByID.removeValue(forKey: id) else { return }
        clients.removeAll { $0.id == id }
        if let bell = client.bell, bells >= 0 { _ = netmp_bells_remove(bells, bell) }
        guard closing else { return }
        for (slot, hold) in client.listeners {
            tcp.stopListening(port: hold.port, families: hold.families, identity: UInt64(id) << 32 | UInt64(slot),
                              now: now, host: host, sink: &sink)
        }
        for (slot, hold) in client.datagrams { unbindDatagram(hold, identity: UInt64(id) << 32 | UInt64(slot)) }
        for (_, channel) in client.streamViews { end(channel, abort: channel.receive.unread > 0, now: now) }
        for (_, channel) in client.datagramViews { sendDatagrams(of: channel, for: client, now: now) }
    }

    /// Sockets of `client` that no process holds any more (their last holder ended): this
    /// core's part of closing each, as the close record and stopping a listener or UDP
    /// port would, with the errors Linux's close gives a peer (unread data resets). Only
    /// what the client's own records set up here is touched: a port is stopped only if
    /// this client listens or is bound on it.
    func close(_ handles: [SocketHandle], of client: ClientOnCore, reset: Bool = false, now: Instant) {
        for handle in handles {
            if let channel = client.streamView(handle) {
                var record = Request(.close, handle)
                record.abort = reset || channel.receive.unread > 0
                self.handle(record, on: channel, from: client, now: now)
            } else if let hold = client.listeners.removeValue(forKey: handle.slot) {
                tcp.stopListening(port: hold.port, families: hold.families, identity: UInt64(client.id) << 32 | UInt64(handle.slot),
                                  now: now, host: host, sink: &sink)
                // Every core does this part; one gives the socket's hold on the port back (a
                // port that sockets share counts each hold).
                if core == 0 { portTable?.release(hold.port, families: hold.families, ifHeldBy: client.id) }
                // The connections waiting in its queues, which no accept will take now, are
                // reset, as Linux resets a closed listener's: core 0 takes them out (any
                // core may) and each owner resets its own.
                if core == 0 { resetWaiting(in: handle.slot, of: client, now: now) }
                client.sockets.release(handle)
            } else if client.sockets.resolves(handle, as: .datagram) {
                if let hold = client.datagrams.removeValue(forKey: handle.slot) {
                    unbindDatagram(hold, identity: UInt64(client.id) << 32 | UInt64(handle.slot))
                    if core == 0 { datagramPortTable?.release(hold.port, families: hold.families, ifHeldBy: client.id) }
                }
                if let channel = client.datagramViews.removeValue(forKey: handle.slot) { sendDatagrams(of: channel, for: client, now: now) }
                client.sockets.release(handle)
            }
        }
    }

    /// Takes every connection out of the accept queues of `client`'s listener slot and
    /// has its owner reset it: one message for each other core, however many waited, so
    /// a close costs another core's port (or this core's outbox) at most one entry.
    func resetWaiting(in slot: UInt32, of client: ClientOnCore, now: Instant) {
        guard client.sockets.tryHold(slot), let queue = ListenQueue(adopting: slot, in: client.sockets, port: 0) else { return }
        var byCore = [[SocketHandle]](repeating: [], count: max(ports.count, core + 1))
        // At most what the queues hold: the application can write records into them as
        // fast as this takes them out.
        for _ in 0..<queue.capacity {
            guard let waiting = queue.pop() else { break }
            client.sockets.letGo(waiting.handle.slot) // the hold taken for accept's view
            if byCore.indices.contains(waiting.core) { byCore[waiting.core].append(waiting.handle) }
        }
        for (owner, handles) in byCore.enumerated() where !handles.isEmpty {
            if owner == core { close(handles, of: client, reset: true, now: now) }
            else { sendOrKeep(.closeSockets(client: client.id, handles, reset: true, Completion(count: 1)), to: owner) }
        }
    }

    /// A frame read from this core's queue: handled here, or sent to the core it belongs to.
    func arrived(_ frame: UnsafeRawBufferPointer, marks: ArrivalMarks = .none, now: Instant) {
        switch steering.target(of: frame, localAddress: host.address) {
        case .arrivalCore:
            host.receive(frame: frame, marks: marks, now: now, sink: &sink)
        case .owner(let owner):
            if owner == core { host.receive(frame: frame, marks: marks, now: now, sink: &sink); return }
            if ports[owner].send(.frame(ForwardedFrame(copying: frame, marks: marks))) {
                framesForwarded &+= 1
            } else {
                forwardOverflows &+= 1
            }
        case .everyCore:
            host.receive(frame: frame, marks: marks, now: now, sink: &sink)
            for (other, port) in ports.enumerated() where other != core {
                if !port.send(.neighbour(ForwardedFrame(copying: frame))) { forwardOverflows &+= 1 }
            }
        }
    }

    /// An arriving frame under test impairments. The injector must be able to corrupt what
    /// it passes, so nothing it passes is trusted: a checksum the kernel left partial is
    /// finished first, and every copy is verified like a frame with no mark.
    func admitThroughFaults(_ frame: UnsafeRawBufferPointer, header: VirtioNetHeader, wireSegments: Int, now: Instant) {
        let finished = UnsafeMutableRawBufferPointer(mutating: frame)
        if header.flags & VirtioNetHeader.needsChecksum != 0,
           Int(header.checksumStart) + Int(header.checksumOffset) + 2 <= frame.count {
            FrameOffload.finishChecksum(finished, start: Int(header.checksumStart), offset: Int(header.checksumOffset))
        }
        for copy in sink.faults!.admit(frame, .inbound, now: now) {
            copy.withUnsafeBytes { arrived($0, marks: ArrivalMarks(checksumsTrusted: false, wireSegments: wireSegments), now: now) }
        }
    }

    /// Frames the fault injector delayed, now due, in either direction.
    func releaseHeldFrames(now: Instant) {
        for (direction, frame) in sink.faults!.release(now: now) {
            frame.withUnsafeBytes { bytes in
                if direction == .inbound { arrived(bytes, now: now) } else { sink.write(bytes) }
            }
        }
    }

    func publishStats(now: Instant) {
        guard let stats else { return }
        stats.publish(core: core, counters: host.counters, neighbours: host.arp.count + host.neighbours6.count,
                      groups: host.groups.reportedCount + host.groups6.reportedCount)
        stats.publish(core: core, messages: messagesHandled, forwarded: framesForwarded,
                      forwardOverflows: forwardOverflows, connections: tcp.connectionCount,
                      landed: framesLanded, landingMisses: landingMisses)
        // The connection table is a few hundred words: published ten times a second, not per batch.
        if nextConnectionPublish <= now {
            stats.publishConnections(core: core, tcp.sockets.values, now: now) { socket in
                guard let slot = socket.channel.doorbell.slot else { return 0 }
                return clientsByID[socket.client]?.sockets.holding(slot) ?? 0
            }
            if core == 0 { stats.publishAddresses(host.ipv6) } // every core keeps the same states
            if core == 0 { stats.publishSockets(socketRows) }
            nextConnectionPublish = now + .milliseconds(100)
            listingOwed = false
        } else if hadWork {
            listingOwed = true
        }
    }
}

extension ProtocolLoop {
    /// The listening and UDP sockets this core holds (every core holds the same), each
    /// named by its client (the high half of its identity), for `netmp stat`.
    var socketRows: [StatsPage.SocketRow] {
        var rows = tcp.listening.map {
            let client = UInt32($0.identity >> 32)
            return StatsPage.SocketRow(udp: false, port: $0.port, families: $0.families, client: client, backlog: $0.backlog,
                                       holders: clientsByID[client]?.sockets.holding(listener: UInt32(truncatingIfNeeded: $0.identity)) ?? 0)
        }
        var seen: [UInt64: Int] = [:]
        for (key, group) in datagramSockets.sorted(by: { $0.key < $1.key }) {
            for binding in group {
                if let i = seen[binding.identity] { rows[i].families.formUnion(key.family); continue }
                seen[binding.identity] = rows.count
                let client = UInt32(binding.identity >> 32)
                rows.append(StatsPage.SocketRow(udp: true, port: key.port, families: key.family, client: client,
                                                bound: binding.channel.boundAddress,
                                                holders: clientsByID[client]?.sockets.holding(UInt32(truncatingIfNeeded: binding.identity)) ?? 0))
            }
        }
        return rows
    }
}

extension ArrivalMarks {
    /// What a frame's virtio-net header vouches for.
    init(_ header: VirtioNetHeader, frameLength: Int) {
        self.init(checksumsTrusted: header.checksumsTrusted, wireSegments: header.wireSegments(frameLength: frameLength))
    }
}

extension LinkOffloads {
    /// What the TAP's accepted TUNSETOFFLOAD flags let the host leave to the kernel.
    public init(_ flags: TAPOffloads) {
        self.init(checksum: flags.contains(.checksum), tcpSegmentation: flags.contains(.tso4),
                  udpSegmentation: flags.contains(.checksum), tcpSegmentation6: flags.contains(.tso6))
    }
}
