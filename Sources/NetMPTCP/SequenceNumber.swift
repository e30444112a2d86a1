/// A TCP sequence number: arithmetic and comparison modulo 2^32 (RFC 9293 3.4), valid for
/// numbers less than 2^31 apart, which the window limits guarantee.
public struct SequenceNumber: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var raw: UInt32
    public init(_ raw: UInt32) { self.raw = raw }

    public static func + (a: SequenceNumber, n: Int) -> SequenceNumber { SequenceNumber(a.raw &+ UInt32(truncatingIfNeeded: n)) }
    public static func += (a: inout SequenceNumber, n: Int) { a = a + n }
    public static func - (a: SequenceNumber, n: Int) -> SequenceNumber { a + (-n) }
    /// The signed distance from `b` to `a`.
    public static func - (a: SequenceNumber, b: SequenceNumber) -> Int { Int(Int32(bitPattern: a.raw &- b.raw)) }
    public static func < (a: SequenceNumber, b: SequenceNumber) -> Bool { a - b < 0 }
    public var description: String { String(raw) }
}

extension SequenceNumber {
    /// min and max in sequence space.
    static func latest(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber { a < b ? b : a }
}
