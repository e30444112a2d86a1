import NetMPTCP
import NetMPWire
import Testing

/// One behaviour each, named <state>_<event>_<outcome>, on the pure engine with a fixed clock.
@Suite struct HandshakeTests {
    /// RFC 9293 3.10.1: an active open sends SYN with our options.
    @Test func closed_connect_sendsSYNWithOptions() throws {
        var c = Connection.connect(Fixture.tuple, iss: Fixture.iss, now: Fixture.t0, configuration: Fixture.configuration())
        let v1 = c.nextSegment(now: Fixture.t0)
        let syn = try #require(v1).header
        #expect(syn.flags == .syn && syn.sequenceNumber == 1000)
        #expect(syn.options.maximumSegmentSize == 1460 && syn.options.sackPermitted)
        #expect(syn.options.windowScale == 0 && syn.options.timestamp != nil) // 64 KiB buffer: shift 0
        let v2 = c.nextSegment(now: Fixture.t0)
        #expect(c.state == .synSent && v2 == nil)
    }

    /// RFC 9293 3.10.7.3: SYN-ACK acknowledging our SYN establishes; we ACK it.
    @Test func synSent_synAck_establishesAndAcks() throws {
        var c = Fixture.synSent()
        let result = c.handle(Fixture.segment([.syn, .ack], seq: 5000, ack: 1001, options: Fixture.synAckOptions()),
                              payloadLength: 0, now: Fixture.t0)
        #expect(result.reset == nil && c.state == .established)
        let v3 = c.takeEvents()
        #expect(v3.contains(.connected))
        let v4 = c.nextSegment(now: Fixture.t0)
        let ack = try #require(v4).header
        #expect(ack.flags == .ack && ack.acknowledgmentNumber == 5001 && ack.sequenceNumber == 1001)
        #expect(c.sendMSS == 1460 && c.sackEnabled && !c.timestampsEnabled)
    }

    /// RFC 9293 3.10.7.3 first: an ACK that does not acknowledge our SYN gets a RST.
    @Test func synSent_badAck_answeredWithReset() {
        var c = Fixture.synSent()
        let result = c.handle(Fixture.segment([.syn, .ack], seq: 5000, ack: 4242), payloadLength: 0, now: Fixture.t0)
        #expect(result.reset?.flags == .rst && result.reset?.sequenceNumber == 4242)
        #expect(c.state == .synSent)
    }

    /// An ACK for an older connection of the 4-tuple (the peer's TIME-WAIT answering our
    /// SYN): the RST ends it and the SYN goes again at once, only the first time.
    @Test func synSent_staleAck_resetThenSynAgainOnce() {
        var c = Fixture.synSent()
        _ = c.handle(Fixture.segment(.ack, seq: 5000, ack: 4242), payloadLength: 0, now: Fixture.t0)
        let again = Fixture.drain(&c)
        #expect(again.count == 1 && again.first?.header.flags == .syn && again.first?.header.sequenceNumber == Fixture.iss.raw)
        _ = c.handle(Fixture.segment(.ack, seq: 5000, ack: 4242), payloadLength: 0, now: Fixture.t0)
        #expect(Fixture.drain(&c).isEmpty)
    }

    /// RFC 9293 3.10.7.3 second: RST with an acceptable ACK refuses the connection.
    @Test func synSent_resetWithAck_refused() {
        var c = Fixture.synSent()
        _ = c.handle(Fixture.segment([.rst, .ack], seq: 0, ack: 1001), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .closed && c.error == .connectionRefused)
        let events = c.takeEvents()
        #expect(events.contains(.failed) && events.contains(.closed))
        #expect(c.hasNoTimers)
    }

