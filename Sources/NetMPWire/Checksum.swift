/// The Internet checksum (RFC 1071): a ones'-complement sum of 16-bit words.
///
/// Bytes are summed eight at a time in native order and swapped once at the end; RFC 1071
/// section 2(B) shows the sum is byte-order independent, so this equals the big-endian sum.
public struct InternetChecksum: Sendable {
    /// The running sum in network (numeric) terms, not yet folded.
    var sum: UInt64 = 0

    public init() {}

    /// Adds a 16-bit field given as its numeric value.
    public mutating func add(_ word: UInt16) { sum &+= UInt64(word) }
    /// Adds a 32-bit field (two words) given as its numeric value.
    public mutating func add(_ word: UInt32) { sum &+= UInt64(word >> 16) &+ UInt64(word & 0xFFFF) }

    /// Adds bytes. Only the last buffer of a sum may have odd length (RFC 1071 pads it with
    /// a zero byte); every header netmp sums before a payload has even length.
    public mutating func add(bytes: UnsafeRawBufferPointer) {
        var native: UInt64 = 0
        var offset = 0
        let count = bytes.count
        // 32 bytes a round: four independent 64-bit loads, each split in halves so that
        // the accumulator cannot overflow for any buffer below 2^32 words.
        while offset + 32 <= count {
            let a = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let b = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            let c = bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)
            let d = bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)
            native &+= (a & 0xFFFF_FFFF) &+ (a >> 32) &+ (b & 0xFFFF_FFFF) &+ (b >> 32)
            native &+= (c & 0xFFFF_FFFF) &+ (c >> 32) &+ (d & 0xFFFF_FFFF) &+ (d >> 32)
            offset += 32
        }
        while offset + 8 <= count {
            let a = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            native &+= (a & 0xFFFF_FFFF) &+ (a >> 32)
            offset += 8
        }
        while offset + 2 <= count {
            native &+= UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            offset += 2
        }
        if offset < count {
            // The odd byte is the high half of a big-endian word padded with zero; in native
            // (little-endian) terms it is the low byte of a word.
            native &+= UInt64(UInt16(bytes[offset]).littleEndian)
        }
        let folded = Self.fold(native)
        sum &+= UInt64(UInt16(bigEndian: folded))
    }

    /// Adds the IPv4 pseudo-header of RFC 793 / RFC 768 for a transport segment.
    public mutating func addPseudoHeader(source: IPv4Address, destination: IPv4Address,
                                         protocol proto: UInt8, length: Int) {
        add(source.value)
        add(destination.value)
        add(UInt16(proto))
        add(UInt16(truncatingIfNeeded: length))
    }

    /// The folded sum, not complemented: what a checksum field holds for partial offload.
    public var partial: UInt16 { Self.fold(sum) }
    /// The checksum to write into a header: the complement of the folded sum.
    public var value: UInt16 { ~Self.fold(sum) }
    /// True when the summed bytes included a correct checksum field.
    public var isValid: Bool { Self.fold(sum) == 0xFFFF }

    static func fold(_ s: UInt64) -> UInt16 {
        var s = s
        while s >> 16 != 0 { s = (s & 0xFFFF) &+ (s >> 16) }
        return UInt16(s)
    }

    /// RFC 1624 equation 3: the checksum after one 16-bit field changed from `old` to `new`,
    /// without summing the packet again (HC' = ~(~HC + ~m + m')).
    public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        ~fold(UInt64(~checksum) &+ UInt64(~old) &+ UInt64(new))
    }
    /// RFC 1624 for a 32-bit field (an address), as two word updates.
    public static func update(_ checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        let high = update(checksum, old: UInt16(old >> 16), new: UInt16(new >> 16))
        return update(high, old: UInt16(old & 0xFFFF), new: UInt16(new & 0xFFFF))
    }

    /// Convenience: the checksum of one buffer.
    public static func of(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var c = InternetChecksum()
        c.add(bytes: bytes)
        return c.value
    }
}
