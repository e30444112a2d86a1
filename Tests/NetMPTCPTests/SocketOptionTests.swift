import NetMPTCP
import NetMPWire
import Testing

@Suite struct SocketOptionTests {
    /// RFC 1122 4.2.3.6: idle, then probes at SND.UNA-1 every interval; an answer resets the
    /// count; TCP_KEEPCNT unanswered probes end the connection with ETIMEDOUT.
    @Test func keepAlive_probesThenTimesOut() throws {
        var c = Fixture.established()
        c.setKeepAlive(true, idle: .seconds(10), interval: .seconds(2), probes: 3, now: Fixture.t0)
        #expect(c.nextDeadline == Fixture.t0 + .seconds(10))
        var now = Fixture.t0 + .seconds(10)
        c.fireTimers(now: now)
        let probes = Fixture.drain(&c, now: now)
        let probe = try #require(probes.first).header
        #expect(probe.sequenceNumber == 1000 && probe.flags == .ack)
        // The peer answers: idle again.
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001), payloadLength: 0, now: now)
        #expect(c.nextDeadline == now + .seconds(10))
        for _ in 0..<4 {
            now = try #require(c.nextDeadline)
            c.fireTimers(now: now)
            _ = Fixture.drain(&c, now: now)
        }
        #expect(c.state == .closed && c.error == .timedOut)
    }

    /// TCP_CORK holds a partial segment even with nothing in flight; uncorking sends it.
    @Test func cork_holdsPartialSegment_untilUncorked() {
        var c = Fixture.established()
        c.setCork(true)
        c.queued(100)
        let held = Fixture.drain(&c)
        #expect(held.isEmpty)
        c.queued(2000)
        let full = Fixture.drain(&c)
        #expect(full.count == 1 && full[0].payloadLength == 1460)
        c.setCork(false)
        c.setNoDelay(true)
        let rest = Fixture.drain(&c)
        #expect(rest.map(\.payloadLength) == [640])
    }

    /// A partial segment TCP_CORK holds with nothing in flight goes when the probe timer
    /// fires, one RTO (200 ms at least) after it was first held: Linux's ceiling on
    /// TCP_CORK (tcp(7)), sent from its probe timer. Not before, and only once: the next
    /// small write is held again.
    @Test func cork_ceiling_sendsTheHeldPartialSegmentAfterOneRTO() throws {
        var c = Fixture.established()
        c.setCork(true)
        c.queued(100)
        #expect(Fixture.drain(&c, now: Fixture.t0).isEmpty)
        let deadline = try #require(c.nextDeadline)
        #expect(deadline - Fixture.t0 >= .milliseconds(200))
        c.fireTimers(now: Fixture.t0 + .milliseconds(150))
        #expect(Fixture.drain(&c, now: Fixture.t0 + .milliseconds(150)).isEmpty, "sent before the ceiling")
        c.fireTimers(now: deadline)
        #expect(Fixture.drain(&c, now: deadline).map(\.payloadLength) == [100])
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1101), payloadLength: 0, now: deadline)
        c.queued(50)
        #expect(Fixture.drain(&c, now: deadline).isEmpty, "the ceiling let a later small write through at once")
        #expect(c.nextDeadline != nil, "the later write has no ceiling")
    }

    /// TCP_CONGESTION switches the algorithm and keeps the window.
    @Test func congestionSwitch_keepsWindow() {
        var c = Fixture.established()
        let window = c.congestion.window
        c.setCongestionControl(.newReno)
        #expect(c.congestion.algorithm == .newReno && c.congestion.window == window)
    }

    /// TCP_MAXSEG before the SYN sets the MSS we announce; afterwards it is refused.
    @Test func maxSegment_onlyBeforeTheSYN() throws {
        var c = Connection.connect(Fixture.tuple, iss: Fixture.iss, now: Fixture.t0, configuration: Fixture.configuration())
        let before = c.setMaximumSegmentSize(1200)
        #expect(before)
        let first = c.nextSegment(now: Fixture.t0)
        let syn = try #require(first).header
        #expect(syn.options.maximumSegmentSize == 1200)
        let after = c.setMaximumSegmentSize(1000)
        #expect(!after)
    }
}

@Suite struct ReuseAndTuningTests {
    /// RFC 6191: TIME-WAIT yields to a SYN with a newer timestamp, or a higher sequence
    /// without timestamps; an older one is not taken for a new connection.
    @Test func timeWait_newerSyn_acceptedAsNewIncarnation() {
        var c = Fixture.established()
        c.close(now: Fixture.t0)
        _ = Fixture.drain(&c)
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1002), payloadLength: 0, now: Fixture.t0)
        _ = c.handle(Fixture.segment([.fin, .ack], seq: 5001, ack: 1002), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .timeWait)
        #expect(c.acceptsNewIncarnation(Fixture.segment(.syn, seq: 9000)))
        #expect(!c.acceptsNewIncarnation(Fixture.segment(.syn, seq: 4000)))
        #expect(!c.acceptsNewIncarnation(Fixture.segment([.syn, .ack], seq: 9000)))
    }

    /// Dynamic right-sizing: an application that drains more than half the window per round
    /// trip doubles it, up to the buffer; one that reads slowly does not.
    @Test func receiveWindow_autoTunes_upToTheBuffer() {
        var config = Fixture.configuration()
        config.receiveBufferSize = 1 << 20
        config.initialReceiveWindow = 64 << 10
        var c = Fixture.established(config)
        #expect(c.receiveWindowLimit == 64 << 10)
        var now = Fixture.t0
        var seq: UInt32 = 5001
        for _ in 0..<40 {
            // A window's worth arrives and is read within each round trip.
            let window = c.receiveWindowLimit
            _ = c.handle(Fixture.segment(.ack, seq: seq, ack: 1001), payloadLength: window, now: now)
            seq &+= UInt32(window)
            now = now + .milliseconds(20)
            c.consumed(window, now: now)
        }
        #expect(c.receiveWindowLimit == 1 << 20)
        var slow = Fixture.established(config)
        now = Fixture.t0
        for _ in 0..<40 {
            now = now + .milliseconds(20)
            slow.consumed(100, now: now)
        }
        #expect(slow.receiveWindowLimit == 64 << 10)
    }
}