    /// RFC 9293 3.5: simultaneous open goes through SYN-RECEIVED to ESTABLISHED.
    @Test func synSent_bareSyn_simultaneousOpen() throws {
        var c = Fixture.synSent()
        _ = c.handle(Fixture.segment(.syn, seq: 5000, options: Fixture.synAckOptions()), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .synReceived)
        let v5 = c.nextSegment(now: Fixture.t0)
        let synAck = try #require(v5).header
        #expect(synAck.flags == [.syn, .ack] && synAck.sequenceNumber == 1000 && synAck.acknowledgmentNumber == 5001)
        _ = c.handle(Fixture.segment([.syn, .ack], seq: 5000, ack: 1001), payloadLength: 0, now: Fixture.t0)
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .established)
    }

    /// RFC 9293 3.10.7.2: a passive open answers the SYN with SYN-ACK carrying only offered options.
    @Test func listen_syn_answersSynAckWithOfferedOptionsOnly() throws {
        var syn = TCPSegmentHeader(sourcePort: 40000, destinationPort: 80, sequenceNumber: 5000, acknowledgmentNumber: 0,
                                   flags: .syn, window: 65_535, options: Fixture.synAckOptions(scale: nil, sack: false))
        syn.options.maximumSegmentSize = 1200
        var c = Connection.accept(syn, tuple: FourTuple(local: Fixture.server, remote: Fixture.client), iss: SequenceNumber(9000),
                                  now: Fixture.t0, configuration: Fixture.configuration())
        let v6 = c.nextSegment(now: Fixture.t0)
        let synAck = try #require(v6).header
        #expect(synAck.flags == [.syn, .ack] && synAck.acknowledgmentNumber == 5001)
        #expect(synAck.options.windowScale == nil && !synAck.options.sackPermitted && synAck.options.timestamp == nil)
        #expect(c.sendMSS == 1200)
        // The third segment of the handshake establishes.
        let ack = TCPSegmentHeader(sourcePort: 40000, destinationPort: 80, sequenceNumber: 5001, acknowledgmentNumber: 9001, flags: .ack, window: 100)
        _ = c.handle(ack, payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .established && c.sendWindow == 100)
    }

    /// RFC 6298 5.5 and RFC 9293: unanswered SYNs back off and the open times out.
    @Test func synSent_noAnswer_backsOffThenTimesOut() {
        var c = Fixture.synSent()
        var now = Fixture.t0
        var gaps: [UInt64] = []
        var syns = 1
        while c.state != .closed, let deadline = c.nextDeadline {
            gaps.append((deadline - now).nanoseconds / 1_000_000)
            now = deadline
            c.fireTimers(now: now)
            syns += Fixture.drain(&c, now: now).count
        }
        #expect(gaps.prefix(4) == [1000, 2000, 4000, 8000])
        #expect(syns == 7 && c.error == .timedOut && c.hasNoTimers)
    }
}

@Suite struct SynchronizedStateTests {
    /// RFC 5961 3.2: a RST in the window but not at RCV.NXT draws a challenge ACK.
    @Test func established_resetInWindowNotExact_challengeAck() throws {
        var c = Fixture.established()
        _ = c.handle(Fixture.segment(.rst, seq: 5001 + 100), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .established)
        let v7 = c.nextSegment(now: Fixture.t0)
        let ack = try #require(v7).header
        #expect(ack.flags == .ack && ack.acknowledgmentNumber == 5001)
    }

    /// RFC 5961 3.2: a RST exactly at RCV.NXT resets the connection.
    @Test func established_resetExact_reset() {
        var c = Fixture.established()
        _ = c.handle(Fixture.segment(.rst, seq: 5001), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .closed && c.error == .connectionReset && c.hasNoTimers)
    }

    /// RFC 5961 3.2 / RFC 9293: a RST outside the window is dropped silently.
    @Test func established_resetOutOfWindow_ignored() {
        var c = Fixture.established()
        _ = c.handle(Fixture.segment(.rst, seq: 5001 &+ 10_000_000), payloadLength: 0, now: Fixture.t0)
        let v8 = c.nextSegment(now: Fixture.t0)
        #expect(c.state == .established && v8 == nil)
    }

    /// RFC 5961 4.2: a SYN on an established connection draws a challenge ACK, not a reset.
    @Test func established_syn_challengeAck() throws {
        var c = Fixture.established()
        _ = c.handle(Fixture.segment(.syn, seq: 5001), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .established)
        let v9 = c.nextSegment(now: Fixture.t0)
        #expect(try #require(v9).header.flags == .ack)
    }

