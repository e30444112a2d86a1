import NetMPTCP
import NetMPTestSupport
import NetMPWire


/// The byte at position `i` of the stream endpoint `id` sends: every byte is checkable.
func streamByte(_ id: Int, _ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: ((i &* 2_654_435_761) >> 7) &+ id &* 31 &+ i) }

/// What the simulated wire does to segments.
struct Impairment {
    var drop = 0.0, duplicate = 0.0, reorder = 0.0
    var delay = Interval.milliseconds(1)
    var reorderDelay = Interval.milliseconds(10)
    /// Bytes per second each direction carries (serialisation delay); 0 for unlimited.
    var rate = 0
}

/// One side: the engine, the buffers the runtime would own, and an application that writes
/// `toSend` bytes, reads and checks everything, and closes once it has written all.
struct SimulatedEndpoint {
    var connection: Connection?
    var configuration: TCPConfiguration
    var sendBuffer: [UInt8] = []
    var written = 0
    let toSend: Int
    var ring: [UInt8]
    var readableEnd = 0
    var received = 0
    var corrupt = false
    var peerClosed = false
    var closedByApp = false
    var failed: TCPError? = nil
    var sawClosed = false

    init(toSend: Int, configuration: TCPConfiguration) {
        self.toSend = toSend
        self.configuration = configuration
        ring = [UInt8](repeating: 0, count: configuration.receiveBufferSize)
    }
}

struct Datagram {
    var at: Instant
    var order: Int
    var to: Int
    var header: TCPSegmentHeader
    var payload: [UInt8]
}

/// Two engines over a simulated wire on a virtual clock: endpoint 0 connects, endpoint 1
/// accepts (a listener that answers anything but a SYN with RST).
final class Simulation {
    var now = Instant(nanoseconds: 1_000_000_000)
    var rng: SeededGenerator
    let impairment: Impairment
    var endpoints: [SimulatedEndpoint]
    var wire: [Datagram] = []
    /// Super-segments (TSO) cross whole, as the kernel's GRO hands them over, instead of
    /// being cut into wire segments.
    var superSegmentsArriveWhole = false
    var superSegments = 0
    var order = 0
    var lineFree = [Instant.zero, Instant.zero]
    let tuples = [FourTuple(local: Endpoint(IPv4Address(10, 0, 0, 1), 40000), remote: Endpoint(IPv4Address(10, 0, 0, 2), 80)),
                  FourTuple(local: Endpoint(IPv4Address(10, 0, 0, 2), 80), remote: Endpoint(IPv4Address(10, 0, 0, 1), 40000))]
    var segmentsSent = 0
    /// The last segments and decisions, kept only when `tracing` (a failing seed is run again with it).
    var tracing = false
    var trace: [String] = []
    func note(_ line: @autoclosure () -> String) {
        guard tracing else { return }
        trace.append("\(now.nanoseconds / 1_000_000)ms " + line())
        if trace.count > 60 { trace.removeFirst() }
    }
    var resetsSent = 0
    var oversized = 0

    init(seed: UInt64, impairment: Impairment, clientBytes: Int, serverBytes: Int,
         client: TCPConfiguration, server: TCPConfiguration) {
        rng = SeededGenerator(state: seed)
        self.impairment = impairment
        endpoints = [SimulatedEndpoint(toSend: clientBytes, configuration: client),
                     SimulatedEndpoint(toSend: serverBytes, configuration: server)]
        endpoints[0].connection = .connect(tuples[0], iss: SequenceNumber(UInt32(truncatingIfNeeded: rng.next())), now: now,
                                           configuration: client)
    }

    var finished: Bool {
        endpoints.allSatisfy { $0.connection?.state == .closed }
    }

    /// Runs until both sides are closed or `limit` of virtual time passed.
    func run(for limit: Interval) {
        let end = now + limit
        service(0); service(1)
        while !finished && now < end {
            var next = wire.map(\.at).min()
            for e in endpoints { if let d = e.connection?.nextDeadline, next == nil || d < next! { next = d } }
            guard let at = next else { break }
            now = max(now, at)
            let due = wire.filter { $0.at <= now }.sorted { ($0.at, $0.order) < ($1.at, $1.order) }
            wire.removeAll { $0.at <= now }
            for datagram in due { deliver(datagram) }
            for i in 0..<2 {
                if let d = endpoints[i].connection?.nextDeadline, d <= now { endpoints[i].connection!.fireTimers(now: now) }
            }
            service(0); service(1)
        }
    }

