/// An IPv6 address (RFC 4291) held as two 64-bit halves in numeric order, the first
/// written octet most significant; the wire order exists only inside read and write.
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }

    /// The address of eight 16-bit groups, first group first.
    public init(groups: [UInt16]) {
        precondition(groups.count == 8, "an IPv6 address has eight groups")
        high = groups[0..<4].reduce(0) { $0 << 16 | UInt64($1) }
        low = groups[4..<8].reduce(0) { $0 << 16 | UInt64($1) }
    }

    public static let any = IPv6Address(high: 0, low: 0)
    public static let loopback = IPv6Address(high: 0, low: 1)
    /// ff02::1, every node on the link.
    public static let allNodes = IPv6Address(high: 0xFF02 << 48, low: 1)
    /// ff02::2, every router on the link.
    public static let allRouters = IPv6Address(high: 0xFF02 << 48, low: 2)

    public var groups: [UInt16] {
        (0..<8).map { i in UInt16(truncatingIfNeeded: (i < 4 ? high : low) >> UInt64(48 - 16 * (i % 4))) }
    }

    public var isUnspecified: Bool { high == 0 && low == 0 }
    public var isLoopback: Bool { high == 0 && low == 1 }
    public var isMulticast: Bool { high >> 56 == 0xFF }
    /// fe80::/10 (RFC 4291 2.5.6).
    public var isLinkLocal: Bool { high >> 54 == 0x3FA }
    /// ::ffff:a.b.c.d, an IPv4 address on a dual-stack socket (RFC 4291 2.5.5.2).
    public var isIPv4Mapped: Bool { high == 0 && low >> 32 == 0xFFFF }
    public var ipv4Mapped: IPv4Address? { isIPv4Mapped ? IPv4Address(UInt32(truncatingIfNeeded: low)) : nil }
    public init(mapping v4: IPv4Address) { high = 0; low = 0xFFFF_0000_0000 | UInt64(v4.value) }
    /// The scope of a multicast address (RFC 4291 2.7): 1 interface, 2 link, 5 site, 14 global.
    public var multicastScope: UInt8? { isMulticast ? UInt8(truncatingIfNeeded: high >> 48) & 0x0F : nil }
    /// Whether packets to this address stay on the link (link-local unicast, or multicast of
    /// interface or link scope): they need no router and take a link-local source.
    public var isLinkScoped: Bool { isLinkLocal || (multicastScope.map { $0 <= 2 } ?? false) }

    /// ff02::1:ffXX:XXXX, the group a node joins for each of its addresses, where neighbour
    /// solicitations for that address are sent (RFC 4291 2.7.1).
    public var solicitedNodeMulticast: IPv6Address {
        IPv6Address(high: 0xFF02 << 48, low: 0x0001_FF00_0000 | (low & 0xFF_FFFF))
    }
    /// The Ethernet group a multicast address maps to: 33:33 and its low 32 bits (RFC 2464 7).
    public var multicastMAC: MACAddress { MACAddress(value: 0x3333_0000_0000 | (low & 0xFFFF_FFFF)) }

    /// fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291 appendix
    /// A, RFC 2464 4): the universal/local bit flipped and ff:fe in the middle, as Linux
    /// forms its link-local address.
    public static func linkLocal(for mac: MACAddress) -> IPv6Address {
        let m = mac.value
        let identifier = ((m >> 24) ^ 0x02_0000) << 40 | 0xFF_FE00_0000 | (m & 0xFF_FFFF)
        return IPv6Address(high: 0xFE80 << 48, low: identifier)
    }

    /// Whether the first `length` bits equal `prefix`'s (0...128).
    public func hasPrefix(_ prefix: IPv6Address, length: Int) -> Bool {
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? .max : UInt64.max << UInt64(64 - bits) }
        return (high ^ prefix.high) & mask(length) == 0 && (low ^ prefix.low) & mask(length - 64) == 0
    }

    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer.storeBytes(of: high.bigEndian, toByteOffset: offset, as: UInt64.self)
        buffer.storeBytes(of: low.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
    }
    public static func read(from buffer: UnsafeRawBufferPointer, at offset: Int) -> IPv6Address {
        IPv6Address(high: UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
                    low: UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
    }

    /// Parses the text forms of RFC 4291 2.2: eight hex groups, one "::" standing for a run
    /// of zero groups, and a dotted quad in place of the last two groups. No zone ("%eth0"):
    /// a scope belongs to the socket address, not to the address.
    public init?(_ text: some StringProtocol) {
        guard (2...45).contains(text.utf8.count) else { return nil }
        func groups(_ part: Substring, last: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, piece) in pieces.enumerated() {
                if last && i == pieces.count - 1 && piece.contains(".") {
                    guard let v4 = IPv4Address(piece) else { return nil }
                    out.append(UInt16(v4.value >> 16)); out.append(UInt16(v4.value & 0xFFFF))
                    continue
                }
                guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit),
                      let group = UInt16(piece, radix: 16) else { return nil }
                out.append(group)
            }
            return out
        }
        let whole = Substring(text)
        var result: [UInt16]
        if let gap = Self.doubleColon(in: whole) {
            let tail = whole[gap.upperBound...]
            guard Self.doubleColon(in: tail) == nil, let front = groups(whole[..<gap.lowerBound], last: false),
                  let back = groups(tail, last: true), front.count + back.count <= 7 else { return nil }
            result = front + [UInt16](repeating: 0, count: 8 - front.count - back.count) + back
        } else {
            guard let all = groups(whole, last: true), all.count == 8 else { return nil }
            result = all
        }
        self.init(groups: result)
    }

    static func doubleColon(in text: Substring) -> Range<Substring.Index>? {
        var i = text.startIndex
        while i < text.endIndex {
            let next = text.index(after: i)
            if next < text.endIndex && text[i] == ":" && text[next] == ":" { return i..<text.index(after: next) }
            i = next
        }
        return nil
    }

    /// RFC 5952's canonical text: lowercase hex without leading zeros, the longest run of
    /// two or more zero groups (the first of equals) as "::", and IPv4-mapped addresses
    /// with their dotted quad.
    public var description: String {
        if let v4 = ipv4Mapped { return "::ffff:\(v4)" }
        let g = groups
        var best = (start: -1, length: 0)
        var i = 0
        while i < 8 {
            guard g[i] == 0 else { i += 1; continue }
            var j = i
            while j < 8 && g[j] == 0 { j += 1 }
            if j - i > best.length && j - i >= 2 { best = (i, j - i) }
            i = j
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(g[$0], radix: 16) }.joined(separator: ":") }
        guard best.start >= 0 else { return hex(0..<8) }
        return hex(0..<best.start) + "::" + hex((best.start + best.length)..<8)
    }

    public static func < (a: IPv6Address, b: IPv6Address) -> Bool { (a.high, a.low) < (b.high, b.low) }
}
