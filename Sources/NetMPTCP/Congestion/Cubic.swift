import NetMPWire

/// CUBIC (RFC 9438): after a reduction the window grows along a cubic curve centred on the
/// window where loss last happened, so it regains a long fat pipe in a few RTTs; it never
/// grows slower than Reno would (the "Reno-friendly" estimate of section 4.3).
public struct Cubic: CongestionControl {
    static let c = 0.4            // RFC 9438 4.1: C
    static let beta = 0.7         // beta_cubic
    static let alpha = 3 * (1 - beta) / (1 + beta) // alpha_cubic (section 4.3)

    let mss: Int
    public private(set) var window: Int
    public private(set) var slowStartThreshold = Int.max
    /// W_max in segments: the window before the last reduction.
    var windowMax = 0.0
    /// W_max before that, for fast convergence (section 4.7).
    var previousWindowMax = 0.0
    /// When the current congestion-avoidance epoch began, and K for it (seconds).
    var epochStart: Instant? = nil
    var k = 0.0
    /// W_est, the Reno-friendly window, in segments.
    var renoEstimate = 0.0
    /// Window growth owed but not yet a whole byte.
    var fractional = 0.0

    public init(maximumSegmentSize: Int) { mss = maximumSegmentSize; window = initialWindow(mss: mss) }

    var segments: Double { Double(window) / Double(mss) }

    public mutating func acknowledged(_ bytes: Int, now: Instant, smoothedRTT: Interval?) {
        if window < slowStartThreshold {
            window = slowStartIncrease(window: window, acked: bytes, mss: mss)
            return
        }
        if epochStart == nil {
            epochStart = now
            if windowMax < segments { windowMax = segments; k = 0 } // grew past W_max: start at the plateau
            else { k = cbrt((windowMax - segments) / Self.c) }
            renoEstimate = segments
        }
        let rtt = Double(smoothedRTT?.nanoseconds ?? 100_000_000) / 1e9
        let t = Double((now - epochStart!).nanoseconds) / 1e9
        // Section 4.2: the target one RTT ahead, clamped to [cwnd, 1.5 cwnd].
        let cubic = Self.c * pow3(t + rtt - k) + windowMax
        let ackedSegments = Double(bytes) / Double(mss)
        renoEstimate += Self.alpha * ackedSegments / segments // section 4.3
        let target = min(max(max(cubic, renoEstimate), segments), 1.5 * segments)
        // Grow by (target - cwnd) / cwnd per acknowledged segment.
        fractional += (target - segments) / segments * ackedSegments * Double(mss)
        if fractional >= 1 {
            window += Int(fractional)
            fractional -= Double(Int(fractional))
        }
    }

    public mutating func lossDetected(flight: Int, now: Instant) {
        let current = segments
        // Section 4.7: fast convergence releases bandwidth to newer flows.
        windowMax = current < previousWindowMax ? current * (1 + Self.beta) / 2 : current
        previousWindowMax = current
        slowStartThreshold = max(Int(Double(window) * Self.beta), 2 * mss) // section 4.6
        window = slowStartThreshold
        epochStart = nil
        fractional = 0
    }

    public mutating func adopt(window: Int, slowStartThreshold: Int) {
        self.window = window
        self.slowStartThreshold = slowStartThreshold
    }

    public mutating func recoveryEnded() { window = max(slowStartThreshold, 2 * mss) }

    /// The window and threshold come back; W_max stays where the loss put it, at or below
    /// the restored window, so the next epoch starts on its plateau (as Linux's cubic,
    /// which undoes through tcp_reno_undo_cwnd).
    public mutating func undoReduction(_ before: WindowBeforeReduction) {
        window = max(window, before.window)
        slowStartThreshold = max(slowStartThreshold, before.slowStartThreshold)
        epochStart = nil
        fractional = 0
    }

    public mutating func retransmissionTimeout(flight: Int, now: Instant) {
        lossDetected(flight: flight, now: now)
        window = mss // section 4.8
    }
}

func pow3(_ x: Double) -> Double { x * x * x }
func cbrt(_ x: Double) -> Double {
    guard x > 0 else { return 0 }
    var y = x > 1 ? x / 3 : 1
    for _ in 0..<40 { y = (2 * y + x / (y * y)) / 3 } // Newton's method; no Foundation
    return y
}
