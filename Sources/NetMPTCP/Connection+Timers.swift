import NetMPWire

/// Timers as deadlines (smoltcp's poll_at): the owner keeps one timer wheel and asks each
/// connection for its next deadline; no connection has a thread or an OS timer.
extension Connection {
    /// The earliest armed timer. Asked after every segment, so no array is built here.
    public var nextDeadline: Instant? {
        var earliest = retransmitDeadline
        func consider(_ deadline: Instant?) {
            if let deadline, earliest == nil || deadline < earliest! { earliest = deadline }
        }
        consider(delayedAckDeadline)
        consider(persistDeadline)
        consider(closeDeadline)
        consider(keepAliveDeadline)
        consider(probeDeadline)
        consider(socketDeadline)
        return earliest
    }

    /// True when no timer is armed (a closed connection must have none).
    public var hasNoTimers: Bool { nextDeadline == nil }

    /// Runs every timer due at `now`.
    public mutating func fireTimers(now: Instant) {
        if let deadline = delayedAckDeadline, deadline <= now {
            delayedAckDeadline = nil
            ackNow = true
        }
        if let deadline = closeDeadline, deadline <= now {
            closeDeadline = nil
            enter(.closed, now: now) // TIME-WAIT over, or FIN-WAIT-2 gave up
        }
        if let deadline = persistDeadline, deadline <= now {
            persistDeadline = nil
            if sendWindow == 0 { windowProbeTimeout(now: now) } else if configuration.cork && flight == 0 { corkCeilingPassed = true }
        }
        if let deadline = probeDeadline, deadline <= now {
            probeDeadline = nil
            if recoveryPoint != nil {
                retransmissionUnanswered()
            } else if flight > 0 {
                probeDue = true
                probeSent = true
                tailLossProbes &+= 1
                // Due with the RTO, the probe goes in its place, and the RTO starts again
                // after it (Linux rearms it after a loss probe). The stall is counted from
                // the data's first send all the same, as Linux's retrans_stamp is.
                if let rto = retransmitDeadline, rto <= now {
                    noteStall(now: now)
                    retransmitDeadline = retransmissionDeadline(from: now)
                }
            }
        }
        if let deadline = retransmitDeadline, deadline <= now {
            retransmitDeadline = nil
            probeDeadline = nil
            retransmissionTimeout(now: now)
        }
        if let deadline = keepAliveDeadline, deadline <= now {
            keepAliveTimeout(now: now)
        }
        if let deadline = socketDeadline, deadline <= now { socketDeadline = nil }
    }

    /// Wakes the owner for the socket layer at `deadline` (nil: not at all).
    public mutating func wakeSocketLayer(at deadline: Instant?) { socketDeadline = deadline }

    /// The data went unanswered for the RTO that just ran out: the stall counts from when
    /// it was sent (the first time only).
    mutating func noteStall(now: Instant) {
        if stalledSince == nil { stalledSince = Instant(nanoseconds: now.nanoseconds &- min(now.nanoseconds, rtt.timeout.nanoseconds)) }
    }

    /// The retransmission timer's next deadline: one RTO from now, but never past the point
    /// where TCP_USER_TIMEOUT ends a stall (Linux's tcp_clamp_rto_to_user_timeout).
    func retransmissionDeadline(from now: Instant) -> Instant {
        let deadline = now + rtt.timeout
        guard configuration.userTimeout.nanoseconds > 0, let since = stalledSince else { return deadline }
        return min(deadline, max(now, since + configuration.userTimeout))
    }

    /// RFC 8985 7.2: PTO = 2 * SRTT (at least 10 ms), and never later than the RTO; for a
    /// flight of one segment 2 * SRTT + 200 ms, and at the RTO at the latest.
    /// In SACK loss recovery the same timer watches the retransmissions instead: one that
    /// two round trips (10 ms at least) bring no answer to was lost too.
    mutating func armProbe(now: Instant) {
        let watching = recoveryPoint != nil ? sackEnabled && sendUnacknowledged < highestRetransmitted
                                            : !probeSent && flight > 0
        guard watching, let srtt = rtt.smoothed, state.isSynchronized else {
            probeDeadline = nil
            return
        }
        // With one segment in flight the receiver may be delaying its ACK: Linux waits 200 ms
        // (TCP_RTO_MIN) past two RTTs then, RFC 8985 7.2's WCDelAckT, and the probe falls
        // due with the RTO at the latest, in its place (tcp_schedule_loss_probe).
        if recoveryPoint == nil && segmentCount(flight) == 1 {
            let probe = now + Interval(nanoseconds: 2 * srtt + 200_000_000)
            probeDeadline = retransmitDeadline.map { min($0, probe) } ?? probe
            return
        }
        let probe = now + Interval(nanoseconds: max(2 * srtt, 10_000_000))
        if let rto = retransmitDeadline, rto <= probe { probeDeadline = nil; return }
        probeDeadline = probe
    }