    /// RFC 5961 5.2: an ACK for data never sent is answered with an ACK and dropped.
    @Test func established_ackOfUnsentData_ackedAndDropped() throws {
        var c = Fixture.established()
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001 + 500), payloadLength: 0, now: Fixture.t0)
        #expect(c.sendUnacknowledged == SequenceNumber(1001))
        let v10 = c.nextSegment(now: Fixture.t0)
        #expect(try #require(v10).header.flags == .ack)
    }

    /// RFC 9293 3.10.7.4 first: unacceptable data gets an ACK, and nothing is stored.
    @Test func established_dataOutsideWindow_ackedNotStored() throws {
        var c = Fixture.established()
        let result = c.handle(Fixture.segment(.ack, seq: 5001 &+ 1_000_000, ack: 1001), payloadLength: 100, now: Fixture.t0)
        #expect(result.store == nil && result.readable == 0)
        let v11 = c.nextSegment(now: Fixture.t0)
        #expect(try #require(v11).header.acknowledgmentNumber == 5001)
    }

    /// RFC 5681 4.2 and RFC 2018: out-of-order data is stored in place and acknowledged at
    /// once with a SACK block; the segment that fills the hole makes both readable.
    @Test func established_outOfOrder_storedSackedThenJoined() throws {
        var c = Fixture.established()
        let late = c.handle(Fixture.segment(.ack, seq: 5001 + 100, ack: 1001), payloadLength: 50, now: Fixture.t0)
        #expect(late.store?.offset == 100 && late.store?.range == 0..<50 && late.readable == 0)
        let v12 = c.nextSegment(now: Fixture.t0)
        let dupAck = try #require(v12).header
        #expect(dupAck.acknowledgmentNumber == 5001)
        #expect(dupAck.options.sackBlocks == [SACKBlock(left: 5101, right: 5151)])
        let hole = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001), payloadLength: 100, now: Fixture.t0)
        #expect(hole.store?.offset == 0 && hole.readable == 150 && c.receiveNext == SequenceNumber(5151))
        let v13 = c.nextSegment(now: Fixture.t0)
        #expect(try #require(v13).header.options.sackBlocks.isEmpty)
    }

    /// RFC 1122 4.2.3.2: one in-order segment waits for the delayed-ACK timer (after the
    /// quick-ack start); a second is acknowledged at once.
    @Test func established_inOrderData_delayedAckThenEverySecond() {
        var c = Fixture.established()
        var seq: UInt32 = 5001
        for _ in 0..<16 { // the quick-ack start
            _ = c.handle(Fixture.segment(.ack, seq: seq, ack: 1001), payloadLength: 1000, now: Fixture.t0)
            seq += 1000
            _ = Fixture.drain(&c)
            c.consumed(1000)
        }
        _ = c.handle(Fixture.segment(.ack, seq: seq, ack: 1001), payloadLength: 1000, now: Fixture.t0)
        let v14 = c.nextSegment(now: Fixture.t0)
        #expect(v14 == nil)
        #expect(c.nextDeadline == Fixture.t0 + .milliseconds(40))
        _ = c.handle(Fixture.segment(.ack, seq: seq + 1000, ack: 1001), payloadLength: 1000, now: Fixture.t0)
        let v15 = c.nextSegment(now: Fixture.t0)
        #expect(v15?.header.acknowledgmentNumber == seq + 2000)
    }

    /// RFC 5681 3.2: the third duplicate ACK retransmits the first unacknowledged segment.
    @Test func established_threeDuplicateAcks_fastRetransmit() throws {
        var config = Fixture.configuration()
        config.noDelay = true
        var c = Fixture.established(config)
        c.queued(10 * 1460)
        let sent = Fixture.drain(&c)
        #expect(sent.count == 10 && sent.allSatisfy { $0.payloadLength == 1460 })
        for _ in 0..<3 { _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001), payloadLength: 0, now: Fixture.t0) }
        let v16 = c.nextSegment(now: Fixture.t0)
        let retransmitted = try #require(v16)
        #expect(retransmitted.header.sequenceNumber == 1001 && retransmitted.payloadOffset == 0 && retransmitted.payloadLength == 1460)
        #expect(c.congestion.window < 10 * 1460)
    }

    /// RFC 3522 and RFC 4015: recovery began on three duplicate ACKs, but the ACK that ends
    /// it echoes a timestamp older than the retransmission, so the originals arrived (they
    /// were reordered). The window comes back, and DupThresh rises so the reordering is
    /// tolerated next time; with each algorithm.
    @Test(arguments: CongestionAlgorithm.allCases)
    func established_spuriousRecovery_undoneByTimestamp(_ algorithm: CongestionAlgorithm) throws {
        var config = Fixture.configuration()
        config.noDelay = true
        config.congestionControl = algorithm
        var c = Fixture.synSent(config)
        _ = c.handle(Fixture.segment([.syn, .ack], seq: Fixture.peerISS, ack: Fixture.iss.raw + 1,
                                     options: Fixture.synAckOptions(scale: 0, timestamps: true)),
                     payloadLength: 0, now: Fixture.t0)
        _ = Fixture.drain(&c)
        c.queued(10 * 1448) // MSS net of the timestamp option
        let sent = Fixture.drain(&c)
        #expect(sent.count == 10)
        let originalStamp = try #require(sent[0].header.options.timestamp?.value)
        let windowBefore = c.congestion.window

        func ack(_ number: UInt32, echo: UInt32, peerStamp: UInt32) -> TCPSegmentHeader {
            var o = TCPOptions()
            o.timestamp = (peerStamp, echo)
            return Fixture.segment(.ack, seq: Fixture.peerISS + 1, ack: number, options: o)
        }
        let later = Fixture.t0 + .milliseconds(5)
        for i in 0..<3 {
            _ = c.handle(ack(Fixture.iss.raw + 1, echo: originalStamp, peerStamp: 800 + UInt32(i)), payloadLength: 0, now: later)
        }
        let next = c.nextSegment(now: later)
        let retransmitted = try #require(next)
        #expect(retransmitted.header.sequenceNumber == Fixture.iss.raw + 1)
        #expect(try #require(retransmitted.header.options.timestamp?.value) != originalStamp)
        // BBR conserves packets instead: its window stays at the flight.
        if algorithm != .bbr { #expect(c.congestion.window < windowBefore) }

        // The ACK for all ten echoes the original segments' timestamp.
        _ = c.handle(ack(Fixture.iss.raw + 1 + 10 * 1448, echo: originalStamp, peerStamp: 810), payloadLength: 0, now: later)
        #expect(c.spuriousRecoveries == 1)
        #expect(c.reorderingThreshold == 6)
        #expect(c.congestion.window >= windowBefore)
    }

    /// RFC 8985 7: with the flight unanswered for two RTTs, a tail loss probe resends the last
    /// segment (at least 10 ms after sending, before the RTO).
    @Test func established_silentFlight_tailLossProbeBeforeTimeout() throws {
        var c = Fixture.established()
        c.queued(2920)
        _ = Fixture.drain(&c)
        let probeAt = try #require(c.nextDeadline)
        #expect(probeAt == Fixture.t0 + .milliseconds(10))
        c.fireTimers(now: probeAt)
        let probe = Fixture.drain(&c, now: probeAt)
        #expect(probe.count == 1 && probe[0].header.sequenceNumber == 1001 + 1460 && probe[0].payloadLength == 1460)
        #expect(c.congestion.window == 14_600) // a probe is not a loss
        #expect(c.nextDeadline == Fixture.t0 + c.rtt.timeout) // one probe per flight, then the RTO
    }

    /// RFC 8985 7.2 and Linux's tcp_schedule_loss_probe: with one segment in flight the
    /// receiver may be delaying its ACK, so the probe waits 200 ms past two RTTs, which puts
    /// it at the RTO: a delayed ACK 40 ms later finds nothing resent; unanswered, the probe
    /// goes in the RTO's place (the segment again, the window kept) and the RTO starts over.
    @Test func established_oneSegmentInFlight_probeWaitsForADelayedAck() throws {
        var c = Fixture.established()
        c.queued(100)
        _ = Fixture.drain(&c)
        let rto = c.rtt.timeout
        #expect(c.nextDeadline == Fixture.t0 + rto, "the probe waits for the RTO")
        var quiet = c
        let ackAt = Fixture.t0 + .milliseconds(40)
        _ = quiet.handle(Fixture.segment(.ack, seq: 5001, ack: 1101), payloadLength: 0, now: ackAt)
        quiet.fireTimers(now: ackAt)
        #expect(Fixture.drain(&quiet, now: ackAt).isEmpty && quiet.nextDeadline == nil, "a probe for an acknowledged segment")
        let probeAt = Fixture.t0 + rto
        c.fireTimers(now: probeAt)
        let probe = Fixture.drain(&c, now: probeAt)
        #expect(probe.count == 1 && probe[0].header.sequenceNumber == 1001 && probe[0].payloadLength == 100)
        #expect(c.congestion.window == 14_600 && c.rtt.timeout == rto, "the probe was taken for a timeout")
        #expect(c.nextDeadline == probeAt + rto)
    }

    /// RFC 6298 5.5-5.7: a timeout resends from SND.UNA with one segment of window, backed off.
    @Test func established_retransmissionTimeout_resendsFromUnacknowledged() throws {
        var c = Fixture.established()
        c.queued(3000)
        _ = Fixture.drain(&c)
        let timeout = c.rtt.timeout // measured on the handshake: the 200 ms floor
        #expect(timeout == .milliseconds(200))
        let probeAt = try #require(c.nextDeadline)
        c.fireTimers(now: probeAt)
        _ = Fixture.drain(&c, now: probeAt) // the tail loss probe, unanswered too
        let deadline = try #require(c.nextDeadline)
        #expect(deadline == Fixture.t0 + timeout)
        c.fireTimers(now: deadline)
        let again = Fixture.drain(&c, now: deadline)
        #expect(again.first?.header.sequenceNumber == 1001 && again.count == 1)
        #expect(c.congestion.window == 1460 && c.rtt.timeout == .milliseconds(400))
    }

    /// RFC 9293 3.8.6.1: a zero window with data waiting is probed on the persist timer.
    @Test func established_zeroWindow_persistProbe() throws {
        var c = Fixture.established()
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001, window: 0), payloadLength: 0, now: Fixture.t0)
        c.queued(100)
        let v17 = Fixture.drain(&c)
        #expect(v17.isEmpty)
        let deadline = try #require(c.nextDeadline)
        c.fireTimers(now: deadline)
        let v18 = c.nextSegment(now: deadline)
        let probe = try #require(v18)
        // Linux's probe: a bare ACK one below SND.UNA, not a byte of data past the window.
        #expect(probe.payloadLength == 0 && probe.header.sequenceNumber == 1000 && probe.header.flags == .ack)
    }

    /// RFC 1122 4.2.2.17: a receiver that answers every probe may keep its window closed
    /// for ever; fifteen probes in a row unanswered (tcp_retries2) end the connection.
    @Test func established_zeroWindow_answeredForEver_unansweredTimesOut() throws {
        var c = Fixture.established()
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001, window: 0), payloadLength: 0, now: Fixture.t0)
        c.queued(100)
        _ = Fixture.drain(&c)
        var now = Fixture.t0
        var gaps: [UInt64] = []
        for _ in 0..<40 { // answered: the interval backs off to 120 s and stays there
            let deadline = try #require(c.nextDeadline)
            gaps.append((deadline - now).nanoseconds / 1_000_000)
            now = deadline
            c.fireTimers(now: now)
            let probes = Fixture.drain(&c, now: now)
            #expect(probes.count == 1 && probes.first?.payloadLength == 0)
            _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001, window: 0), payloadLength: 0, now: now)
        }
        #expect(c.state == .established && gaps.suffix(20).allSatisfy { $0 == 120_000 }, "gaps \(gaps) ms")
        var probes = 0
        while c.state != .closed, let deadline = c.nextDeadline { // unanswered
            now = deadline
            c.fireTimers(now: now)
            probes += Fixture.drain(&c, now: now).filter { $0.payloadLength == 0 && !$0.header.flags.contains(.rst) }.count
        }
        #expect(probes == 15 && c.error == .timedOut, "\(probes) probes, \(String(describing: c.error))")
    }

    /// RFC 896: a small segment waits while data is unacknowledged; TCP_NODELAY sends it.
    @Test func established_nagle_holdsSmallSegment_noDelaySends() {
        var c = Fixture.established()
        c.queued(100)
        let v19 = Fixture.drain(&c)
        #expect(v19.count == 1)
        c.queued(100)
        let v20 = Fixture.drain(&c)
        #expect(v20.isEmpty)
        var config = Fixture.configuration()
        config.noDelay = true
        var fast = Fixture.established(config)
        fast.queued(100)
        _ = Fixture.drain(&fast)
        fast.queued(100)
        let v21 = Fixture.drain(&fast)
        #expect(v21.count == 1)
    }

    /// RFC 7323 2.3: the peer's window is scaled by the shift it announced.
    @Test func established_windowScale_appliedToPeerWindow() {
        var c = Fixture.synSent()
        _ = c.handle(Fixture.segment([.syn, .ack], seq: 5000, ack: 1001, window: 1000, options: Fixture.synAckOptions(scale: 7)),
                     payloadLength: 0, now: Fixture.t0)
        #expect(c.sendWindow == 1000) // never scaled on the SYN
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001, window: 1000), payloadLength: 0, now: Fixture.t0)
        #expect(c.sendWindow == 128_000)
    }

    /// RFC 7323 5.3: PAWS drops a segment with an older timestamp than TS.Recent.
    @Test func established_oldTimestamp_dropped() {
        var c = Fixture.synSent()
        _ = c.handle(Fixture.segment([.syn, .ack], seq: 5000, ack: 1001, options: Fixture.synAckOptions(timestamps: true)),
                     payloadLength: 0, now: Fixture.t0)
        var old = TCPOptions()
        old.timestamp = (700, 0)
        let result = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001, options: old), payloadLength: 10, now: Fixture.t0)
        #expect(result.store == nil && c.receiveNext == SequenceNumber(5001))
    }
}

