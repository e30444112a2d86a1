import NetMPWire

/// BBR (version 1, as Linux's tcp_bbr.c and draft-cardwell-iccrg-bbr-congestion-control-00):
/// the window comes from a model of the path, the bottleneck bandwidth (the highest
/// delivery rate of the last ten rounds) times the lowest round-trip time of the last ten
/// seconds, instead of from loss. A path that drops 1% of its frames at random keeps its
/// window, where CUBIC would cut it at every loss.
///
/// netmp does not pace: with a few tens of microseconds between ACKs a pacing timer could
/// not be kept by a polling loop, and the link's batching dwarfs it. So the pacing gains
/// of the draft have nothing to act on and are left out; the window (cwnd_gain times the
/// estimated bandwidth-delay product, plus the bursts the link and the ACK clock make) is
/// the only control, as in BBR's own cwnd-limited operation.
public struct BBR: CongestionControl {
    public enum Mode: Sendable { case startup, drain, probeBandwidth, probeRoundTrip }

    static let highGain = 2.885             // 2 / ln 2: doubles the delivery rate each round
    static let windowGain = 2.0             // cwnd_gain in PROBE_BW
    static let bandwidthRounds = 10         // the bandwidth filter's length, in rounds
    static let minimumRoundTripLifetime = Interval.seconds(10)
    static let probeRoundTripDuration = Interval.milliseconds(200)
    static let minimumSegments = 4          // bbr_cwnd_min_target
    static let aggregationRounds = 5        // bbr_extra_acked_win_rtts
    static let aggregationEpochReset = 1 << 20

    let mss: Int
    /// The bursts the link sends at once (three super-segments, as Linux's quantization
    /// budget of three TSO bursts): room the window keeps beyond the model.
    public let quantum: Int
    public private(set) var window: Int
    public private(set) var slowStartThreshold = Int.max
    public private(set) var mode = Mode.startup

    /// Bottleneck bandwidth in bytes per second, windowed over rounds.
    public private(set) var bandwidth = WindowedMaximum()
    var minimumRoundTrip: Interval? = nil
    var minimumRoundTripStamp = Instant.zero
    /// Round trips are counted in delivered bytes: a round ends when data sent after its start is delivered.
    var rounds = 0
    var nextRoundDelivered = 0
    var roundStarted = false
    /// Whether STARTUP's growth stopped (three rounds without 25% more bandwidth).
    public private(set) var filledPipe = false
    var fullBandwidth = 0.0
    var fullBandwidthRounds = 0
    /// PROBE_RTT: when it may end, and whether a round has passed in it.
    var probeRoundTripDone: Instant? = nil
    var probeRoundTripRoundDone = false
    /// The window before loss recovery or PROBE_RTT cut it, restored after.
    var priorWindow = 0
    var inRecovery = false
    /// The first round of recovery sends one segment per segment delivered (packet conservation).
    var conservationUntilRound = 0
    var deliveredTotal = 0
    /// ACK aggregation (bbr_update_ack_aggregation): the most data delivered beyond what the
    /// bandwidth explains, in two alternating windows of rounds, so a receiver or link that
    /// batches its ACKs still finds the window open.
    var extraAcked = (0, 0)
    var extraAckedCurrent = 0
    var extraAckedRounds = 0
    var ackEpochStart = Instant.zero
    var ackEpochAcked = 0

    public init(maximumSegmentSize: Int, burst: Int = 0) {
        mss = maximumSegmentSize
        quantum = 3 * max(maximumSegmentSize, burst)
        window = initialWindow(mss: mss)
    }

    var minimumWindow: Int { Self.minimumSegments * mss }

    /// Growth comes from rate samples: plain ACK counting says nothing to the model.
    public mutating func acknowledged(_ bytes: Int, now: Instant, smoothedRTT: Interval?) {}

    public mutating func rateSampled(_ sample: RateSample, flight: Int, now: Instant) {
        deliveredTotal = sample.priorDelivered + sample.delivered
        roundStarted = false
        if sample.priorDelivered >= nextRoundDelivered {
            nextRoundDelivered = deliveredTotal
            rounds += 1
            roundStarted = true
        }
        let rate = sample.rate
        if rate > 0 && (!sample.applicationLimited || rate >= bandwidth.value) {
            bandwidth.update(rate, round: rounds, window: Self.bandwidthRounds)
        }
        updateAckAggregation(sample.newlyDelivered, now: now)
        checkFilledPipe(sample)
        if mode == .startup && filledPipe { mode = .drain }
        if mode == .drain && flight <= modelWindow(gain: 1) { mode = .probeBandwidth }
        updateMinimumRoundTrip(sample, flight: flight, now: now)
        setWindow(acked: sample.newlyDelivered, flight: flight)
    }

    /// STARTUP ends once three rounds in a row failed to raise the bandwidth by 25%.
    mutating func checkFilledPipe(_ sample: RateSample) {
        guard !filledPipe, roundStarted, !sample.applicationLimited else { return }
        if bandwidth.value >= fullBandwidth * 1.25 {
            fullBandwidth = bandwidth.value
            fullBandwidthRounds = 0
            return
        }
        fullBandwidthRounds += 1
        filledPipe = fullBandwidthRounds >= 3
    }

