import NetMPWire

/// Reno's window (RFC 5681): slow start, then one MSS per window of acknowledged data.
public struct NewReno: CongestionControl {
    let mss: Int
    public private(set) var window: Int
    public private(set) var slowStartThreshold = Int.max
    /// Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 3465 2.1).
    var acknowledgedInAvoidance = 0

    public init(maximumSegmentSize: Int) { mss = maximumSegmentSize; window = initialWindow(mss: mss) }

    public mutating func acknowledged(_ bytes: Int, now: Instant, smoothedRTT: Interval?) {
        if window < slowStartThreshold {
            window = slowStartIncrease(window: window, acked: bytes, mss: mss)
        } else {
            acknowledgedInAvoidance += bytes
            if acknowledgedInAvoidance >= window {
                acknowledgedInAvoidance -= window
                window += mss
            }
        }
    }

    public mutating func lossDetected(flight: Int, now: Instant) {
        slowStartThreshold = max(flight / 2, 2 * mss) // RFC 5681 eq. 4
        window = slowStartThreshold
        acknowledgedInAvoidance = 0
    }

    public mutating func adopt(window: Int, slowStartThreshold: Int) {
        self.window = window
        self.slowStartThreshold = slowStartThreshold
    }

    public mutating func recoveryEnded() { window = slowStartThreshold }

    public mutating func undoReduction(_ before: WindowBeforeReduction) {
        window = max(window, before.window)
        slowStartThreshold = max(slowStartThreshold, before.slowStartThreshold)
    }

    public mutating func retransmissionTimeout(flight: Int, now: Instant) {
        slowStartThreshold = max(flight / 2, 2 * mss)
        window = mss
        acknowledgedInAvoidance = 0
    }
}
