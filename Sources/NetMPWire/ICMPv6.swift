/// The start of a packet quoted in an ICMPv6 error (RFC 4443 2.4: as much of it as fits in
/// 1280 bytes): its header and, when the quote reaches them, its transport ports.
public struct QuotedIPv6Packet: Equatable, Sendable {
    public var header: IPv6Header
    /// The upper layer the quoted packet carried, and its first 8 bytes' fields when the
    /// quote holds them (nil otherwise: an extension chain longer than the quote).
    public var upperLayer: UInt8
    public var ports: (source: UInt16, destination: UInt16, sequenceNumber: UInt32)? {
        hasPorts ? (sourcePort, destinationPort, sequenceNumber) : nil
    }
    var hasPorts = false
    /// Where the upper layer's header starts in the quote, when the quote reaches past its
    /// first 8 bytes (what follows a UDP header there is the datagram's payload).
    public var upperLayerOffset: Int? { hasPorts ? upperLayerAt : nil }
    var upperLayerAt = 0
    var sourcePort: UInt16 = 0
    var destinationPort: UInt16 = 0
    var sequenceNumber: UInt32 = 0

    init(parsing bytes: UnsafeRawBufferPointer) throws(WireError) {
        do { header = try IPv6Header(parsing: bytes, allowTruncatedPayload: true) } catch { throw .icmpv6BadQuotedPacket }
        upperLayer = header.nextHeader
        guard let chain = try? IPv6ExtensionHeaders(walking: bytes), chain.problem == nil,
              chain.fragment.map({ $0.offset == 0 }) ?? true else { return }
        upperLayer = chain.upperLayer
        let at = chain.upperLayerOffset
        guard at + 8 <= bytes.count else { return }
        hasPorts = true
        upperLayerAt = at
        sourcePort = bytes.be16(at)
        destinationPort = bytes.be16(at + 2)
        sequenceNumber = bytes.be32(at + 4)
    }
}

/// ICMPv6 messages (RFC 4443) and the neighbour discovery messages carried in them
/// (RFC 4861, `NeighbourDiscovery.swift`). Every message is checked against its checksum,
/// which covers the IPv6 pseudo-header.
public enum ICMPv6Message: Equatable, Sendable {
    public static let headerLength = 8
    public enum Kind {
        public static let destinationUnreachable: UInt8 = 1, packetTooBig: UInt8 = 2, timeExceeded: UInt8 = 3
        public static let parameterProblem: UInt8 = 4, echoRequest: UInt8 = 128, echoReply: UInt8 = 129
        public static let routerSolicitation: UInt8 = 133, routerAdvertisement: UInt8 = 134
        public static let neighbourSolicitation: UInt8 = 135, neighbourAdvertisement: UInt8 = 136
    }
    /// Destination-unreachable codes (RFC 4443 3.1).
    public enum UnreachableCode {
        public static let noRoute: UInt8 = 0, adminProhibited: UInt8 = 1, beyondScope: UInt8 = 2
        public static let address: UInt8 = 3, port: UInt8 = 4
    }
    /// Parameter-problem codes (RFC 4443 3.4).
    public enum ProblemCode {
        public static let erroneousField: UInt8 = 0, unrecognizedNextHeader: UInt8 = 1, unrecognizedOption: UInt8 = 2
    }

    /// An echo request or reply; the data follows the 8-byte header in the parsed buffer.
    case echoRequest(identifier: UInt16, sequence: UInt16)
    case echoReply(identifier: UInt16, sequence: UInt16)
    case destinationUnreachable(code: UInt8, quoted: QuotedIPv6Packet)
    case packetTooBig(mtu: UInt32, quoted: QuotedIPv6Packet)
    case timeExceeded(code: UInt8, quoted: QuotedIPv6Packet)
    case parameterProblem(code: UInt8, pointer: UInt32, quoted: QuotedIPv6Packet)
    case routerSolicitation(sourceLinkLayer: MACAddress?)
    case routerAdvertisement(RouterAdvertisement)
    case neighbourSolicitation(target: IPv6Address, sourceLinkLayer: MACAddress?)
    case neighbourAdvertisement(NeighbourAdvertisement)
    /// Any other type (a redirect, a multicast listener query): valid, not acted on.
    case other(type: UInt8, code: UInt8)

