import NetMPTCP
import NetMPWire

public enum TCPTableError: Error, Equatable, Sendable {
    case addressInUse     // EADDRINUSE
    case noEphemeralPorts // EADDRNOTAVAIL
}

/// The TCP sockets of one owner: listeners, connections by 4-tuple, ephemeral ports and ISNs.
/// Demultiplexes arriving segments, turns engine decisions into frames through the host.
public final class TCPEndpoints {
    public var configuration: TCPConfiguration
    let sequenceNumbers: InitialSequenceNumbers
    public private(set) var sockets: [FourTuple: TCPSocket] = [:]
    /// By port in each family's namespace: a dual-stack listener is under both keys; the
    /// listeners of sockets that share a port (SO_REUSEPORT) under the same key.
    var listeners: [FamilyPort: [Listener]] = [:]
    /// Every connection's next deadline, by 4-tuple.
    var timers: TimerWheel<TCPSocket>
    /// The sockets whose timers are due, kept between ticks so that a tick allocates nothing.
    var dueSockets: [TCPSocket] = []
    /// Linux's default ip_local_port_range.
    public static let ephemeralPorts: ClosedRange<UInt16> = 32768...60999
    /// RFC 6056's double-hash port selection (algorithm 4, Linux's table_perturb): each
    /// peer's keyed offset goes on from where the last search with the same bucket ended.
    var perturbation = [UInt32](repeating: 0, count: 256)
    /// Inside a turn's batch of messages and frames (`beginBatch`): connections reached
    /// wait in `unsettled`.
    var batching = false
    var unsettled: [TCPSocket] = []
    /// The channel of every connection here that is in TIME-WAIT after its application
    /// closed it: no buffers, no readers (`retireBuffers`). One per owner: only it touches it.
    let retiredChannel = SocketChannel(sendCapacity: 0, receiveCapacity: 0)
    /// Told when a connection starts and stops holding its local port: from its entry into
    /// the table to its leaving it, TIME-WAIT included (the stack's port table, which
    /// weighs a bind against it as Linux's bind bucket does).
    public var portHoldChanged: ((_ port: FamilyPort, _ reuse: PortReuse, _ held: Bool) -> Void)?
    /// Told of impossible ring positions a connection's client wrote (`TCPSocket.client`,
    /// how many): the stack service counts them among the client's faults.
    public var positionFaultsFound: ((_ client: UInt32, _ count: Int) -> Void)?
    /// The connection whose in-order data the last segment brought, and that segment's
    /// payload (in the frame, or in place in the ring): the runtime guesses the next frame
    /// is its too (ProtocolLoop's landing) and takes this after each frame.
    public var inOrderArrival: (socket: TCPSocket, payload: UnsafeRawBufferPointer)?

    final class Listener {
        /// Which socket it is (the runtime's client and listen slot), so that one of several
        /// sharing a port can stop alone.
        let identity: UInt64
        /// SO_REUSEPORT: others may listen on the port too.
        var shared: Bool { reuse.port }
        /// The listening socket's port sharing, which its connections take over.
        let reuse: PortReuse
        let backlog: Int
        var acceptQueue: [TCPSocket] = []
        /// Where established connections go instead of `acceptQueue` (the runtime's per-core
        /// accept queue); false means that queue is full and the connection is reset.
        let handOff: ((TCPSocket) -> Bool)?
        /// TCP_DEFER_ACCEPT: how long an established connection without data waits before it
        /// is handed over anyway (nil: it is handed over at once). Asked each time, as the
        /// application may set it while listening.
        let acceptDeferral: (() -> Interval?)?
        /// The listening socket's options for the connections it makes, from their SYN-ACK
        /// on, asked at each SYN (the application may change them while listening); nil:
        /// the stack's.
        let configuration: ((_ ipv4Peer: Bool) -> TCPConfiguration)?
        /// Connections in SYN-RECEIVED: bounded with the accept queue by the backlog, so a SYN
        /// flood costs at most `backlog` control blocks; further SYNs are dropped (no cookies yet).
        var embryonic = 0
        /// Where a connection this listener makes gets its channel (the runtime's: a slot of
        /// the listener's client's socket table); nil, or a nil answer, gives it rings of its own.
        let channelMaker: ((TCPConfiguration) -> SocketChannel?)?
        init(identity: UInt64, reuse: PortReuse, backlog: Int, configuration: ((_ ipv4Peer: Bool) -> TCPConfiguration)?,
             channelMaker: ((TCPConfiguration) -> SocketChannel?)?, handOff: ((TCPSocket) -> Bool)?,
             acceptDeferral: (() -> Interval?)?) {
            self.identity = identity
            self.configuration = configuration
            self.reuse = reuse
            self.backlog = backlog
            self.channelMaker = channelMaker
            self.handOff = handOff
            self.acceptDeferral = acceptDeferral
        }
    }