@Suite struct ClosingTests {
    /// RFC 9293 3.6: our close, their ACK, their FIN: FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT, CLOSED after 2 MSL.
    @Test func established_activeClose_throughTimeWait() throws {
        var c = Fixture.established()
        c.close(now: Fixture.t0)
        #expect(c.state == .finWait1)
        let v22 = c.nextSegment(now: Fixture.t0)
        let fin = try #require(v22).header
        #expect(fin.flags == [.fin, .ack] && fin.sequenceNumber == 1001)
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1002), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .finWait2 && c.hasNoTimers) // half-closed: no FIN-WAIT-2 timeout
        _ = c.handle(Fixture.segment([.fin, .ack], seq: 5001, ack: 1002), payloadLength: 0, now: Fixture.t0)
        let v23 = c.takeEvents()
        #expect(c.state == .timeWait && v23.contains(.peerClosed))
        let v24 = c.nextSegment(now: Fixture.t0)
        #expect(v24?.header.acknowledgmentNumber == 5002)
        #expect(c.nextDeadline == Fixture.t0 + .seconds(60))
        c.fireTimers(now: Fixture.t0 + .seconds(60))
        #expect(c.state == .closed && c.hasNoTimers)
    }

    /// RFC 9293 3.6: both close at once: FIN-WAIT-1, CLOSING, TIME-WAIT.
    @Test func finWait1_peerFin_simultaneousClose() {
        var c = Fixture.established()
        c.close(now: Fixture.t0)
        _ = Fixture.drain(&c)
        _ = c.handle(Fixture.segment([.fin, .ack], seq: 5001, ack: 1001), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .closing)
        _ = c.handle(Fixture.segment(.ack, seq: 5002, ack: 1002), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .timeWait)
    }

    /// RFC 9293 3.6: their FIN first: CLOSE-WAIT, our close, LAST-ACK, CLOSED on their ACK.
    @Test func established_passiveClose_throughLastAck() throws {
        var c = Fixture.established()
        _ = c.handle(Fixture.segment([.fin, .ack], seq: 5001, ack: 1001), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .closeWait)
        _ = Fixture.drain(&c)
        c.close(now: Fixture.t0)
        #expect(c.state == .lastAck)
        let v25 = c.nextSegment(now: Fixture.t0)
        #expect(try #require(v25).header.flags.contains(.fin))
        _ = c.handle(Fixture.segment(.ack, seq: 5002, ack: 1002), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .closed && c.hasNoTimers)
    }

    /// Linux's tcp_fin: the ACK of a FIN that ends an established connection waits for the
    /// delayed-ACK timer, so the application's close carries it (one segment, not two).
    @Test func established_peerFin_ackRidesOnOurFin_orTheTimer() throws {
        var c = Fixture.established()
        _ = c.handle(Fixture.segment([.fin, .ack], seq: 5001, ack: 1001), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .closeWait)
        #expect(c.nextSegment(now: Fixture.t0) == nil)
        #expect(c.nextDeadline == Fixture.t0 + .milliseconds(40))
        let later = Fixture.t0 + .microseconds(30)
        c.close(now: later)
        let first = c.nextSegment(now: later)
        let fin = try #require(first).header
        #expect(fin.flags == [.fin, .ack] && fin.acknowledgmentNumber == 5002)
        #expect(c.nextSegment(now: later) == nil)
        // An application that does not close: the timer sends the ACK.
        var d = Fixture.established()
        _ = d.handle(Fixture.segment([.fin, .ack], seq: 5001, ack: 1001), payloadLength: 0, now: Fixture.t0)
        d.fireTimers(now: Fixture.t0 + .milliseconds(40))
        let timed = d.nextSegment(now: Fixture.t0 + .milliseconds(40))
        let ack = try #require(timed).header
        #expect(ack.flags == .ack && ack.acknowledgmentNumber == 5002)
    }

    /// An orphaned socket in FIN-WAIT-2 gives up after tcp_fin_timeout.
    @Test func finWait2_orphaned_timesOut() {
        var c = Fixture.established()
        c.orphan(now: Fixture.t0)
        _ = Fixture.drain(&c)
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1002), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .finWait2 && c.nextDeadline == Fixture.t0 + .seconds(60))
        c.fireTimers(now: Fixture.t0 + .seconds(60))
        #expect(c.state == .closed)
    }

    /// RFC 9293 3.10.5: ABORT sends RST from a synchronized state.
    @Test func established_abort_sendsReset() {
        var c = Fixture.established()
        let rst = c.abort(now: Fixture.t0)
        #expect(rst?.flags == [.rst, .ack] && rst?.sequenceNumber == 1001)
        #expect(c.state == .closed && c.hasNoTimers)
    }

    /// RFC 9293 3.10.7.1: CLOSED answers a SYN with RST/ACK and an ACK with RST.
    @Test func closed_segments_answeredWithReset() {
        let syn = Fixture.segment(.syn, seq: 77)
        let reset = Connection.resetFor(syn, payloadLength: 0)
        #expect(reset?.flags == [.rst, .ack] && reset?.acknowledgmentNumber == 78 && reset?.sequenceNumber == 0)
        let ack = Connection.resetFor(Fixture.segment(.ack, seq: 77, ack: 99), payloadLength: 10)
        #expect(ack?.flags == .rst && ack?.sequenceNumber == 99)
        #expect(Connection.resetFor(Fixture.segment(.rst, seq: 1), payloadLength: 0) == nil)
    }
}