    func deliver(_ datagram: Datagram) {
        let i = datagram.to
        if endpoints[i].connection == nil {
            // The listener: a SYN makes the connection, anything else gets a reset.
            if datagram.header.flags == .syn {
                endpoints[i].connection = .accept(datagram.header, tuple: tuples[i],
                                                  iss: SequenceNumber(UInt32(truncatingIfNeeded: rng.next())), now: now,
                                                  configuration: endpoints[i].configuration)
            } else if let rst = Connection.resetFor(datagram.header, payloadLength: datagram.payload.count) {
                transmit(from: i, rst, payload: [])
            }
            return
        }
        let h = datagram.header
        let result = endpoints[i].connection!.handle(datagram.header, payloadLength: datagram.payload.count, now: now)
        let c = endpoints[i].connection!
        note("\(i) <- seq \(h.sequenceNumber) ack \(h.acknowledgmentNumber) \(h.flags.rawValue) len \(datagram.payload.count) win \(h.window) => \(c.state) una \(c.sendUnacknowledged) nxt \(c.sendNext) rcvnxt \(c.receiveNext) store \(String(describing: result.store)) rd \(result.readable)")
        var e = endpoints[i]
        if let store = result.store {
            for (k, p) in store.range.enumerated() { e.ring[(e.readableEnd + store.offset + k) % e.ring.count] = datagram.payload[p] }
        }
        e.readableEnd += result.readable
        e.sendBuffer.removeFirst(result.acknowledged)
        endpoints[i] = e
        if let rst = result.reset { transmit(from: i, rst, payload: []) }
    }

    /// The application and the output of endpoint `i`.
    func service(_ i: Int) {
        guard var c = endpoints[i].connection else { return }
        var e = endpoints[i]
        let other = 1 - i
        while e.received < e.readableEnd {
            if e.ring[e.received % e.ring.count] != streamByte(other, e.received) { e.corrupt = true }
            e.received += 1
        }
        c.consumed(c.unread, now: now)
        let limit = e.configuration.sendBufferSize
        if !c.finQueued && c.state != .closed && e.written < e.toSend && e.sendBuffer.count < limit {
            let n = min(limit - e.sendBuffer.count, e.toSend - e.written)
            e.sendBuffer.append(contentsOf: (e.written..<(e.written + n)).map { streamByte(i, $0) })
            e.written += n
            c.queued(n)
        }
        if e.written == e.toSend && !e.closedByApp && (c.state == .established || c.state == .closeWait) {
            c.close(now: now)
            e.closedByApp = true
        }
        var outgoing: [OutgoingSegment] = []
        while let segment = c.nextSegment(now: now) {
            outgoing.append(segment)
            if outgoing.count > 10_000 { fatalError("output does not stop: \(outgoing.suffix(3)) state \(c.state) flight \(c.flight) queued \(c.sendQueued)") }
        }
        let events = c.takeEvents()
        if events.contains(.failed) { e.failed = c.error }
        if events.contains(.peerClosed) { e.peerClosed = true }
        if events.contains(.closed) { e.sawClosed = true }
        for segment in outgoing {
            let payload = Array(e.sendBuffer[segment.payloadOffset..<(segment.payloadOffset + segment.payloadLength)])
            if segment.segmentSize > 0 { superSegments += 1 }
            guard segment.segmentSize > 0, !superSegmentsArriveWhole else {
                transmit(from: i, segment.header, payload: payload)
                continue
            }
            // The link's segmentation (TSO), as the kernel does it: the header repeated with
            // the sequence advanced, FIN and PSH on the last piece only.
            for start in stride(from: 0, to: payload.count, by: segment.segmentSize) {
                var piece = segment.header
                let end = min(start + segment.segmentSize, payload.count)
                piece.sequenceNumber &+= UInt32(start)
                if end < payload.count { piece.flags.subtract([.fin, .psh]) }
                transmit(from: i, piece, payload: Array(payload[start..<end]))
            }
        }
        e.connection = c
        endpoints[i] = e
    }

    func transmit(from i: Int, _ header: TCPSegmentHeader, payload: [UInt8]) {
        note("\(i) -> seq \(header.sequenceNumber) ack \(header.acknowledgmentNumber) \(header.flags.rawValue) len \(payload.count) win \(header.window)")
        segmentsSent += 1
        if header.flags.contains(.rst) { resetsSent += 1 }
        // A segment must fit the sender's MSS plus 20 bytes of TCP header (RFC 6691); a
        // super-segment let through whole stands for several that do.
        if header.headerLength + payload.count > endpoints[i].configuration.maximumSegmentSize + 20
            && !(superSegmentsArriveWhole && endpoints[i].configuration.segmentationLimit > 0) { oversized += 1 }
        guard !rng.chance(impairment.drop) else { return }
        var at = now
        if impairment.rate > 0 {
            let start = max(now, lineFree[i])
            lineFree[i] = start + Interval(nanoseconds: UInt64((payload.count + 54) * 1_000_000_000 / impairment.rate))
            at = lineFree[i]
        }
        at = at + impairment.delay
        if rng.chance(impairment.reorder) { at = at + impairment.reorderDelay }
        order += 1
        wire.append(Datagram(at: at, order: order, to: 1 - i, header: header, payload: payload))
        if rng.chance(impairment.duplicate) {
            order += 1
            wire.append(Datagram(at: at + .milliseconds(2), order: order, to: 1 - i, header: header, payload: payload))
        }
    }
}
