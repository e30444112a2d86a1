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
            forceProbe = true
            rtt.backOff()
        }
        if let deadline = probeDeadline, deadline <= now {
            probeDeadline = nil
            if recoveryPoint != nil {
                retransmissionUnanswered()
            } else if flight > 0 {
                probeDue = true
                probeSent = true
                tailLossProbes &+= 1
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
    }

    /// RFC 8985 7.2: PTO = 2 * SRTT (at least 10 ms), and never later than the RTO.
    /// In SACK loss recovery the same timer watches the retransmissions instead: one that
    /// two round trips (10 ms at least) bring no answer to was lost too.
    mutating func armProbe(now: Instant) {
        let watching = recoveryPoint != nil ? sackEnabled && sendUnacknowledged < highestRetransmitted
                                            : !probeSent && flight > 0
        guard watching, let srtt = rtt.smoothed, state.isSynchronized else {
            probeDeadline = nil
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
    mutating func keepAliveTimeout(now: Instant) {
        guard configuration.keepAlive, state == .established || state == .closeWait else { keepAliveDeadline = nil; return }
        if keepAliveProbesSent >= configuration.keepAliveProbes {
            fail(.timedOut, now: now)
            return
        }
        keepAliveProbesSent += 1
        keepAliveProbeDue = true
        keepAliveDeadline = now + configuration.keepAliveInterval
    }

    /// Any segment from the peer proves it alive: the idle time starts again.
    mutating func peerWasHeard(now: Instant) {
        keepAliveProbesSent = 0
        keepAliveDeadline = configuration.keepAlive && state.isSynchronized ? now + configuration.keepAliveIdle : nil
    }

    /// RFC 6298 5.4-5.7 and RFC 5681 3.1: resend from SND.UNA, back off, shrink the window.
    mutating func retransmissionTimeout(now: Instant) {
        retransmissions += 1
        timeouts &+= 1
        let limit = state == .synSent || state == .synReceived ? configuration.maximumSYNRetransmissions
                                                                 : configuration.maximumRetransmissions
        guard retransmissions <= limit else {
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