@Suite struct CongestionTests {
    /// RFC 3465: slow start grows by the bytes acknowledged, a stretch ACK of five segments
    /// by all five (no L cap, as Linux); NewReno halves on loss.
    @Test func newReno_slowStartThenHalve() {
        var reno = NewReno(maximumSegmentSize: 1000)
        #expect(reno.window == 10_000)
        reno.acknowledged(5000, now: .zero, smoothedRTT: nil)
        #expect(reno.window == 15_000)
        reno.lossDetected(flight: 20_000, now: .zero)
        #expect(reno.window == 10_000 && reno.slowStartThreshold == 10_000)
        for _ in 0..<10 { reno.acknowledged(1000, now: .zero, smoothedRTT: nil) }
        #expect(reno.window == 11_000) // one MSS per window in avoidance
    }

    /// RFC 9438 4.6 and 4.2: beta 0.7 on loss, then growth back toward W_max.
    @Test func cubic_reducesBy30Percent_thenRegrows() {
        var cubic = Cubic(maximumSegmentSize: 1000)
        cubic.acknowledged(90_000, now: .zero, smoothedRTT: nil) // slow start to 100 segments
        let before = cubic.window
        cubic.lossDetected(flight: before, now: .zero)
        #expect(cubic.window == Int(Double(before) * 0.7))
        var now = Instant.zero
        for _ in 0..<2000 {
            now = now + .milliseconds(10)
            cubic.acknowledged(1000, now: now, smoothedRTT: .milliseconds(10))
        }
        #expect(cubic.window > before) // past the plateau after ~20 s of ACKs
    }
}