    /// The retransmission at SND.UNA went unanswered past the probe time: it was lost (as
    /// RACK would find by time; the order-based check needs later data SACKed, and in
    /// recovery the window may let none go). Loss recovery resends the holes from SND.UNA
    /// instead of waiting for the retransmission timeout, which would collapse the window
    /// and idle the connection for 200 ms at least.
    mutating func retransmissionUnanswered() {
        guard sackEnabled, sendUnacknowledged < highestRetransmitted else { return }
        retransmissionsLost()
    }

    /// RFC 1122 4.2.3.6: after the idle time, probe; after TCP_KEEPCNT unanswered probes,
    /// the connection is dead (ETIMEDOUT).
    /// With TCP_USER_TIMEOUT, the peer's silence since it was last heard decides instead of
    /// the count, once a probe went unanswered (Linux's tcp_keepalive_timer).
    mutating func keepAliveTimeout(now: Instant) {
        guard configuration.keepAlive, state == .established || state == .closeWait else { keepAliveDeadline = nil; return }
        let userTimeout = configuration.userTimeout.nanoseconds
        let silent = configuration.keepAliveIdle.nanoseconds
            &+ UInt64(keepAliveProbesSent) &* configuration.keepAliveInterval.nanoseconds
        if userTimeout > 0 ? keepAliveProbesSent > 0 && silent >= userTimeout
                           : keepAliveProbesSent >= configuration.keepAliveProbes {
            fail(.timedOut, now: now)
            return
        }
        keepAliveProbesSent += 1
        bareProbeDue = true
        keepAliveDeadline = now + configuration.keepAliveInterval
    }

    /// The window is closed and data waits: probe it with a bare ACK below SND.UNA, the
    /// interval backing off to the RTO's ceiling (Linux's tcp_probe_timer, tcp_probe0_when).
    /// A receiver may keep its window closed as long as it answers (RFC 1122 4.2.2.17 says
    /// the sender MUST let it): only tcp_retries2 probes in a row unanswered, or with
    /// TCP_USER_TIMEOUT that long since the first of them, end the connection (ETIMEDOUT).
    mutating func windowProbeTimeout(now: Instant) {
        guard sendWindow == 0, flight == 0, dataEnd > sendNext || finQueued else { return }
        let userTimeout = configuration.userTimeout.nanoseconds
        let gaveUp = if userTimeout > 0, let since = windowProbesSince { (now - since).nanoseconds >= userTimeout }
                     else { windowProbesUnanswered >= configuration.maximumRetransmissions }
        guard !gaveUp else { fail(.timedOut, now: now); return }
        if windowProbesSince == nil { windowProbesSince = now }
        windowProbesUnanswered += 1
        bareProbeDue = true
        rtt.backOff()
        persistDeadline = now + rtt.timeout
    }

    /// Any segment from the peer proves it alive: the idle time starts again.
    mutating func peerWasHeard(now: Instant) {
        keepAliveProbesSent = 0
        keepAliveDeadline = configuration.keepAlive && state.isSynchronized ? now + configuration.keepAliveIdle : nil
    }

    /// RFC 6298 5.4-5.7 and RFC 5681 3.1: resend from SND.UNA, back off, shrink the window.
    /// TCP_USER_TIMEOUT, when set, replaces the count of timeouts: the connection gives up
    /// once its oldest unacknowledged data has waited that long.
    mutating func retransmissionTimeout(now: Instant) {
        retransmissions += 1
        timeouts &+= 1
        noteStall(now: now)
        let limit = switch state {
            case .synSent: configuration.maximumSYNRetransmissions
            case .synReceived: configuration.maximumSYNACKRetransmissions
            default: configuration.maximumRetransmissions
        }
        let gaveUp = configuration.userTimeout.nanoseconds > 0 ? now - stalledSince! >= configuration.userTimeout
                                                               : retransmissions > limit
        guard !gaveUp else {
            if state == .synReceived { enter(.closed, now: now) } else { fail(.timedOut, now: now) }
            return
        }
        rtt.backOff()
        timedSegment = nil
        if state == .synSent || state == .synReceived {
            sendNext = initialSendSequence
            return
        }
        congestion.retransmissionTimeout(flight: flight, now: now)
        deliveryRate.forgetSent()
        recoveryPoint = nil
        windowBeforeRecovery = nil
        retransmitAt = nil
        duplicateAcks = 0
        sendNext = sendUnacknowledged // go back: the output resends from here
    }
}
