import NetMPTCP
import NetMPWire
import Testing

/// TCP_USER_TIMEOUT, TCP_LINGER2, TCP_SYNCNT and TCP_QUICKACK on the control block, with a
/// simulated clock: each changes when the connection gives up, waits or acknowledges.
@Suite struct TimingOptionTests {
    /// Runs every timer as it falls due until the connection closes or `limit` passes;
    /// returns when it closed.
    func runTimers(_ c: inout Connection, from start: Instant, limit: Interval) -> Instant? {
        var now = start
        while c.state != .closed {
            guard let next = c.nextDeadline, next < start + limit else { return nil }
            now = next
            c.fireTimers(now: now)
            _ = Fixture.drain(&c, now: now)
        }
        return now
    }

    /// RFC 5482: data unacknowledged for the user timeout ends the connection with
    /// ETIMEDOUT, long before tcp_retries2's fifteen backed-off timeouts would, and the last
    /// retransmission timer is cut short to end it on time.
    @Test func userTimeout_endsAStall_onTime() throws {
        var c = Fixture.established()
        c.setUserTimeout(.milliseconds(1500), now: Fixture.t0)
        c.queued(1000)
        #expect(Fixture.drain(&c).count == 1)
        let ended = try #require(runTimers(&c, from: Fixture.t0, limit: .seconds(60)))
        #expect(c.error == .timedOut)
        #expect(ended - Fixture.t0 >= .milliseconds(1500) && ended - Fixture.t0 < .milliseconds(1600))

        // Without it the same stall is still retransmitting a minute later.
        var plain = Fixture.established()
        plain.queued(1000)
        _ = Fixture.drain(&plain)
        #expect(runTimers(&plain, from: Fixture.t0, limit: .seconds(60)) == nil)
    }

    /// An acknowledgment restarts the clock: only a stall as long as the timeout ends it.
    @Test func userTimeout_progressRestartsTheClock() throws {
        var c = Fixture.established()
        c.setUserTimeout(.seconds(2), now: Fixture.t0)
        c.queued(2000)
        _ = Fixture.drain(&c)
        // Two timeouts pass (1 s RTO after the handshake's sample, then backed off)...
        var now = try #require(c.nextDeadline)
        c.fireTimers(now: now)
        _ = Fixture.drain(&c, now: now)
        // ...then the peer acknowledges the first segment: still open, and the rest gets a
        // whole new two seconds.
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 2001), payloadLength: 0, now: now)
        #expect(c.state == .established)
        now = now + .milliseconds(10)
        c.queued(500)
        _ = Fixture.drain(&c, now: now)
        let ended = try #require(runTimers(&c, from: now, limit: .seconds(60)))
        #expect(ended - now >= .milliseconds(1700) && c.error == .timedOut)
    }

    /// The user timeout also bounds a connect (in place of TCP_SYNCNT), and TCP_SYNCNT alone
    /// bounds it by retransmissions: one is 1 s + 2 s.
    @Test func connect_givesUpByUserTimeout_orBySynCount() throws {
        var c = Connection.connect(Fixture.tuple, iss: Fixture.iss, now: Fixture.t0, configuration: Fixture.configuration())
        c.setUserTimeout(.milliseconds(800), now: Fixture.t0)
        _ = Fixture.drain(&c)
        let ended = try #require(runTimers(&c, from: Fixture.t0, limit: .seconds(200)))
        #expect(c.error == .timedOut && ended - Fixture.t0 < .seconds(2))

        var counted = Connection.connect(Fixture.tuple, iss: Fixture.iss, now: Fixture.t0, configuration: Fixture.configuration())
        counted.setSYNRetransmissions(1)
        _ = Fixture.drain(&counted)
        let gaveUp = try #require(runTimers(&counted, from: Fixture.t0, limit: .seconds(200)))
        #expect(counted.error == .timedOut && gaveUp - Fixture.t0 == .seconds(3))
    }

    /// With a user timeout, keepalive gives up once the peer has been silent that long and a
    /// probe went unanswered, not after TCP_KEEPCNT probes (Linux's tcp_keepalive_timer).
    @Test func keepAlive_withUserTimeout_givesUpBySilence() throws {
        var c = Fixture.established()
        c.setKeepAlive(true, idle: .seconds(10), interval: .seconds(2), probes: 9, now: Fixture.t0)
        c.setUserTimeout(.seconds(13), now: Fixture.t0)
        let ended = try #require(runTimers(&c, from: Fixture.t0, limit: .seconds(100)))
        // Probes at 10 and 12 s; at 14 s the peer has been silent 14 s >= 13.
        #expect(c.error == .timedOut && ended - Fixture.t0 == .seconds(14))
    }

    /// TCP_LINGER2: an orphaned connection whose FIN was acknowledged waits that long in
    /// FIN-WAIT-2 for the peer's; below 0 it resets at once instead.
    @Test func linger2_boundsFinWait2_orResets() throws {
        var c = Fixture.established()
        c.setFinWait2(.seconds(5))
        c.orphan(now: Fixture.t0)
        let fin = Fixture.drain(&c)
        #expect(fin.last?.header.flags.contains(.fin) == true)
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1002), payloadLength: 0, now: Fixture.t0)
        #expect(c.state == .finWait2 && c.nextDeadline == Fixture.t0 + .seconds(5))

        var resetting = Fixture.established()
        resetting.setFinWait2(nil)
        resetting.orphan(now: Fixture.t0)
        _ = Fixture.drain(&resetting)
        _ = resetting.handle(Fixture.segment(.ack, seq: 5001, ack: 1002), payloadLength: 0, now: Fixture.t0)
        let reset = Fixture.drain(&resetting)
        #expect(reset.count == 1 && reset[0].header.flags.contains(.rst))
        #expect(resetting.state == .closed)
    }

    /// TCP_QUICKACK 0 ends the quick-ACK start: a lone segment waits for the delayed-ACK
    /// timer; TCP_QUICKACK 1 sends that waiting ACK at once.
    @Test func quickAck_delaysThenFlushes() throws {
        var c = Fixture.established()
        c.setQuickAck(false)
        _ = c.handle(Fixture.segment(.ack, seq: 5001, ack: 1001), payloadLength: 100, now: Fixture.t0)
        #expect(Fixture.drain(&c).isEmpty)
        #expect(c.nextDeadline != nil)
        c.setQuickAck(true)
        let ack = Fixture.drain(&c)
        #expect(ack.count == 1 && ack[0].header.acknowledgmentNumber == 5101)

        // At the quick-ACK start (Linux's default) the same segment is acknowledged at once.
        var quick = Fixture.established()
        _ = quick.handle(Fixture.segment(.ack, seq: 5001, ack: 1001), payloadLength: 100, now: Fixture.t0)
        #expect(Fixture.drain(&quick).count == 1)
    }
}