extension CongestionTests {
    /// Linux's undo_cwnd for Reno and CUBIC: cwnd and ssthresh come back to what they were
    /// before the reduction, never below what they are now.
    @Test func lossBased_undoRestoresWindowAndThreshold() {
        for algorithm in [CongestionAlgorithm.newReno, .cubic] {
            var controller = CongestionController(algorithm, maximumSegmentSize: 1000)
            controller.acknowledged(40_000, now: .zero, smoothedRTT: nil) // slow start to 50 segments
            let before = controller.beforeReduction
            controller.lossDetected(flight: 50_000, now: .zero)
            #expect(controller.window < before.window && controller.slowStartThreshold < before.slowStartThreshold)
            controller.undoReduction(before)
            #expect(controller.window == 50_000 && controller.slowStartThreshold == Int.max)
        }
    }

    /// BBR's undo ends the recovery with the window saved at its start; the model stays.
    @Test func bbr_undoEndsRecoveryWithTheSavedWindow() {
        var bbr = BBR(maximumSegmentSize: 1000)
        let before = WindowBeforeReduction(window: bbr.window, slowStartThreshold: bbr.slowStartThreshold)
        bbr.lossDetected(flight: 4000, now: .zero)
        #expect(bbr.window == 4000)
        bbr.undoReduction(before)
        #expect(bbr.window == 10_000)
        bbr.recoveryEnded() // nothing saved is left to restore twice
        #expect(bbr.window == 10_000)
    }
}