    public init(configuration: TCPConfiguration, secret: (UInt64, UInt64), now: Instant = .zero) {
        self.configuration = configuration
        timers = TimerWheel(now: now)
        sequenceNumbers = InitialSequenceNumbers(secret: secret)
        unsettled.reserveCapacity(256)
    }

    /// Listens on `port` as socket `identity`; `reuse.port` (SO_REUSEPORT) joins the
    /// listeners already there if they all share too, and new connections are spread over
    /// them by their 4-tuple's hash, as Linux's reuseport groups do.
    public func listen(port: UInt16, backlog: Int = 128, families: AddressFamilies = .ipv4, identity: UInt64 = 0,
                       reuse: PortReuse = PortReuse(), configuration: ((_ ipv4Peer: Bool) -> TCPConfiguration)? = nil,
                       channelMaker: ((TCPConfiguration) -> SocketChannel?)? = nil,
                       acceptDeferral: (() -> Interval?)? = nil,
                       handOff: ((TCPSocket) -> Bool)? = nil) throws(TCPTableError) {
        let keys = PortHold(port, families).keys
        guard !keys.isEmpty, keys.allSatisfy({ key in
            listeners[key].map { group in reuse.port && group.allSatisfy { $0.shared && $0.identity != identity } } ?? true
        }) else { throw .addressInUse }
        let listener = Listener(identity: identity, reuse: reuse, backlog: max(1, backlog), configuration: configuration,
                                channelMaker: channelMaker, handOff: handOff, acceptDeferral: acceptDeferral)
        for key in keys { listeners[key, default: []].append(listener) }
    }

    /// Every listener once (a dual-stack one is under both families' keys): its port, the
    /// families it takes, its socket's identity and its backlog, for `netmp stat`.
    public var listening: [(port: UInt16, families: AddressFamilies, identity: UInt64, backlog: Int)] {
        var seen: [ObjectIdentifier: Int] = [:]
        var rows: [(port: UInt16, families: AddressFamilies, identity: UInt64, backlog: Int)] = []
        for (key, group) in listeners.sorted(by: { $0.key < $1.key }) {
            for listener in group {
                if let i = seen[ObjectIdentifier(listener)] { rows[i].families.formUnion(key.family); continue }
                seen[ObjectIdentifier(listener)] = rows.count
                rows.append((key.port, key.family, listener.identity, listener.backlog))
            }
        }
        return rows
    }

    /// Some listener holds `port`, in either family's namespace.
    func isListening(on port: UInt16) -> Bool {
        listeners[FamilyPort(port, ipv6: false)] != nil || listeners[FamilyPort(port, ipv6: true)] != nil
    }

    /// The next established connection on `port` (IPv4's listeners first), if any.
    public func accept(port: UInt16) -> TCPSocket? {
        guard let listener = [false, true].lazy.flatMap({ self.listeners[FamilyPort(port, ipv6: $0)] ?? [] })
                .first(where: { !$0.acceptQueue.isEmpty }) else { return nil }
        let socket = listener.acceptQueue.removeFirst()
        socket.listener = nil
        return socket
    }

    /// Which of the listeners on a port takes a new connection: the one its 4-tuple's hash
    /// picks (Linux's reuseport_select_sock), the only one when they do not share.
    func listener(for tuple: FourTuple, among group: [Listener]) -> Listener {
        guard group.count > 1 else { return group[0] }
        var hasher = Hasher()
        hasher.combine(tuple)
        return group[Int(UInt(bitPattern: hasher.finalize()) % UInt(group.count))]
    }

