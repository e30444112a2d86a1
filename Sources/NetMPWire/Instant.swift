/// A point on a monotonic clock, in nanoseconds. The pure layers never read a clock:
/// the runtime passes `now` in, and tests pass a simulated one.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    public static let zero = Instant(nanoseconds: 0)

    public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }
    public static func + (a: Instant, b: Interval) -> Instant { Instant(nanoseconds: a.nanoseconds &+ b.nanoseconds) }
    public static func - (a: Instant, b: Instant) -> Interval {
        Interval(nanoseconds: a.nanoseconds >= b.nanoseconds ? a.nanoseconds - b.nanoseconds : 0)
    }
    public var description: String { "\(nanoseconds)ns" }
}

/// A non-negative span of time in nanoseconds.
public struct Interval: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    public static let zero = Interval(nanoseconds: 0)
    public static func microseconds(_ n: UInt64) -> Interval { Interval(nanoseconds: n * 1_000) }
    public static func milliseconds(_ n: UInt64) -> Interval { Interval(nanoseconds: n * 1_000_000) }
    public static func seconds(_ n: UInt64) -> Interval { Interval(nanoseconds: n * 1_000_000_000) }
    public static func < (a: Interval, b: Interval) -> Bool { a.nanoseconds < b.nanoseconds }
    public static func + (a: Interval, b: Interval) -> Interval { Interval(nanoseconds: a.nanoseconds &+ b.nanoseconds) }
}
