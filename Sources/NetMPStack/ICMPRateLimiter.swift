import NetMPWire

/// The bound on the ICMP and ICMPv6 errors a host sends (RFC 4443 2.4 (f) requires one,
/// RFC 1812 4.3.2.8 asks for one): a token bucket with Linux's defaults, icmp_msgs_per_sec
/// 1000 and icmp_msgs_burst 50, so a flood of packets that each earn an error cannot make
/// the host a flood of its own.
public struct ICMPRateLimiter: Sendable {
    public var burst = 50
    public var perSecond = 1000
    var tokens: Int
    var refilled: Instant?

    public init() { tokens = burst }

    /// Takes a token for one error at `now`; false when the bucket is empty.
    public mutating func allow(now: Instant) -> Bool {
        if let refilled, now > refilled {
            let earned = Int(min((now - refilled).nanoseconds, 1_000_000_000) * UInt64(perSecond) / 1_000_000_000)
            if earned > 0 {
                tokens = min(burst, tokens + earned)
                self.refilled = now
            }
        } else if refilled == nil {
            refilled = now
        }
        guard tokens > 0 else { return false }
        tokens -= 1
        return true
    }
}