    /// An active open from `local` to `remote`: from `localPort` if the application bound
    /// one, otherwise from an unused ephemeral port that `acceptable` agrees to (the per-core
    /// runtime accepts only ports whose 4-tuple hashes to the core doing the connect, so the
    /// connection is born on its owner). `channel` is the application's, made before the
    /// connect; `configuration` carries the options it set.
    public func connect(from local: IPAddress, to remote: Endpoint, now: Instant, localPort: UInt16? = nil,
                        configuration: TCPConfiguration? = nil, channel: SocketChannel? = nil, reuse: PortReuse = PortReuse(),
                        acceptable: (FourTuple) -> Bool = { _ in true }) throws(TCPTableError) -> TCPSocket {
        let configuration = Self.configuration(configuration ?? self.configuration, ipv6: !remote.address.isIPv4)
        func open(_ tuple: FourTuple) -> TCPSocket {
            let socket = TCPSocket(.connect(tuple, iss: sequenceNumbers.next(for: tuple, now: now), now: now,
                                            configuration: configuration, timestampOffset: timestampOffset(tuple)),
                                   channel: channel)
            channel?.publishTuple(tuple) // getsockname reads it from the slot
            socket.reuse = reuse
            enter(socket)
            return socket
        }
        if let localPort {
            let tuple = FourTuple(local: Endpoint(local, localPort), remote: remote)
            guard sockets[tuple] == nil else { throw .addressInUse }
            return open(tuple)
        }
        let span = UInt32(Self.ephemeralPorts.upperBound - Self.ephemeralPorts.lowerBound) + 1
        let hash = sequenceNumbers.ephemeralPortOffset(local: local, remote: remote)
        let bucket = Int(hash % UInt64(perturbation.count))
        let start = (UInt32(truncatingIfNeeded: hash >> 32) &+ perturbation[bucket]) % span
        for i in 0..<span {
            let port = Self.ephemeralPorts.lowerBound + UInt16((start + i) % span)
            let tuple = FourTuple(local: Endpoint(local, port), remote: remote)
            guard sockets[tuple] == nil, !isListening(on: port), acceptable(tuple) else { continue }
            perturbation[bucket] &+= i + 1
            return open(tuple)
        }
        throw .noEphemeralPorts
    }

    /// IPv6's header is 20 bytes longer than IPv4's: an MSS derived from the link's MTU
    /// (the default, 1460 on Ethernet) shrinks by as much; one set with TCP_MAXSEG stays.
    static func configuration(_ configuration: TCPConfiguration, ipv6: Bool) -> TCPConfiguration {
        guard ipv6, configuration.maximumSegmentSize == TCPConfiguration().maximumSegmentSize else { return configuration }
        var adjusted = configuration
        adjusted.maximumSegmentSize -= IPv6Header.length - IPv4Header.minimumLength
        return adjusted
    }

    func timestampOffset(_ tuple: FourTuple) -> UInt32 {
        sequenceNumbers.timestampOffset(local: tuple.local.address, remote: tuple.remote.address)
    }

    /// Stops socket `identity`'s listener on `port` in `families`' namespaces (others
    /// sharing the port go on); connections not yet accepted are reset (as close() on a
    /// listening socket does).
    public func stopListening(port: UInt16, families: AddressFamilies = .ipv4, identity: UInt64 = 0, now: Instant,
                              host: Host, sink: inout some FrameSink) {
        var stopped: Listener? = nil
        for key in PortHold(port, families).keys {
            guard var group = listeners[key], let i = group.firstIndex(where: { $0.identity == identity }) else { continue }
            stopped = group.remove(at: i)
            listeners[key] = group.isEmpty ? nil : group
        }
        guard let listener = stopped else { return }
        for socket in listener.acceptQueue { abort(socket, now: now, host: host, sink: &sink) }
        for socket in sockets.values where socket.listener === listener {
            socket.listener = nil
            abort(socket, now: now, host: host, sink: &sink)
        }
    }

    /// Resets a connection (SO_LINGER 0, close with unread data, a listener going away).
    public func abort(_ socket: TCPSocket, now: Instant, host: Host, sink: inout some FrameSink) {
        if let reset = socket.connection.abort(now: now) {
            host.sendBareSegment(reset, from: socket.tuple.local.address, to: socket.tuple.remote.address, now: now, sink: &sink)
        }
        settle(socket, now: now, host: host, sink: &sink)
    }

    /// Connections this owner holds, in any state but CLOSED.
    public var connectionCount: Int { sockets.count }
    /// No connection and no listener.
    public var isEmpty: Bool { sockets.isEmpty && listeners.isEmpty }

