import NetMPTCP
import NetMPWire
import Testing

/// BBR's parts on their own (the rate samples, the windowed maximum, the state machine),
/// then BBR in the simulated link beside CUBIC.
@Suite struct BBRTests {
    let mss = 1000

    /// A rate sample of `rate` bytes per second over one round trip of `rtt`, delivering `acked`.
    func sample(rate: Double, rtt: Interval, prior: Int, acked: Int = 10_000, limited: Bool = false) -> RateSample {
        let delivered = Int(rate * Double(rtt.nanoseconds) / 1e9)
        return RateSample(delivered: delivered, interval: rtt, priorDelivered: prior, applicationLimited: limited,
                          roundTrip: rtt, newlyDelivered: acked)
    }

    @Test func deliveryRate_sampleFromTheLatestDeliveredTransmission() {
        var estimator = DeliveryRateEstimator()
        let start = Instant(nanoseconds: 1_000_000_000)
        // Ten segments sent 10 us apart, from an empty flight.
        for i in 0..<10 {
            estimator.sent(end: SequenceNumber(UInt32(1000 * (i + 1))), flight: i * 1000, now: start + .microseconds(UInt64(10 * i)))
        }
        // 100 us after the first send, an ACK delivers the first five.
        let s = estimator.acknowledged(newly: 5000, highest: SequenceNumber(5000), now: start + .microseconds(100))
        #expect(s?.delivered == 5000)
        #expect(s?.priorDelivered == 0)
        #expect(s?.roundTrip == .microseconds(60)) // the fifth went out at 40 us
        #expect(s?.interval == .microseconds(100)) // ACK interval (100 us) beats the send interval (40 us)
        // The rest: delivered since the fifth was sent (5000 bytes then) is 10000 - 0... from its record.
        let t = estimator.acknowledged(newly: 5000, highest: SequenceNumber(10_000), now: start + .microseconds(150))
        #expect(t?.delivered == 10_000 && t?.priorDelivered == 0 && t?.roundTrip == .microseconds(60))
        #expect(estimator.delivered == 10_000)
        // Nothing left to sample from, and nothing delivered gives nothing.
        #expect(estimator.acknowledged(newly: 0, highest: SequenceNumber(10_000), now: start + .microseconds(200)) == nil)
    }

    @Test func deliveryRate_fullRingCoarsensInsteadOfGrowing() {
        var estimator = DeliveryRateEstimator()
        for i in 0..<(DeliveryRateEstimator.recordCapacity * 3) {
            estimator.sent(end: SequenceNumber(UInt32(100 * (i + 1))), flight: 100 * i, now: Instant(nanoseconds: UInt64(1000 * i)))
        }
        // Everything is covered by some record: the last ACK still yields a sample.
        let s = estimator.acknowledged(newly: 100 * DeliveryRateEstimator.recordCapacity * 3, highest: SequenceNumber(UInt32(100 * DeliveryRateEstimator.recordCapacity * 3)),
                                       now: Instant(nanoseconds: 10_000_000))
        #expect(s != nil)
    }

    @Test func deliveryRate_applicationLimitedMarksUntilTheFlightIsDelivered() {
        var estimator = DeliveryRateEstimator()
        estimator.applicationLimited(flight: 3000)
        estimator.sent(end: SequenceNumber(1000), flight: 0, now: Instant(nanoseconds: 1000))
        let s = estimator.acknowledged(newly: 1000, highest: SequenceNumber(1000), now: Instant(nanoseconds: 50_000))
        #expect(s?.applicationLimited == true)
        _ = estimator.acknowledged(newly: 3000, highest: SequenceNumber(1000), now: Instant(nanoseconds: 60_000))
        estimator.sent(end: SequenceNumber(2000), flight: 0, now: Instant(nanoseconds: 70_000))
        let t = estimator.acknowledged(newly: 1000, highest: SequenceNumber(2000), now: Instant(nanoseconds: 120_000))
        #expect(t?.applicationLimited == false)
    }

