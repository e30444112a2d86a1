import NetMPWire

/// TCP_CONGESTION names.
public enum CongestionAlgorithm: String, Sendable, CaseIterable {
    case newReno = "reno"
    case cubic = "cubic"
    case bbr = "bbr"

    /// From the text of the net.ipv4.tcp_congestion_control sysctl ("bbr\n").
    public init?(sysctl text: String) { self.init(rawValue: String(text.filter { !$0.isWhitespace })) }
}

/// What a congestion controller decides: how much may be in flight. Loss *detection* and
/// recovery (fast retransmit, NewReno's partial ACKs) belong to the connection; the
/// controller only sizes the window, like FreeBSD's per-connection function block.
public protocol CongestionControl: Sendable {
    /// cwnd, in bytes.
    var window: Int { get }
    /// ssthresh, in bytes.
    var slowStartThreshold: Int { get }
    /// New data was acknowledged outside loss recovery.
    mutating func acknowledged(_ bytes: Int, now: Instant, smoothedRTT: Interval?)
    /// Loss was detected by duplicate ACKs: reduce once per window of data (RFC 5681 3.2).
    mutating func lossDetected(flight: Int, now: Instant)
    /// Loss recovery ended with a full ACK: deflate to ssthresh (RFC 6582 3.2 step 3).
    mutating func recoveryEnded()
    /// The retransmission timer fired (RFC 5681 3.1 eq. 4): ssthresh from flight, cwnd = 1 MSS.
    mutating func retransmissionTimeout(flight: Int, now: Instant)
    /// Takes over a window from another algorithm (TCP_CONGESTION on a live connection).
    mutating func adopt(window: Int, slowStartThreshold: Int)
    /// A delivery-rate sample from an ACK; `flight` is what is still in the network after it.
    mutating func rateSampled(_ sample: RateSample, flight: Int, now: Instant)
    /// The loss that started recovery proved spurious (RFC 3522): give back the reduction,
    /// given the window and threshold as they were before it (Linux's undo_cwnd). What the
    /// algorithm learnt since (BBR's model, CUBIC's growth) stays.
    mutating func undoReduction(_ before: WindowBeforeReduction)
}

/// cwnd and ssthresh as they were when loss recovery began: 16 bytes kept per connection
/// to undo a spurious recovery, where a copy of the whole controller would be hundreds.
public struct WindowBeforeReduction: Sendable, Equatable {
    public var window: Int
    public var slowStartThreshold: Int
    public init(window: Int, slowStartThreshold: Int) {
        self.window = window
        self.slowStartThreshold = slowStartThreshold
    }
}

extension CongestionControl {
    /// Loss-based algorithms size their window from ACKs and losses alone.
    public mutating func rateSampled(_ sample: RateSample, flight: Int, now: Instant) {}
}

/// The controller in use, as a value: no existential box, no allocation per connection.
public enum CongestionController: Sendable {
    case newReno(NewReno)
    case cubic(Cubic)
    case bbr(BBR)

    /// `burst`: the most the link sends at once (the segmentation limit), which BBR keeps room for.
    public init(_ algorithm: CongestionAlgorithm, maximumSegmentSize: Int, burst: Int = 0) {
        switch algorithm {
        case .newReno: self = .newReno(NewReno(maximumSegmentSize: maximumSegmentSize))
        case .cubic: self = .cubic(Cubic(maximumSegmentSize: maximumSegmentSize))
        case .bbr: self = .bbr(BBR(maximumSegmentSize: maximumSegmentSize, burst: burst))
        }
    }

    public var algorithm: CongestionAlgorithm {
        switch self { case .newReno: .newReno; case .cubic: .cubic; case .bbr: .bbr }
    }

    /// Whether the connection should record its transmissions for rate samples.
    public var wantsRateSamples: Bool { if case .bbr = self { true } else { false } }

    public var window: Int {
        switch self { case .newReno(let c): c.window; case .cubic(let c): c.window; case .bbr(let c): c.window }
    }
    public var slowStartThreshold: Int {
        switch self {
        case .newReno(let c): c.slowStartThreshold; case .cubic(let c): c.slowStartThreshold; case .bbr(let c): c.slowStartThreshold
        }
    }
    public mutating func rateSampled(_ sample: RateSample, flight: Int, now: Instant) {
        guard case .bbr(var c) = self else { return }
        c.rateSampled(sample, flight: flight, now: now)
        self = .bbr(c)
    }
    public mutating func acknowledged(_ bytes: Int, now: Instant, smoothedRTT: Interval?) {
        switch self {
        case .newReno(var c): c.acknowledged(bytes, now: now, smoothedRTT: smoothedRTT); self = .newReno(c)
        case .cubic(var c): c.acknowledged(bytes, now: now, smoothedRTT: smoothedRTT); self = .cubic(c)
        case .bbr(var c): c.acknowledged(bytes, now: now, smoothedRTT: smoothedRTT); self = .bbr(c)
        }
    }
    public mutating func lossDetected(flight: Int, now: Instant) {
        switch self {
        case .newReno(var c): c.lossDetected(flight: flight, now: now); self = .newReno(c)
        case .cubic(var c): c.lossDetected(flight: flight, now: now); self = .cubic(c)
        case .bbr(var c): c.lossDetected(flight: flight, now: now); self = .bbr(c)
        }
    }
    public mutating func recoveryEnded() {
        switch self {
        case .newReno(var c): c.recoveryEnded(); self = .newReno(c)
        case .cubic(var c): c.recoveryEnded(); self = .cubic(c)
        case .bbr(var c): c.recoveryEnded(); self = .bbr(c)
        }
    }
    public mutating func adopt(window: Int, slowStartThreshold: Int) {
        switch self {
        case .newReno(var c): c.adopt(window: window, slowStartThreshold: slowStartThreshold); self = .newReno(c)
        case .cubic(var c): c.adopt(window: window, slowStartThreshold: slowStartThreshold); self = .cubic(c)
        case .bbr(var c): c.adopt(window: window, slowStartThreshold: slowStartThreshold); self = .bbr(c)
        }
    }
    public var beforeReduction: WindowBeforeReduction {
        WindowBeforeReduction(window: window, slowStartThreshold: slowStartThreshold)
    }
    public mutating func undoReduction(_ before: WindowBeforeReduction) {
        switch self {
        case .newReno(var c): c.undoReduction(before); self = .newReno(c)
        case .cubic(var c): c.undoReduction(before); self = .cubic(c)
        case .bbr(var c): c.undoReduction(before); self = .bbr(c)
        }
    }
    public mutating func retransmissionTimeout(flight: Int, now: Instant) {
        switch self {
        case .newReno(var c): c.retransmissionTimeout(flight: flight, now: now); self = .newReno(c)
        case .cubic(var c): c.retransmissionTimeout(flight: flight, now: now); self = .cubic(c)
        case .bbr(var c): c.retransmissionTimeout(flight: flight, now: now); self = .bbr(c)
        }
    }
}

/// Slow start by bytes acknowledged (RFC 3465), shared by both algorithms. Without RFC
/// 3465's L = 2 SMSS cap per ACK, as Linux's tcp_slow_start: a receiver that coalesces
/// (GRO in the kernel behind a TAP, netmp's own one ACK per batch) acknowledges dozens of
/// segments at once, and the cap would hold slow start to a crawl.
func slowStartIncrease(window: Int, acked: Int, mss: Int) -> Int { window + acked }

/// RFC 5681 3.1 eq. 10 with RFC 9293's initial window (RFC 6928: 10 segments, as Linux).
func initialWindow(mss: Int) -> Int { 10 * mss }
