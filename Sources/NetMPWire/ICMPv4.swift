/// The start of a datagram quoted in an ICMP error (RFC 792: the IP header and at least 8
/// bytes of its payload), which is all a transport needs to find the connection it hit.
public struct QuotedDatagram: Equatable, Sendable {
    public var header: IPv4Header
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// For TCP, the quoted sequence number (RFC 5927 checks it is in flight).
    public var sequenceNumber: UInt32

    public init(header: IPv4Header, sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32) {
        self.header = header; self.sourcePort = sourcePort
        self.destinationPort = destinationPort; self.sequenceNumber = sequenceNumber
    }

    init(parsing bytes: UnsafeRawBufferPointer) throws(WireError) {
        // The quoted header's own checksum and total length describe the original datagram,
        // of which only the start is here.
        let header: IPv4Header
        do { header = try IPv4Header(parsing: bytes, verifyChecksum: false, allowTruncatedPayload: true) }
        catch { throw .icmpBadQuotedDatagram }
        guard bytes.count >= header.headerLength + 8 else { throw .icmpBadQuotedDatagram }
        let t = header.headerLength
        self.init(header: header, sourcePort: bytes.be16(t), destinationPort: bytes.be16(t + 2),
                  sequenceNumber: bytes.be32(t + 4))
    }
}

/// ICMPv4 messages (RFC 792, RFC 1191 for fragmentation needed).
public enum ICMPv4Message: Equatable, Sendable {
    public static let headerLength = 8
    public enum Kind { public static let echoReply: UInt8 = 0, destinationUnreachable: UInt8 = 3,
                       echoRequest: UInt8 = 8, timeExceeded: UInt8 = 11 }
    /// Destination-unreachable codes transports act on.
    public enum UnreachableCode {
        public static let network: UInt8 = 0, host: UInt8 = 1, proto: UInt8 = 2, port: UInt8 = 3
        public static let fragmentationNeeded: UInt8 = 4, adminProhibited: UInt8 = 13
    }

    /// An echo request or reply; the data follows the 8-byte header in the parsed buffer.
    case echoRequest(identifier: UInt16, sequence: UInt16)
    case echoReply(identifier: UInt16, sequence: UInt16)
    /// Code 4 (fragmentation needed) carries the next-hop MTU of RFC 1191, else 0.
    case destinationUnreachable(code: UInt8, nextHopMTU: UInt16, quoted: QuotedDatagram)
    case timeExceeded(code: UInt8, quoted: QuotedDatagram)
    /// Any other type: valid, but netmp does not act on it.
    case other(type: UInt8, code: UInt8)

    /// Parses a whole ICMP message (header and data) and checks its checksum.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Self.headerLength else { throw .icmpTruncated }
        guard InternetChecksum.of(bytes) == 0 else { throw .icmpBadChecksum }
        let type = bytes[0], code = bytes[1]
        let rest = UnsafeRawBufferPointer(rebasing: bytes[Self.headerLength...])
        switch type {
        case Kind.echoRequest: self = .echoRequest(identifier: bytes.be16(4), sequence: bytes.be16(6))
        case Kind.echoReply: self = .echoReply(identifier: bytes.be16(4), sequence: bytes.be16(6))
        case Kind.destinationUnreachable:
            let mtu = code == UnreachableCode.fragmentationNeeded ? bytes.be16(6) : 0
            self = .destinationUnreachable(code: code, nextHopMTU: mtu, quoted: try QuotedDatagram(parsing: rest))
        case Kind.timeExceeded:
            self = .timeExceeded(code: code, quoted: try QuotedDatagram(parsing: rest))
        default: self = .other(type: type, code: code)
        }
    }

    /// Writes an echo reply or request header followed by `data`, with its checksum.
    /// Returns the message length. `buffer` must hold 8 + data.count bytes.
    public static func emitEcho(reply: Bool, identifier: UInt16, sequence: UInt16,
                                data: UnsafeRawBufferPointer, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        buffer.put8(reply ? Kind.echoReply : Kind.echoRequest, at: 0)
        buffer.put8(0, at: 1)
        buffer.put16(0, at: 2)
        buffer.put16(identifier, at: 4)
        buffer.put16(sequence, at: 6)
        if data.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: buffer[headerLength..<headerLength + data.count])
                .copyMemory(from: data)
        }
        let length = headerLength + data.count
        buffer.put16(InternetChecksum.of(UnsafeRawBufferPointer(rebasing: buffer[0..<length])), at: 2)
        return length
    }

    /// Bytes of the offending datagram an error quotes: as much as keeps the error within
    /// 576 bytes (RFC 1812 4.3.2.3), which is what Linux sends.
    public static let maximumQuote = 576 - 20 - headerLength

    /// Writes an error message (destination unreachable or time exceeded) quoting the start
    /// of `original` (up to `maximumQuote` bytes). Returns the message length.
    public static func emitError(type: UInt8, code: UInt8, nextHopMTU: UInt16 = 0,
                                 original: UnsafeRawBufferPointer,
                                 into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let quoted = min(original.count, maximumQuote)
        buffer.put8(type, at: 0)
        buffer.put8(code, at: 1)
        buffer.put16(0, at: 2)
        buffer.put16(0, at: 4)
        buffer.put16(nextHopMTU, at: 6)
        UnsafeMutableRawBufferPointer(rebasing: buffer[headerLength..<headerLength + quoted])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: original[0..<quoted]))
        let length = headerLength + quoted
        buffer.put16(InternetChecksum.of(UnsafeRawBufferPointer(rebasing: buffer[0..<length])), at: 2)
        return length
    }
}