    @Test func windowedMaximum_keepsTheBestUntilItAgesOut() {
        var filter = WindowedMaximum()
        filter.update(100, round: 1, window: 10)
        filter.update(50, round: 2, window: 10)
        filter.update(70, round: 5, window: 10)
        #expect(filter.value == 100)
        filter.update(60, round: 10, window: 10)
        #expect(filter.value == 100)
        filter.update(40, round: 12, window: 10) // round 1 is out of the window: the next best takes over
        #expect(filter.value == 70 || filter.value == 60)
        filter.update(30, round: 30, window: 10) // everything aged out
        #expect(filter.value == 30)
        filter.update(200, round: 31, window: 10)
        #expect(filter.value == 200)
    }

    /// STARTUP grows the window like slow start until the bandwidth stops growing, then the
    /// window settles at about twice the bandwidth-delay product (plus the link's bursts).
    @Test func startup_findsThePipe_thenHoldsTwiceTheProduct() {
        var bbr = BBR(maximumSegmentSize: mss)
        let rtt = Interval.microseconds(100)
        var now = Instant(nanoseconds: 1_000_000_000)
        var delivered = 0
        let bottleneck = 1e9 // bytes/s: a product of 100 kB
        for _ in 0..<40 {
            now = now + rtt
            // One ACK per round, delivering what the window let through at most the bottleneck.
            let rate = min(bottleneck, Double(bbr.window) * 1e9 / Double(rtt.nanoseconds))
            let acked = Int(rate * Double(rtt.nanoseconds) / 1e9)
            bbr.rateSampled(sample(rate: rate, rtt: rtt, prior: delivered, acked: acked), flight: min(bbr.window, 100_000), now: now)
            delivered += acked
        }
        #expect(bbr.filledPipe)
        #expect(bbr.mode == .probeBandwidth)
        let product = 100_000
        #expect(bbr.window >= 2 * product && bbr.window <= 2 * product + bbr.quantum + Int(bottleneck / 10))
        #expect(abs(bbr.bandwidth.value - bottleneck) < 1)
    }

    /// Random loss is not congestion to BBR: after recovery the window is what it was.
    @Test func lossRecovery_conservesOneRound_thenRestores() {
        var bbr = BBR(maximumSegmentSize: mss)
        let rtt = Interval.microseconds(100)
        var now = Instant(nanoseconds: 1_000_000_000)
        var delivered = 0
        for _ in 0..<40 {
            now = now + rtt
            bbr.rateSampled(sample(rate: 1e9, rtt: rtt, prior: delivered, acked: 100_000), flight: 100_000, now: now)
            delivered += 100_000
        }
        let before = bbr.window
        bbr.lossDetected(flight: 50_000, now: now)
        #expect(bbr.window == 50_000)
        bbr.recoveryEnded()
        #expect(bbr.window == before)
    }

    /// Ten seconds without a lower RTT: PROBE_RTT holds four segments for 200 ms and a
    /// round, then the window comes back.
    @Test func probeRoundTrip_afterTenSeconds() {
        var bbr = BBR(maximumSegmentSize: mss)
        let rtt = Interval.microseconds(100)
        var now = Instant(nanoseconds: 1_000_000_000)
        var delivered = 0
        func step(flight: Int, advance: Interval = .milliseconds(1)) {
            now = now + advance
            bbr.rateSampled(sample(rate: 1e9, rtt: rtt + .microseconds(50), prior: delivered, acked: 100_000), flight: flight, now: now)
            delivered += 100_000
        }
        bbr.rateSampled(sample(rate: 1e9, rtt: rtt, prior: 0, acked: 100_000), flight: 100_000, now: now)
        delivered = 100_000
        for _ in 0..<40 { step(flight: 100_000) }
        let before = bbr.window
        step(flight: 100_000, advance: .seconds(10))
        #expect(bbr.mode == .probeRoundTrip)
        #expect(bbr.window == 4 * mss)
        step(flight: 2000)                               // drained: the 200 ms start
        step(flight: 2000, advance: .milliseconds(100))
        #expect(bbr.mode == .probeRoundTrip)
        step(flight: 2000, advance: .milliseconds(150))
        step(flight: 2000)
        #expect(bbr.mode == .probeBandwidth)
        #expect(bbr.window >= before)
    }

    @Test func systemDefault_parsesTheSysctl() {
        #expect(CongestionAlgorithm(sysctl: "bbr\n") == .bbr)
        #expect(CongestionAlgorithm(sysctl: "cubic") == .cubic)
        #expect(CongestionAlgorithm(sysctl: "vegas\n") == nil)
    }
}