    /// Connections that still owe their peer data or the acknowledgment of a FIN: a
    /// process about to exit waits for these, as the kernel keeps an orphaned socket
    /// sending after its process is gone.
    public var connectionsStillSending: Int {
        sockets.values.reduce(0) { count, socket in
            let connection = socket.connection
            let settled = connection.state == .closed || connection.state == .timeWait
                || (connection.finQueued && connection.everythingAcknowledged)
            return settled ? count : count + 1
        }
    }

    /// Hands an arriving segment to its connection or listener; false when there is none
    /// (the host then answers as CLOSED does).
    func input(_ header: TCPSegmentHeader, payload: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress,
               now: Instant, host: Host, sink: inout some FrameSink) -> Bool {
        let tuple = FourTuple(local: Endpoint(destination, header.destinationPort), remote: Endpoint(source, header.sourcePort))
        let listening = FamilyPort(header.destinationPort, of: destination)
        if let socket = sockets[tuple], listeners[listening] != nil,
           socket.connection.acceptsNewIncarnation(header) {
            leave(socket) // TIME-WAIT gives way to the new connection (RFC 6191)
        }
        if let socket = sockets[tuple] {
            let result = socket.connection.handle(header, payloadLength: payload.count, now: now)
            socket.apply(result, payload: payload)
            if let store = result.store, store.offset == 0, !store.range.isEmpty { inOrderArrival = (socket, payload) }
            if let drop = result.drop { host.countTCPDrop(drop) }
            if let reset = result.reset {
                host.sendBareSegment(reset, from: tuple.local.address, to: tuple.remote.address, now: now, sink: &sink)
            }
            // Out-of-order data without SACK owes the peer one duplicate ACK per segment
            // (its fast retransmit counts them, RFC 5681 4.2): never coalesced.
            let owesDuplicate = (result.store?.offset ?? 0) > 0 && !socket.connection.sackEnabled
            if owesDuplicate {
                settle(socket, now: now, host: host, sink: &sink)
            } else {
                settleWithBatch(socket, now: now, host: host, sink: &sink)
            }
            return true
        }
        guard let group = listeners[listening] else { return false }
        let listener = listener(for: tuple, among: group)
        guard header.flags.contains(.syn), !header.flags.contains(.ack), !header.flags.contains(.rst) else {
            if let reset = Connection.resetFor(header, payloadLength: payload.count) {
                host.sendBareSegment(reset, from: tuple.local.address, to: tuple.remote.address, now: now, sink: &sink)
            }
            return true
        }
        // With a hand-off, the runtime's accept queue bounds itself; here only embryos count.
        let queued = listener.handOff == nil ? listener.acceptQueue.count : 0
        guard queued + listener.embryonic < listener.backlog else {
            host.countTCPDrop(.tcpListenOverflow)
            return true
        }
        let configuration = Self.configuration(listener.configuration?(tuple.isIPv4) ?? self.configuration, ipv6: !tuple.isIPv4)
        let socket = TCPSocket(.accept(header, tuple: tuple, iss: sequenceNumbers.next(for: tuple, now: now), now: now,
                                       configuration: configuration, timestampOffset: timestampOffset(tuple)),
                               channel: listener.channelMaker?(configuration))
        socket.listener = listener
        socket.reuse = listener.reuse
        listener.embryonic += 1
        enter(socket)
        settle(socket, now: now, host: host, sink: &sink)
        return true
    }

    /// A connection enters the table, and holds its local port from now on.
    func enter(_ socket: TCPSocket) {
        sockets[socket.tuple] = socket
        portHoldChanged?(FamilyPort(socket.tuple.local.port, of: socket.tuple.local.address), socket.reuse, true)
    }

    /// The table's connection leaves it (closed, or giving way to a new incarnation), with
    /// its timer and its hold on the port.
    func leave(_ socket: TCPSocket) {
        sockets[socket.tuple] = nil
        timers.cancel(socket)
        portHoldChanged?(FamilyPort(socket.tuple.local.port, of: socket.tuple.local.address), socket.reuse, false)
    }

    /// Starts a batch (a turn's messages and arriving frames): connections they reach are
    /// settled once, at `endBatch`, so a burst of segments is answered by one ACK (RFC 9293
    /// 3.8.6.3 lets an ACK cover several segments; RFC 5681 4.2 asks only every second one
    /// be acknowledged) and the ACKs of a burst release one burst of output, in
    /// super-segments.
    public func beginBatch() { batching = true }