@Suite struct HostileInputTests {
    /// RFC 5961 7: a storm of in-window RSTs draws at most ten challenge ACKs a second.
    @Test func established_resetStorm_challengeAcksRateLimited() {
        var c = Fixture.established()
        var acks = 0
        var limited = 0
        for i in 0..<1000 {
            let result = c.handle(Fixture.segment(.rst, seq: 5001 + 1 + UInt32(i % 1000)), payloadLength: 0, now: Fixture.t0)
            if result.drop == .challengeAckLimited { limited += 1 }
            acks += Fixture.drain(&c).count
        }
        #expect(acks == 10 && limited == 990 && c.state == .established)
        _ = c.handle(Fixture.segment(.rst, seq: 5002), payloadLength: 0, now: Fixture.t0 + .seconds(1))
        #expect(Fixture.drain(&c, now: Fixture.t0 + .seconds(1)).count == 1)
    }

    /// SO_LINGER: the socket layer can tell when everything, FIN included, is acknowledged.
    @Test func everythingAcknowledged_afterFinAcked() {
        var c = Fixture.established()
        c.queued(10)
        #expect(!c.everythingAcknowledged)
        c.close(now: Fixture.t0)
        _ = Fixture.drain(&c)
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1011), payloadLength: 0, now: Fixture.t0)
        #expect(!c.everythingAcknowledged)
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1012), payloadLength: 0, now: Fixture.t0)
        #expect(c.everythingAcknowledged)
    }
}