    /// Parses a whole ICMPv6 message. `source`, `destination` and `hopLimit` are its IPv6
    /// header's: the checksum covers the addresses, and neighbour discovery's validity
    /// rules read all three. `verifyChecksum` is false only where the link vouched for it.
    public init(parsing bytes: UnsafeRawBufferPointer, source: IPv6Address, destination: IPv6Address,
                hopLimit: UInt8, verifyChecksum: Bool = true) throws(WireError) {
        guard bytes.count >= Self.headerLength else { throw .icmpv6Truncated }
        if verifyChecksum {
            var sum = InternetChecksum()
            sum.addPseudoHeader(source: source, destination: destination, nextHeader: IPv6NextHeader.icmpv6,
                                length: bytes.count)
            sum.add(bytes: bytes)
            guard sum.isValid else { throw .icmpv6BadChecksum }
        }
        let type = bytes[0], code = bytes[1]
        let rest = UnsafeRawBufferPointer(rebasing: bytes[Self.headerLength...])
        switch type {
        case Kind.echoRequest: self = .echoRequest(identifier: bytes.be16(4), sequence: bytes.be16(6))
        case Kind.echoReply: self = .echoReply(identifier: bytes.be16(4), sequence: bytes.be16(6))
        case Kind.destinationUnreachable: self = .destinationUnreachable(code: code, quoted: try QuotedIPv6Packet(parsing: rest))
        case Kind.packetTooBig: self = .packetTooBig(mtu: bytes.be32(4), quoted: try QuotedIPv6Packet(parsing: rest))
        case Kind.timeExceeded: self = .timeExceeded(code: code, quoted: try QuotedIPv6Packet(parsing: rest))
        case Kind.parameterProblem:
            self = .parameterProblem(code: code, pointer: bytes.be32(4), quoted: try QuotedIPv6Packet(parsing: rest))
        case Kind.routerSolicitation...Kind.neighbourAdvertisement:
            self = try Self.neighbourDiscovery(bytes, source: source, destination: destination, hopLimit: hopLimit)
        default: self = .other(type: type, code: code)
        }
    }

    /// Writes an echo request or reply followed by `data`, with its checksum; returns the
    /// message length. `buffer` must hold 8 + data.count bytes.
    public static func emitEcho(reply: Bool, identifier: UInt16, sequence: UInt16, data: UnsafeRawBufferPointer,
                                source: IPv6Address, destination: IPv6Address,
                                into buffer: UnsafeMutableRawBufferPointer) -> Int {
        buffer.put8(reply ? Kind.echoReply : Kind.echoRequest, at: 0)
        buffer.put8(0, at: 1)
        buffer.put16(identifier, at: 4)
        buffer.put16(sequence, at: 6)
        if data.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: buffer[headerLength..<headerLength + data.count]).copyMemory(from: data)
        }
        return finish(buffer, length: headerLength + data.count, source: source, destination: destination)
    }

    /// Bytes of the offending packet an error quotes: as many as keep the error within the
    /// minimum MTU (RFC 4443 2.4 (c)).
    public static let maximumQuote = IPv6Header.minimumMTU - IPv6Header.length - headerLength

    /// Writes an error message quoting the start of `original`; `parameter` is the MTU of a
    /// packet-too-big or the pointer of a parameter problem. Returns the message length.
    public static func emitError(type: UInt8, code: UInt8, parameter: UInt32 = 0, original: UnsafeRawBufferPointer,
                                 source: IPv6Address, destination: IPv6Address,
                                 into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let quoted = min(original.count, maximumQuote)
        buffer.put8(type, at: 0)
        buffer.put8(code, at: 1)
        buffer.put32(parameter, at: 4)
        UnsafeMutableRawBufferPointer(rebasing: buffer[headerLength..<headerLength + quoted])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: original[0..<quoted]))
        return finish(buffer, length: headerLength + quoted, source: source, destination: destination)
    }

    /// Fills in the checksum of the `length`-byte message at the start of `buffer`.
    static func finish(_ buffer: UnsafeMutableRawBufferPointer, length: Int, source: IPv6Address,
                       destination: IPv6Address) -> Int {
        buffer.put16(0, at: 2)
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: source, destination: destination, nextHeader: IPv6NextHeader.icmpv6, length: length)
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<length]))
        buffer.put16(sum.value, at: 2)
        return length
    }
}