    /// Settles `socket` at the end of the batch under way, or now outside one.
    public func settleWithBatch(_ socket: TCPSocket, now: Instant, host: Host, sink: inout some FrameSink) {
        guard batching else { settle(socket, now: now, host: host, sink: &sink); return }
        if !socket.awaitingSettle { socket.awaitingSettle = true; unsettled.append(socket) }
    }

    /// Ends the batch: settles every connection it reached, in arrival order.
    public func endBatch(now: Instant, host: Host, sink: inout some FrameSink) {
        batching = false
        for socket in unsettled {
            socket.awaitingSettle = false
            settle(socket, now: now, host: host, sink: &sink)
        }
        unsettled.removeAll(keepingCapacity: true)
    }

    /// After anything happened to a socket: send what the engine wants sent, move a newly
    /// established connection to its listener's accept queue, forget closed ones.
    public func settle(_ socket: TCPSocket, now: Instant, host: Host, sink: inout some FrameSink) {
        socket.absorbApplication(now: now)
        while let segment = socket.connection.nextSegment(now: now) {
            transmit(segment, from: socket, now: now, host: host, sink: &sink)
        }
        // The reader's wakeup after the ACK: a woken reader on this CPU runs at once, and an
        // ACK behind it would keep the peer's next data waiting as long.
        if socket.doorbellOwed {
            socket.doorbellOwed = false
            socket.channel.doorbell.ring()
        }
        socket.channel.send.publishSent(socket.connection.sentData)
        if let found = positionFaultsFound {
            let faults = socket.takePositionFaults()
            if faults > 0 { found(socket.client, faults) }
        }
        let events = socket.connection.takeEvents()
        socket.pendingEvents.formUnion(events)
        if let listener = socket.listener {
            if socket.pendingEvents.contains(.connected) && socket.state != .synReceived
                && !acceptDeferred(socket, by: listener, now: now) {
                listener.embryonic -= 1
                socket.listener = nil
                if let handOff = listener.handOff {
                    if !handOff(socket) {
                        host.countTCPDrop(.tcpListenOverflow)
                        abort(socket, now: now, host: host, sink: &sink)
                        return
                    }
                } else {
                    listener.acceptQueue.append(socket)
                }
            } else if socket.state == .closed {
                listener.embryonic -= 1
                socket.listener = nil
            }
        }
        socket.publish(events)
        let socket = socket.state == .timeWait && socket.connection.orphaned && socket.channel !== retiredChannel
            ? retireBuffers(socket) : socket
        if socket.state == .closed {
            // Only if the table still holds this socket: a new incarnation may own the tuple.
            if sockets[socket.tuple] === socket { leave(socket) } else { timers.cancel(socket) }
            socket.channel.socket = nil // the channel outlives the control block
        } else if let deadline = socket.connection.nextDeadline {
            if deadline != socket.timerPlace.deadline { timers.schedule(socket, at: deadline) }
        } else {
            timers.cancel(socket)
        }
    }

    /// TCP_DEFER_ACCEPT: an established connection that brought no data stays off the
    /// accept queue until data or the peer's FIN arrives, or its time passes (Linux keeps it
    /// a request then, and completes it at the last SYN-ACK's answer); its socket-layer
    /// deadline wakes the owner for that.
    func acceptDeferred(_ socket: TCPSocket, by listener: Listener, now: Instant) -> Bool {
        guard socket.state == .established, socket.connection.unread == 0,
              let deferral = listener.acceptDeferral?() else {
            if socket.acceptDeferredUntil != nil { socket.connection.wakeSocketLayer(at: nil) }
            return false
        }
        let until = socket.acceptDeferredUntil ?? now + deferral
        socket.acceptDeferredUntil = until
        guard now < until else { return false }
        socket.connection.wakeSocketLayer(at: until)
        return true
    }

