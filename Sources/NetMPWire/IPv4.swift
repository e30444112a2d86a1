/// IP protocol numbers netmp acts on.
public enum IPProtocol {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let igmp: UInt8 = 2
}

/// An IPv4 header (RFC 791). Parsing checks version, IHL, total length and the header
/// checksum; options are skipped by honouring IHL. Fragments are recognised
/// (`isFragment`): netmp does not reassemble, the stack counts and drops them.
public struct IPv4Header: Equatable, Sendable {
    public static let minimumLength = 20
    enum Offset {
        static let versionIHL = 0, tos = 1, totalLength = 2, identification = 4, flagsFragment = 6
        static let ttl = 8, proto = 9, checksum = 10, source = 12, destination = 16
    }

    public var typeOfService: UInt8 = 0
    public var totalLength: Int
    public var identification: UInt16 = 0
    public var dontFragment: Bool = true
    public var moreFragments: Bool = false
    /// Fragment offset in bytes (the field counts 8-byte units).
    public var fragmentOffset: Int = 0
    public var timeToLive: UInt8 = 64
    public var proto: UInt8
    public var source: IPv4Address
    public var destination: IPv4Address
    /// Header length in bytes, options included (20...60).
    public var headerLength: Int = 20
    /// Emit the Router Alert option (RFC 2113), which IGMP's messages carry (RFC 3376
    /// 4): a 24-byte header.
    public var routerAlert = false

    public init(totalLength: Int, proto: UInt8, source: IPv4Address, destination: IPv4Address,
                timeToLive: UInt8 = 64, identification: UInt16 = 0, dontFragment: Bool = true) {
        self.totalLength = totalLength; self.proto = proto; self.source = source
        self.destination = destination; self.timeToLive = timeToLive
        self.identification = identification; self.dontFragment = dontFragment
    }

    public var isFragment: Bool { moreFragments || fragmentOffset != 0 }
    public var payloadLength: Int { totalLength - headerLength }

    /// Parses the header at the start of `bytes`. `verifyChecksum` is false only where the
    /// link vouches for the checksum, and for headers quoted inside ICMP errors.
    public init(parsing bytes: UnsafeRawBufferPointer, verifyChecksum: Bool = true,
                allowTruncatedPayload: Bool = false) throws(WireError) {
        guard bytes.count >= Self.minimumLength else { throw .ipv4Truncated }
        let versionIHL = bytes[Offset.versionIHL]
        guard versionIHL >> 4 == 4 else { throw .ipv4BadVersion }
        let ihl = Int(versionIHL & 0x0F) * 4
        guard ihl >= Self.minimumLength, ihl <= bytes.count else { throw .ipv4BadHeaderLength }
        let total = Int(bytes.be16(Offset.totalLength))
        guard total >= ihl, allowTruncatedPayload || total <= bytes.count else { throw .ipv4BadTotalLength }
        if verifyChecksum {
            var sum = InternetChecksum()
            sum.add(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<ihl]))
            guard sum.isValid else { throw .ipv4BadChecksum }
        }
        headerLength = ihl
        totalLength = total
        typeOfService = bytes[Offset.tos]
        identification = bytes.be16(Offset.identification)
        let flagsFragment = bytes.be16(Offset.flagsFragment)
        dontFragment = flagsFragment & 0x4000 != 0
        moreFragments = flagsFragment & 0x2000 != 0
        fragmentOffset = Int(flagsFragment & 0x1FFF) * 8
        timeToLive = bytes[Offset.ttl]
        proto = bytes[Offset.proto]
        source = IPv4Address(bytes.be32(Offset.source))
        destination = IPv4Address(bytes.be32(Offset.destination))
    }

    /// The length `emit` writes: 20 bytes, 24 with the Router Alert option.
    public var emittedLength: Int { routerAlert ? 24 : Self.minimumLength }

    /// Writes the header with its checksum; returns its length (`emittedLength`). The one
    /// option netmp sends is Router Alert.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let length = emittedLength
        buffer.put8(0x40 | UInt8(length / 4), at: Offset.versionIHL)
        buffer.put8(typeOfService, at: Offset.tos)
        buffer.put16(UInt16(truncatingIfNeeded: totalLength), at: Offset.totalLength)
        buffer.put16(identification, at: Offset.identification)
        var flagsFragment = UInt16(truncatingIfNeeded: fragmentOffset / 8) & 0x1FFF
        if dontFragment { flagsFragment |= 0x4000 }
        if moreFragments { flagsFragment |= 0x2000 }
        buffer.put16(flagsFragment, at: Offset.flagsFragment)
        buffer.put8(timeToLive, at: Offset.ttl)
        buffer.put8(proto, at: Offset.proto)
        buffer.put16(0, at: Offset.checksum)
        buffer.put32(source.value, at: Offset.source)
        buffer.put32(destination.value, at: Offset.destination)
        if routerAlert { buffer.put32(0x9404_0000, at: Self.minimumLength) } // type 148, length 4, value 0
        let sum = InternetChecksum.of(UnsafeRawBufferPointer(rebasing: buffer[0..<length]))
        buffer.put16(sum, at: Offset.checksum)
        return length
    }
}
