/// An IPv4 address held as its numeric value (host byte order); the wire order only
/// exists inside parse and emit.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }
    public static let any = IPv4Address(0)
    public static let broadcast = IPv4Address(0xFFFF_FFFF)

    /// Parses dotted-quad notation ("10.77.0.2"); nil for anything else.
    public init?(_ text: some StringProtocol) {
        var parts: [UInt32] = []
        for piece in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !piece.isEmpty, piece.count <= 3, piece.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = UInt32(piece), n <= 255 else { return nil }
            parts.append(n)
        }
        guard parts.count == 4 else { return nil }
        value = parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]
    }

    public var isMulticast: Bool { value >> 28 == 0xE }
    public var isLimitedBroadcast: Bool { value == 0xFFFF_FFFF }
    public var isUnspecified: Bool { value == 0 }
    public var isLoopback: Bool { value >> 24 == 127 }

    /// The network mask for a prefix length 0...32.
    public static func mask(prefixLength: Int) -> UInt32 {
        prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength)
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }
    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// A 48-bit Ethernet address in the low bits of a UInt64, first octet most significant.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public var value: UInt64
    public init(value: UInt64) { self.value = value & 0xFFFF_FFFF_FFFF }
    public init(_ octets: [UInt8]) {
        precondition(octets.count == 6, "a MAC address has six octets")
        value = octets.reduce(0) { $0 << 8 | UInt64($1) }
    }
    public static let broadcast = MACAddress(value: 0xFFFF_FFFF_FFFF)
    public static let zero = MACAddress(value: 0)

    /// Parses "02:00:00:aa:bb:cc"; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        guard pieces.count == 6 else { return nil }
        var v: UInt64 = 0
        for piece in pieces {
            guard piece.count == 2, let octet = UInt8(piece, radix: 16) else { return nil }
            v = v << 8 | UInt64(octet)
        }
        value = v
    }

    public var isBroadcast: Bool { value == 0xFFFF_FFFF_FFFF }
    /// The group bit: the least significant bit of the first octet.
    public var isMulticast: Bool { (value >> 40) & 1 == 1 }
    public var octets: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: value >> UInt64(40 - 8 * $0)) } }

    public var description: String {
        octets.map { let s = String($0, radix: 16); return s.count == 1 ? "0" + s : s }.joined(separator: ":")
    }

    func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer.put16(UInt16(truncatingIfNeeded: value >> 32), at: offset)
        buffer.put32(UInt32(truncatingIfNeeded: value), at: offset + 2)
    }
    static func read(from buffer: UnsafeRawBufferPointer, at offset: Int) -> MACAddress {
        MACAddress(value: UInt64(buffer.be16(offset)) << 32 | UInt64(buffer.be32(offset + 2)))
    }
}