    /// Keeps the lowest round trip; when none lower was seen for ten seconds, PROBE_RTT
    /// drains the flight to four segments for 200 ms and a round to measure it afresh.
    mutating func updateMinimumRoundTrip(_ sample: RateSample, flight: Int, now: Instant) {
        let expired = minimumRoundTrip != nil && minimumRoundTripStamp + Self.minimumRoundTripLifetime < now
        if minimumRoundTrip == nil || sample.roundTrip <= minimumRoundTrip! || expired {
            minimumRoundTrip = sample.roundTrip
            minimumRoundTripStamp = now
        }
        if expired && mode != .probeRoundTrip {
            mode = .probeRoundTrip
            priorWindow = max(priorWindow, window)
            probeRoundTripDone = nil
        }
        guard mode == .probeRoundTrip else { return }
        if probeRoundTripDone == nil {
            if flight <= minimumWindow {
                probeRoundTripDone = now + Self.probeRoundTripDuration
                probeRoundTripRoundDone = false
                nextRoundDelivered = deliveredTotal
            }
        } else {
            if roundStarted { probeRoundTripRoundDone = true }
            if probeRoundTripRoundDone, let done = probeRoundTripDone, done <= now {
                minimumRoundTripStamp = now
                window = max(window, priorWindow)
                priorWindow = 0
                mode = filledPipe ? .probeBandwidth : .startup
            }
        }
    }

    mutating func updateAckAggregation(_ acked: Int, now: Instant) {
        if roundStarted {
            extraAckedRounds += 1
            if extraAckedRounds >= Self.aggregationRounds {
                extraAckedRounds = 0
                extraAckedCurrent ^= 1
                if extraAckedCurrent == 0 { extraAcked.0 = 0 } else { extraAcked.1 = 0 }
            }
        }
        // Data the bandwidth estimate explains since the epoch began; an epoch whose ACKs
        // fell behind it (or that ran long) starts over.
        var expected = Int(bandwidth.value * Double((now - ackEpochStart).nanoseconds) / 1e9)
        if ackEpochAcked <= expected || ackEpochAcked + acked >= Self.aggregationEpochReset {
            ackEpochAcked = 0
            ackEpochStart = now
            expected = 0
        }
        ackEpochAcked += acked
        let extra = min(window, ackEpochAcked - expected)
        if extraAckedCurrent == 0 { extraAcked.0 = max(extraAcked.0, extra) } else { extraAcked.1 = max(extraAcked.1, extra) }
    }

    /// gain x bandwidth x min RTT, plus the link's bursts: what the window aims at.
    func modelWindow(gain: Double) -> Int {
        guard let rtt = minimumRoundTrip, bandwidth.value > 0 else { return initialWindow(mss: mss) }
        let product = bandwidth.value * Double(rtt.nanoseconds) / 1e9
        return Int(gain * product) + quantum
    }

    mutating func setWindow(acked: Int, flight: Int) {
        if inRecovery && rounds < conservationUntilRound {
            window = max(window, flight + acked)
        } else {
            let gain = mode == .startup || mode == .drain ? Self.highGain : Self.windowGain
            var target = modelWindow(gain: gain)
            if filledPipe {
                // Aggregation is bounded by 100 ms of data (bbr_ack_aggregation_cwnd).
                target += min(max(extraAcked.0, extraAcked.1), Int(bandwidth.value / 10))
                window = min(window + acked, target)
            } else if window < target || deliveredTotal < initialWindow(mss: mss) {
                window += acked
            }
        }
        window = max(window, minimumWindow)
        if mode == .probeRoundTrip { window = min(window, minimumWindow) }
    }

    /// Fast recovery: the model stands; the first round sends only what is delivered.
    public mutating func lossDetected(flight: Int, now: Instant) {
        priorWindow = max(priorWindow, window)
        inRecovery = true
        conservationUntilRound = rounds + 1
        window = max(flight, minimumWindow)
    }

    public mutating func recoveryEnded() {
        inRecovery = false
        window = max(window, priorWindow)
        priorWindow = 0
    }

    /// A spurious recovery ends as a real one does, with the window it saved; and, as
    /// Linux's bbr_undo_cwnd, STARTUP's check starts over, since the loss may have cut a
    /// round of growth short.
    public mutating func undoReduction(_ before: WindowBeforeReduction) {
        recoveryEnded()
        window = max(window, before.window)
        fullBandwidth = 0
        fullBandwidthRounds = 0
    }

    /// A timeout restarts the window from one segment; it regrows by what is delivered up
    /// to the model (which a timeout does not change), and STARTUP's check starts over.
    /// Nothing is kept to restore: no recovery end follows a timeout here.
    public mutating func retransmissionTimeout(flight: Int, now: Instant) {
        priorWindow = 0
        inRecovery = false
        window = mss
        fullBandwidth = 0
        fullBandwidthRounds = 0
    }

    public mutating func adopt(window: Int, slowStartThreshold: Int) {
        self.window = max(window, minimumWindow)
    }
}

/// A running maximum over a window of rounds, kept as its best three candidates (Kathleen
/// Nichols' algorithm, as Linux's lib/win_minmax.c): a new best replaces all three, and
/// the others take over as the best ages out of the window.
public struct WindowedMaximum: Sendable {
    public init() {}
    struct Sample: Sendable { var value = 0.0, round = 0 }
    // Three stored samples, not an array: updated on every ACK, never allocated.
    var best = Sample(), second = Sample(), third = Sample()
    public var value: Double { best.value }

    public mutating func update(_ value: Double, round: Int, window: Int) {
        let sample = Sample(value: value, round: round)
        if value >= best.value || round - third.round > window {
            best = sample; second = sample; third = sample
            return
        }
        if value >= second.value { second = sample; third = sample }
        else if value >= third.value { third = sample }
        // Age out: the best older than the window gives way to the second (and that to the
        // third); a second as old as the best is refreshed after a quarter of the window,
        // a third as old as the second after half (both counted from the best).
        if round - best.round > window {
            best = second; second = third; third = sample
            if round - best.round > window { best = second; second = third }
        } else if second.round == best.round && round - best.round > window / 4 {
            second = sample; third = sample
        } else if third.round == second.round && round - best.round > window / 2 {
            third = sample
        }
    }
}
