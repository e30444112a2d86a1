import NetMPWire

/// The retransmission timer's estimator (RFC 6298 2): SRTT, RTTVAR and RTO.
public struct RTTEstimator: Sendable {
    /// SRTT and RTTVAR in nanoseconds; nil before the first sample.
    public private(set) var smoothed: UInt64?
    public private(set) var variation: UInt64 = 0
    public private(set) var timeout: Interval
    let minimum: Interval, maximum: Interval
    /// Clock granularity G: netmp's clock is nanoseconds, but timestamps tick in ms.
    static let granularity: UInt64 = 1_000_000

    public init(initial: Interval, minimum: Interval, maximum: Interval) {
        timeout = initial; self.minimum = minimum; self.maximum = maximum
    }

    /// Adds one round-trip measurement (RFC 6298 2.2 and 2.3, alpha 1/8, beta 1/4).
    public mutating func sample(_ rtt: Interval) {
        let r = max(rtt.nanoseconds, 1)
        if let srtt = smoothed {
            let delta = srtt > r ? srtt - r : r - srtt
            variation = (3 * variation + delta) / 4
            smoothed = (7 * srtt + r) / 8
        } else {
            smoothed = r
            variation = r / 2
        }
        let rto = smoothed! + max(Self.granularity, 4 * variation)
        timeout = Interval(nanoseconds: min(max(rto, minimum.nanoseconds), maximum.nanoseconds))
    }

    /// RFC 6298 5.5: back off the timer after a retransmission timeout.
    public mutating func backOff() {
        timeout = Interval(nanoseconds: min(timeout.nanoseconds * 2, maximum.nanoseconds))
    }
}
