/// IPv6 next-header values netmp acts on, beside `IPProtocol`'s TCP and UDP.
public enum IPv6NextHeader {
    public static let hopByHop: UInt8 = 0
    public static let routing: UInt8 = 43
    public static let fragment: UInt8 = 44
    public static let icmpv6: UInt8 = 58
    public static let noNextHeader: UInt8 = 59
    public static let destinationOptions: UInt8 = 60
}

/// The fixed IPv6 header (RFC 8200 3). Parsing checks the version and that the payload
/// length fits the bytes; extension headers are `IPv6ExtensionHeaders`' work.
public struct IPv6Header: Equatable, Sendable {
    public static let length = 40
    /// The smallest MTU every IPv6 link carries (RFC 8200 5): ICMPv6 errors fit in it.
    public static let minimumMTU = 1280

    public var trafficClass: UInt8 = 0
    public var flowLabel: UInt32 = 0
    /// Bytes after this header, extension headers included.
    public var payloadLength: Int
    public var nextHeader: UInt8
    public var hopLimit: UInt8
    public var source: IPv6Address
    public var destination: IPv6Address

    public init(payloadLength: Int, nextHeader: UInt8, source: IPv6Address, destination: IPv6Address,
                hopLimit: UInt8 = 64) {
        self.payloadLength = payloadLength; self.nextHeader = nextHeader; self.source = source
        self.destination = destination; self.hopLimit = hopLimit
    }

    /// Parses the header at the start of `bytes`. `allowTruncatedPayload` is for headers
    /// quoted inside ICMPv6 errors, whose payload length describes the original packet.
    public init(parsing bytes: UnsafeRawBufferPointer, allowTruncatedPayload: Bool = false) throws(WireError) {
        guard bytes.count >= Self.length else { throw .ipv6Truncated }
        let first = bytes.be32(0)
        guard first >> 28 == 6 else { throw .ipv6BadVersion }
        let payload = Int(bytes.be16(4))
        guard allowTruncatedPayload || Self.length + payload <= bytes.count else { throw .ipv6BadPayloadLength }
        trafficClass = UInt8(truncatingIfNeeded: first >> 20)
        flowLabel = first & 0xF_FFFF
        payloadLength = payload
        nextHeader = bytes[6]
        hopLimit = bytes[7]
        source = IPv6Address.read(from: bytes, at: 8)
        destination = IPv6Address.read(from: bytes, at: 24)
    }

    /// Writes the 40-byte header; returns 40.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        buffer.put32(6 << 28 | UInt32(trafficClass) << 20 | flowLabel & 0xF_FFFF, at: 0)
        buffer.put16(UInt16(truncatingIfNeeded: payloadLength), at: 4)
        buffer.put8(nextHeader, at: 6)
        buffer.put8(hopLimit, at: 7)
        source.write(to: buffer, at: 8)
        destination.write(to: buffer, at: 24)
        return Self.length
    }
}

extension InternetChecksum {
    /// Adds the IPv6 pseudo-header of RFC 8200 8.1 for an upper-layer packet of `length`
    /// bytes (TCP, UDP and ICMPv6 all cover it).
    public mutating func addPseudoHeader(source: IPv6Address, destination: IPv6Address, nextHeader: UInt8, length: Int) {
        add(half: source.high); add(half: source.low)
        add(half: destination.high); add(half: destination.low)
        add(UInt32(truncatingIfNeeded: length))
        add(UInt16(nextHeader))
    }

    mutating func add(half: UInt64) {
        add(UInt32(truncatingIfNeeded: half >> 32))
        add(UInt32(truncatingIfNeeded: half))
    }
}
