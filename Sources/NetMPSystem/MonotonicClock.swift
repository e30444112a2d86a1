import Glibc
import NetMPWire

/// The runtime's only clock: CLOCK_MONOTONIC, read once per batch of frames and passed
/// into the pure layers as `now`.
public enum MonotonicClock {
    public static func now() -> Instant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Instant(nanoseconds: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }
}
