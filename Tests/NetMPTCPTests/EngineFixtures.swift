import NetMPTCP
import NetMPWire

/// Fixtures that build each state from the one before it, as smoltcp's socket_established().
enum Fixture {
    static let client = Endpoint(IPv4Address(10, 0, 0, 1), 40000)
    static let server = Endpoint(IPv4Address(10, 0, 0, 2), 80)
    static let tuple = FourTuple(local: client, remote: server)
    static let iss = SequenceNumber(1000)
    static let peerISS: UInt32 = 5000
    static let t0 = Instant(nanoseconds: 1_000_000_000)

    static func configuration() -> TCPConfiguration {
        var c = TCPConfiguration()
        c.receiveBufferSize = 65_535
        return c
    }

    /// A segment from the peer (server) to us (client).
    static func segment(_ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0, window: UInt16 = 65_535,
                        options: TCPOptions = TCPOptions()) -> TCPSegmentHeader {
        TCPSegmentHeader(sourcePort: server.port, destinationPort: client.port, sequenceNumber: seq,
                         acknowledgmentNumber: ack, flags: flags, window: window, options: options)
    }

    static func synSent(_ config: TCPConfiguration = configuration()) -> Connection {
        var c = Connection.connect(tuple, iss: iss, now: t0, configuration: config)
        _ = c.nextSegment(now: t0) // the SYN
        return c
    }

    static func synAckOptions(mss: UInt16 = 1460, scale: UInt8? = 7, timestamps: Bool = false, sack: Bool = true) -> TCPOptions {
        var o = TCPOptions()
        o.maximumSegmentSize = mss
        o.windowScale = scale
        o.sackPermitted = sack
        if timestamps { o.timestamp = (777, 0) }
        return o
    }

    static func established(_ config: TCPConfiguration = configuration()) -> Connection {
        var c = synSent(config)
        _ = c.handle(segment([.syn, .ack], seq: peerISS, ack: iss.raw + 1, window: 65_535, options: synAckOptions(scale: 0)),
                     payloadLength: 0, now: t0)
        _ = c.nextSegment(now: t0) // the ACK
        _ = c.takeEvents()
        return c
    }

    /// Everything the connection sends now.
    static func drain(_ c: inout Connection, now: Instant = t0) -> [OutgoingSegment] {
        var out: [OutgoingSegment] = []
        while let s = c.nextSegment(now: now) { out.append(s); if out.count > 1000 { break } }
        return out
    }
}