    /// A connection in TIME-WAIT whose application closed it only answers segments with
    /// ACKs for up to a minute: its control block moves into a socket without buffers, and
    /// its rings go back (to the ring cache, warm, for the next connection) as soon as no
    /// application thread holds the old channel, as Linux turns a closed socket into a small
    /// timewait sock. Under a connections-per-second load the rings were otherwise held for
    /// the whole TIME-WAIT, and every new connection mapped and faulted in fresh ones.
    func retireBuffers(_ socket: TCPSocket) -> TCPSocket {
        let quiet = TCPSocket(socket.connection, channel: retiredChannel)
        quiet.reuse = socket.reuse // the port stays held, by the same connection
        quiet.client = socket.client
        retiredChannel.socket = nil // many sockets share it; no message ever names it
        if let deadline = socket.timerPlace.deadline {
            timers.cancel(socket)
            timers.schedule(quiet, at: deadline)
        }
        if sockets[socket.tuple] === socket { sockets[socket.tuple] = quiet }
        socket.channel.socket = nil
        return quiet
    }

    func transmit(_ segment: OutgoingSegment, from socket: TCPSocket, now: Instant, host: Host, sink: inout some FrameSink) {
        let header = segment.header
        let headerLength = header.headerLength
        let length = headerLength + segment.payloadLength
        let tuple = socket.tuple
        // With checksum offload the link sums the payload; a payload of several MSS is a
        // super-segment the link cuts at the MSS the engine sent it with. Nothing here reads
        // the payload then, so it stays in the send ring for the link's write to gather.
        let partial = host.offloads.checksum
        let offload = partial ? FrameOffload(checksumOffset: TCPSegmentHeader.checksumOffset,
                                             segmentSize: segment.segmentSize, headerLength: headerLength) : .none
        let inPlace = partial && segment.payloadLength > 0
        let payload = inPlace ? socket.channel.send.spans(from: segment.payloadOffset, count: segment.payloadLength) : .none
        host.sendTCP(from: tuple.local.address, to: tuple.remote.address, length: length, now: now, sink: &sink,
                     offload: offload, marking: socket.connection.configuration.marking, payload: payload) { out, addresses in
            if segment.payloadLength > 0 && !inPlace {
                socket.channel.send.copy(from: segment.payloadOffset, count: segment.payloadLength,
                                       into: UnsafeMutableRawBufferPointer(rebasing: out[headerLength..<length]))
            }
            header.emit(into: out, segmentLength: length, addresses: addresses, partialChecksum: partial)
        }
    }

    /// The earliest timer of any connection, from the wheel.
    public var nextDeadline: Instant? { timers.nextDeadline }

    /// Runs the timers due at `now` and sends what they call for.
    public func tick(now: Instant, host: Host, sink: inout some FrameSink) {
        timers.due(now: now, into: &dueSockets)
        defer { dueSockets.removeAll(keepingCapacity: true) }
        for socket in dueSockets {
            // Every way out of the table cancels the socket's timer; a stale one stays quiet.
            guard sockets[socket.tuple] === socket else { continue }
            socket.connection.fireTimers(now: now)
            settle(socket, now: now, host: host, sink: &sink)
        }
    }

    /// ICMP errors for our segments: unreachable ends a connection still opening with the
    /// error (RFC 1122 4.2.3.9 allows aborting then); fragmentation needed lowers the MSS.
    /// The connection is settled with the turn, so a connect fails as soon as the error
    /// arrives (Linux: EHOSTUNREACH at once), not when its next timer would have fired.
    func icmpError(_ report: ICMPErrorReport, now: Instant, host: Host, sink: inout some FrameSink) {
        let quoted = report.quoted
        let tuple = FourTuple(local: Endpoint(quoted.header.source, quoted.sourcePort),
                              remote: Endpoint(quoted.header.destination, quoted.destinationPort))
        icmpError(report.kind, about: tuple, now: now, host: host, sink: &sink)
    }

    /// An ICMP or ICMPv6 error about the connection `tuple` names (ICMPv6's kinds given in
    /// ICMPv4's terms: packet too big as fragmentation needed).
    func icmpError(_ kind: ICMPErrorReport.Kind, about tuple: FourTuple, now: Instant, host: Host, sink: inout some FrameSink) {
        guard let socket = sockets[tuple] else { return }
        switch kind {
        case .fragmentationNeeded(let mtu): socket.connection.pathMTUChanged(Int(mtu))
        case .destinationUnreachable(let code): socket.connection.unreachable(code: code, now: now)
        case .timeExceeded: return
        }
        settleWithBatch(socket, now: now, host: host, sink: &sink)
    }
}
