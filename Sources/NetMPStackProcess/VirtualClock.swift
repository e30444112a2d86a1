import NetMPWire
import Synchronization

/// Time that moves only when a test moves it. A stack started with one
/// (`NetworkStack.start(..., clock:)`) runs no protocol threads: its cores take one turn
/// each when the test calls `NetworkStack.turn()`, reading this clock instead of
/// CLOCK_MONOTONIC. So the boundary between an application's sockets and a core runs in
/// an order the test chooses, and timers of minutes or hours (SYN retries, keepalive,
/// TIME-WAIT) pass in as many turns as the test takes, not in wall-clock time.
public final class VirtualClock: Sendable {
    private let nanoseconds: Atomic<UInt64>

    /// Starts at `start` (not zero: nothing may take time zero for "never").
    public init(start: Instant = Instant(nanoseconds: 1_000_000_000)) {
        nanoseconds = Atomic(start.nanoseconds)
    }

    public var now: Instant { Instant(nanoseconds: nanoseconds.load(ordering: .acquiring)) }

    public func advance(by interval: Interval) {
        nanoseconds.add(interval.nanoseconds, ordering: .releasing)
    }
}
