import NetMPWire

/// SEGMENT ARRIVES (RFC 9293 3.10.7): `handle` dispatches on state; the synchronized states
/// share the numbered steps, each a small function below named after its RFC step.
extension Connection {
    public mutating func handle(_ segment: TCPSegmentHeader, payloadLength: Int, now: Instant) -> InputResult {
        var result = InputResult()
        switch state {
        case .closed:
            result.reset = Connection.resetFor(segment, payloadLength: payloadLength)
        case .synSent:
            handleInSynSent(segment, now: now, result: &result)
        default:
            handleSynchronized(segment, payloadLength: payloadLength, now: now, result: &result)
        }
        return result
    }

    /// The reset RFC 9293 3.10.7.1 sends in reply to `segment` from a state that has no
    /// connection for it (CLOSED, or LISTEN receiving an ACK); nil for a RST.
    public static func resetFor(_ segment: TCPSegmentHeader, payloadLength: Int) -> TCPSegmentHeader? {
        guard !segment.flags.contains(.rst) else { return nil }
        if segment.flags.contains(.ack) {
            return TCPSegmentHeader(sourcePort: segment.destinationPort, destinationPort: segment.sourcePort,
                                    sequenceNumber: segment.acknowledgmentNumber, acknowledgmentNumber: 0, flags: .rst, window: 0)
        }
        let length = payloadLength + (segment.flags.contains(.syn) ? 1 : 0) + (segment.flags.contains(.fin) ? 1 : 0)
        return TCPSegmentHeader(sourcePort: segment.destinationPort, destinationPort: segment.sourcePort, sequenceNumber: 0,
                                acknowledgmentNumber: segment.sequenceNumber &+ UInt32(truncatingIfNeeded: length),
                                flags: [.rst, .ack], window: 0)
    }

    /// RFC 9293 3.10.7.3, SYN-SENT.
    mutating func handleInSynSent(_ segment: TCPSegmentHeader, now: Instant, result: inout InputResult) {
        let ack = SequenceNumber(segment.acknowledgmentNumber)
        let flags = segment.flags
        // First: an ACK must acknowledge our SYN and nothing beyond it.
        if flags.contains(.ack) && (ack <= initialSendSequence || sendMaximum < ack) {
            if !flags.contains(.rst) {
                result.reset = Connection.resetFor(segment, payloadLength: 0)
                // Most often the peer still holds an earlier connection of this 4-tuple in
                // TIME-WAIT and answered our SYN for it; our RST ends that (Linux's default,
                // RFC 1337 aside), so the SYN goes again right behind it, once, instead of
                // after a second's timeout.
                if !synResentAfterStaleAck {
                    synResentAfterStaleAck = true
                    sendNext = initialSendSequence
                }
            }
            result.drop = .unacceptableAck
            return
        }
        // Second: a RST with an acceptable ACK refuses the connection.
        if flags.contains(.rst) {
            if flags.contains(.ack) { fail(.connectionRefused, now: now) } else { result.drop = .resetIgnored }
            return
        }
        // Fourth: the SYN.
        guard flags.contains(.syn) else { result.drop = .notInSynSent; return }
        synchronize(with: segment)
        if flags.contains(.ack) {
            acknowledge(upTo: ack, segment: segment, now: now, result: &result)
            sendWindowUpdateAcknowledgment = ack // the SYN's window itself is never scaled (RFC 7323 2.2)
            enter(.established, now: now)
            events.insert([.connected, .writable])
            ackNow = true
            if configuration.keepAlive { peerWasHeard(now: now) }
            if finQueued { enter(.finWait1, now: now) }
        } else {
            // Simultaneous open: answer with our SYN again, now carrying an ACK.
            enter(.synReceived, now: now)
            sendNext = initialSendSequence
        }
    }

    /// The synchronized states and SYN-RECEIVED: RFC 9293 3.10.7.4, steps one to eight.
    mutating func handleSynchronized(_ segment: TCPSegmentHeader, payloadLength: Int, now: Instant, result: inout InputResult) {
        guard passesPAWS(segment) else { ackNow = true; result.drop = .paws; return }
        guard var accepted = checkSequence(segment, payloadLength: payloadLength) else {
            if !segment.flags.contains(.rst) { ackNow = true } // step one: answer with an ACK
            result.drop = .outOfWindow
            return
        }
        if segment.flags.contains(.rst) { checkReset(segment, now: now, result: &result); return }
        if segment.flags.contains(.syn) { challengeAck(now: now, result: &result); return } // step four: RFC 5961 4
        guard segment.flags.contains(.ack) else { result.drop = .noAck; return }             // step five
        if let ts = segment.options.timestamp, !(receiveNext < SequenceNumber(segment.sequenceNumber)) {
            timestampRecent = ts.value // RFC 7323 4.3 (3)
        }
        if timestampsEnabled, payloadLength > 0, let echo = segment.options.timestamp?.echoReply, echo != 0 {
            // The receive side's RTT, for window auto-tuning (Linux's tcp_rcv_rtt_measure_ts).
            let sample = UInt64(timestampNow(now) &- echo) * 1_000_000
            if sample < 60_000_000_000 { receiverRTT = receiverRTT.map { ($0 * 7 + sample) / 8 } ?? sample }
        }
        guard processAck(segment, payloadLength: payloadLength, now: now, result: &result) else { return }
        if state == .closed { return }
        if configuration.keepAlive { peerWasHeard(now: now) }
        // Data wholly outside the window (a zero-window probe, an old duplicate) still asks
        // for an ACK: that ACK carries the window the sender is waiting to learn.
        if payloadLength > 0 && accepted.start == accepted.end { ackNow = true }
        if segment.flags.contains(.urg) && state.acceptsData { noteUrgent(segment) } // step six
        let ackOwed = ackNow
        let filledHole = processText(&accepted, now: now, result: &result)
        processFin(accepted, now: now, ackAtOnce: ackOwed || filledHole)
    }

    /// The part of a segment that lies in the receive window.
    struct AcceptedSpan {
        var start: SequenceNumber     // first data byte to keep
        var end: SequenceNumber       // just past the last kept byte
        var payloadStart: Int         // offset of `start` in the payload
        var fin: Bool                 // the FIN survived trimming
        var finSequence: SequenceNumber
        var push = false              // PSH, and the segment's end survived trimming
    }

    /// Step one: is the segment acceptable (RFC 9293's table of four cases), and which part
    /// of it lies in the window. Nil when it must be dropped.
    func checkSequence(_ segment: TCPSegmentHeader, payloadLength: Int) -> AcceptedSpan? {
        let seq = SequenceNumber(segment.sequenceNumber)
        let synOffset = segment.flags.contains(.syn) ? 1 : 0
        let length = payloadLength + synOffset + (segment.flags.contains(.fin) ? 1 : 0)
        let window = max(receiveWindow, advertisedRightEdge - receiveNext)
        let windowEnd = receiveNext + window
        let acceptable: Bool
        switch (length == 0, window == 0) {
        case (true, true): acceptable = seq == receiveNext
        case (true, false): acceptable = receiveNext <= seq && seq < windowEnd
        case (false, true): acceptable = false
        case (false, false):
            let last = seq + (length - 1)
            acceptable = (receiveNext <= seq && seq < windowEnd) || (receiveNext <= last && last < windowEnd)
        }
        // A zero-window probe or a bare ACK at RCV.NXT must still be processed for its ACK.
        guard acceptable || (window == 0 && seq == receiveNext) else { return nil }
        let dataStart = seq + synOffset
        let dataEnd = dataStart + payloadLength
        let start = SequenceNumber.latest(dataStart, receiveNext)
        var end = dataEnd
        if windowEnd < end { end = windowEnd }
        if end < start { end = start }
        let finFits = segment.flags.contains(.fin) && end == dataEnd && !(windowEnd < dataEnd)
        return AcceptedSpan(start: start, end: end, payloadStart: start - dataStart, fin: finFits, finSequence: dataEnd,
                            push: segment.flags.contains(.psh) && end == dataEnd)
    }

    /// RFC 7323 5.3: a segment whose timestamp is older than TS.Recent is a duplicate from a
    /// previous incarnation of the sequence space.
    func passesPAWS(_ segment: TCPSegmentHeader) -> Bool {
        guard timestampsEnabled, !segment.flags.contains(.rst), let ts = segment.options.timestamp else { return true }
        return Int32(bitPattern: ts.value &- timestampRecent) >= 0
    }

    /// Step two with RFC 5961 3.2: only a RST at exactly RCV.NXT resets; one elsewhere in
    /// the window gets a challenge ACK, so a blind attacker must guess the exact number.
    mutating func checkReset(_ segment: TCPSegmentHeader, now: Instant, result: inout InputResult) {
        guard SequenceNumber(segment.sequenceNumber) == receiveNext else { challengeAck(now: now, result: &result); return }
        if state == .synReceived {
            enter(.closed, now: now) // a passive open goes back to LISTEN: the listener drops it
            return
        }
        if state == .timeWait || state == .lastAck || state == .closing { enter(.closed, now: now); return }
        fail(.connectionReset, now: now)
    }

    /// RFC 5961 3.2 and 4.2: answer a suspicious RST or SYN with an ACK, at most
    /// `challengeAckLimit` a second (section 7).
    mutating func challengeAck(now: Instant, result: inout InputResult) {
        if Interval.seconds(1) <= now - challengeWindowStart {
            challengeWindowStart = now
            challengeAcksSent = 0
        }
        guard challengeAcksSent < Self.challengeAckLimit else { result.drop = .challengeAckLimited; return }
        challengeAcksSent += 1
        ackNow = true
        result.drop = .challengeAck
    }

    /// Step five: the ACK field. Returns false when the segment must be dropped.
    mutating func processAck(_ segment: TCPSegmentHeader, payloadLength: Int, now: Instant, result: inout InputResult) -> Bool {
        let ack = SequenceNumber(segment.acknowledgmentNumber)
        if state == .synReceived {
            guard sendUnacknowledged < ack, ack <= sendMaximum else {
                result.reset = Connection.resetFor(segment, payloadLength: payloadLength)
                result.drop = .unacceptableAck
                return false
            }
            enter(finQueued ? .finWait1 : .established, now: now)
            events.insert([.connected, .writable])
            updateSendWindow(segment, force: true)
        }
        // RFC 5961 5.2: an ACK for data never sent, or older than the largest window, is
        // answered and dropped.
        if sendMaximum < ack || ack < sendUnacknowledged - max(maximumSendWindow, 1) {
            ackNow = true
            result.drop = .unacceptableAck
            return false
        }
        // An ACK that is not old answers the zero-window probes (Linux resets
        // icsk_probes_out there), whatever window it carries.
        if sendUnacknowledged <= ack { windowProbesUnanswered = 0; windowProbesSince = nil }
        let (acknowledgedBefore, sackedBefore) = (sendUnacknowledged, scoreboard.sackedBytes)
        if sackEnabled && segment.options.sackCount > 0 {
            scoreboard.record(segment.options, unacknowledged: SequenceNumber.latest(ack, sendUnacknowledged), maximum: sendMaximum)
        }
        if sendUnacknowledged < ack {
            acknowledge(upTo: ack, segment: segment, now: now, result: &result)
        } else if ack == sendUnacknowledged {
            countDuplicate(segment, payloadLength: payloadLength, now: now)
        }
        updateSendWindow(segment, force: false)
        detectLostRetransmission()
        // RFC 6675 5: with SACK, loss is also declared once enough data above SND.UNA is SACKed.
        if sackEnabled && recoveryPoint == nil && sendUnacknowledged < sendMaximum
            && scoreboard.isLost(sendUnacknowledged, mss: sendMSS, threshold: reorderingThreshold) {
            enterRecovery(now: now)
        }
        if congestion.wantsRateSamples {
            // Delivered = cumulatively ACKed + SACKed: SACKed bytes the ACK now covers are
            // in both differences and cancel out.
            let newly = (sendUnacknowledged - acknowledgedBefore) + scoreboard.sackedBytes - sackedBefore
            let highest = SequenceNumber.latest(sendUnacknowledged, scoreboard.highestSacked ?? sendUnacknowledged)
            if let sample = deliveryRate.acknowledged(newly: newly, highest: highest, now: now) {
                congestion.rateSampled(sample, flight: bytesInFlight, now: now)
            }
        }
        advanceCloseStates(now: now)
        return true
    }

    /// In SACK recovery: once the receiver SACKs data first sent after our retransmissions
    /// while SND.UNA's hole is still open, that retransmission was lost; resend the holes
    /// from SND.UNA rather than wait for the timeout.
    mutating func detectLostRetransmission() {
        guard sackEnabled, recoveryPoint != nil, let mark = retransmissionRoundMark,
              let highest = scoreboard.highestSacked, mark < highest,
              sendUnacknowledged < highestRetransmitted else { return }
        retransmissionsLost()
    }

    /// The retransmissions from SND.UNA on were lost: loss recovery resends the holes from
    /// there, and a new round of retransmissions begins.
    mutating func retransmissionsLost() {
        lostRetransmissions &+= 1
        highestRetransmitted = sendUnacknowledged
        retransmissionRoundMark = nil
    }

    /// Fast retransmit and the start of loss recovery (RFC 6582 3.2 step 2, RFC 6675 5 step 4).
    mutating func enterRecovery(now: Instant) {
        recoveries &+= 1
        probeDeadline = nil
        recoveryPoint = sendMaximum
        windowBeforeRecovery = congestion.beforeReduction
        recoveryRetransmitTimestamp = nil
        congestion.lossDetected(flight: sendMaximum - sendUnacknowledged - scoreboard.sackedBytes, now: now)
        retransmitAt = sackEnabled ? nil : sendUnacknowledged
        highestRetransmitted = sendUnacknowledged
        retransmissionRoundMark = nil
        timedSegment = nil
    }

    /// SND.UNA moves to `ack`: free the data, sample the RTT, grow the window, restart or
    /// stop the retransmission timer (RFC 6298 5.2, 5.3), and steer loss recovery (RFC 6582).
    mutating func acknowledge(upTo ack: SequenceNumber, segment: TCPSegmentHeader, now: Instant, result: inout InputResult) {
        let previous = sendUnacknowledged
        let dataFrom = SequenceNumber.latest(previous, sendBufferStart)
        let dataTo = min(ack, dataEnd)
        let freed = max(0, dataTo - dataFrom)
        sendUnacknowledged = ack
        if sendNext < ack { sendNext = ack }
        if let up = sendUrgentUp, !(ack < up) { sendUrgentUp = nil } // urgent mode ends
        sendBufferStart += freed
        sendQueued -= freed
        result.acknowledged += freed
        bytesAcknowledged &+= UInt64(freed)
        retransmissions = 0
        stalledSince = nil
        // RTT: from the echoed timestamp, else from the one timed segment (Karn's rule).
        if timestampsEnabled, let ts = segment.options.timestamp, ts.echoReply != 0 {
            let elapsed = timestampNow(now) &- ts.echoReply
            if elapsed < 60_000 { rtt.sample(.milliseconds(UInt64(elapsed))) }
        } else if let timed = timedSegment, !(ack < timed.end) {
            rtt.sample(now - timed.sent)
            timedSegment = nil
        }
        scoreboard.acknowledge(upTo: ack)
        if highestRetransmitted < ack { highestRetransmitted = ack }
        if recoveryPoint != nil, let sent = recoveryRetransmitTimestamp, timestampsEnabled,
           let echo = segment.options.timestamp?.echoReply, echo != 0, Int32(bitPattern: echo &- sent) < 0 {
            undoSpuriousRecovery()
        }
        if let recover = recoveryPoint {
            if recover <= ack {
                recoveryPoint = nil // full ACK: recovery is over (RFC 6582 3.2 step 3)
                congestion.recoveryEnded()
            } else if !sackEnabled {
                retransmitAt = ack // partial ACK: the next hole is lost too (step 4); SACK finds holes itself
            }
        } else if freed > 0 {
            congestion.acknowledged(freed, now: now, smoothedRTT: rtt.smoothed.map { Interval(nanoseconds: $0) })
        }
        duplicateAcks = 0
        retransmitDeadline = sendUnacknowledged == sendMaximum ? nil : retransmissionDeadline(from: now)
        probeSent = false
        armProbe(now: now)
        if freed > 0 { events.insert(.writable) }
    }

    /// RFC 5681 2 "duplicate ACK": nothing new, no data, same window, data outstanding.
    /// The third starts fast retransmit and NewReno's recovery (RFC 6582 3.2 step 2).
    mutating func countDuplicate(_ segment: TCPSegmentHeader, payloadLength: Int, now: Instant) {
        guard payloadLength == 0, !segment.flags.contains(.syn), !segment.flags.contains(.fin),
              Int(segment.window) << sendWindowShift == sendWindow, sendUnacknowledged < sendMaximum else {
            duplicateAcks = 0
            return
        }
        duplicateAcks += 1
        guard duplicateAcks == reorderingThreshold, recoveryPoint == nil else { return }
        enterRecovery(now: now)
        if sackEnabled { retransmitAt = sendUnacknowledged } // the first hole goes at once, SACKed or not
    }

    /// Eifel (RFC 3522): the ACK that moved SND.UNA echoes a timestamp older than our first
    /// retransmission, so the original segment arrived: it was reordered, not lost. Restore
    /// the window (RFC 4015) and tolerate deeper reordering from now on.
    mutating func undoSpuriousRecovery() {
        if let before = windowBeforeRecovery { congestion.undoReduction(before) }
        windowBeforeRecovery = nil
        recoveryRetransmitTimestamp = nil
        recoveryPoint = nil
        retransmitAt = nil
        spuriousRecoveries &+= 1
        reorderingThreshold = min(max(reorderingThreshold * 2, 6), 64)
    }

    /// RFC 9293 3.10.7.4 step five: update SND.WND from the newest segment only.
    mutating func updateSendWindow(_ segment: TCPSegmentHeader, force: Bool) {
        let seq = SequenceNumber(segment.sequenceNumber)
        let ack = SequenceNumber(segment.acknowledgmentNumber)
        guard force || sendWindowUpdateSequence < seq || (sendWindowUpdateSequence == seq && sendWindowUpdateAcknowledgment <= ack) else { return }
        let opened = sendWindow == 0
        sendWindow = Int(segment.window) << sendWindowShift
        maximumSendWindow = max(maximumSendWindow, sendWindow)
        sendWindowUpdateSequence = seq
        sendWindowUpdateAcknowledgment = ack
        if sendWindow > 0 { persistDeadline = nil; if opened { events.insert(.writable) } }
    }

    /// Step five's state changes once our FIN is acknowledged.
    mutating func advanceCloseStates(now: Instant) {
        guard finAcknowledged else { return }
        switch state {
        case .finWait1:
            enter(.finWait2, now: now)
            if orphaned { waitInFinWait2(now: now) }
        case .closing: enter(.timeWait, now: now)
        case .lastAck: enter(.closed, now: now)
        default: break
        }
    }

    /// Step six, as Linux's tcp_check_urg: the urgent pointer names the byte before it (the
    /// BSD reading RFC 6093 recommends). A pointer behind RCV.NXT (data already received)
    /// or not past the one already known changes nothing.
    mutating func noteUrgent(_ segment: TCPSegmentHeader) {
        let pointer = Int(segment.urgentPointer)
        let byte = SequenceNumber(segment.sequenceNumber) + (pointer > 0 ? pointer - 1 : 0)
        guard !(byte < receiveNext) else { return }
        if let known = urgentSequence, !(known < byte) { return }
        urgentSequence = byte
        urgentCount &+= 1
        events.insert(.readable)
    }

    /// Step seven: segment text. In-order data becomes readable at once, with any held
    /// data it joins; out-of-order data is stored in place and SACKed (one copy either way).
    /// True when the data filled a hole (the ACK then goes at once).
    @discardableResult
    mutating func processText(_ span: inout AcceptedSpan, now: Instant, result: inout InputResult) -> Bool {
        guard span.start < span.end else {
            if state == .timeWait && span.fin { closeDeadline = now + configuration.timeWaitDuration; ackNow = true }
            return false
        }
        guard state.acceptsData else { return false }
        let count = span.end - span.start
        let offset = span.start - receiveNext
        if offset > 0 && !outOfOrder.insert(span.start, span.end) {
            span.fin = false // no room to remember it: drop, the peer sends it again
            result.drop = .scoreboardFull
            return false
        }
        result.store = (span.payloadStart..<(span.payloadStart + count), offset)
        bytesReceived &+= UInt64(count)
        if offset > 0 {
            ackNow = true // RFC 5681 4.2: out-of-order data is acknowledged at once (with SACK)
            if span.fin { pendingFin = span.finSequence; span.fin = false }
            return false
        }
        let newNext = outOfOrder.advance(from: span.end)
        let filledHole = span.end < newNext
        result.readable = newNext - receiveNext
        unread += result.readable
        receiveNext = newNext
        events.insert(.readable)
        if let fin = pendingFin, fin == receiveNext { span.fin = true; span.finSequence = fin; pendingFin = nil }
        // A coalesced segment (GRO behind the TAP) counts as the segments it carries.
        let mss = configuration.maximumSegmentSize
        scheduleAck(now: now, immediately: filledHole, segments: max(1, (count + mss - 1) / mss),
                    endsMessage: span.push && count <= mss && bytesReceived == UInt64(count))
        return filledHole
    }

    /// RFC 1122 4.2.3.2 and RFC 5681 4.2: acknowledge every second full segment, and any
    /// segment within the delayed-ACK timeout; at once when a hole fills or at the start.
    /// The connection's first data, when one segment that ends a message (a request, most
    /// often), waits `answerAckHold` for the application's answer to carry its ACK; later
    /// ones get the quick ACKs, so a Nagle sender that gets no answer is held back once.
    mutating func scheduleAck(now: Instant, immediately: Bool, segments: Int = 1, endsMessage: Bool = false) {
        unacknowledgedSegments += segments
        if immediately || unacknowledgedSegments >= 2 || (quickAcks > 0 && !endsMessage) {
            ackNow = true
            if quickAcks > 0 { quickAcks -= 1 }
        } else if quickAcks > 0 {
            let hold = now + configuration.answerAckHold
            if delayedAckDeadline.map({ hold < $0 }) ?? true { delayedAckDeadline = hold }
        } else if delayedAckDeadline == nil {
            delayedAckDeadline = now + configuration.delayedAckTimeout
        }
    }

    /// Step eight: the FIN, once every byte before it has arrived. A FIN that ends an
    /// established connection is acknowledged as Linux's tcp_fin does: the connection turns
    /// interactive ("pingpong"), so the ACK waits for the delayed-ACK timer and most often
    /// rides on the application's own FIN or last response microseconds later (one frame
    /// where an immediate ACK made two). It still goes at once when an ACK was owed anyway,
    /// a hole just filled, or more than one segment is unacknowledged. In the other states
    /// (a simultaneous close, FIN-WAIT-2) the ACK goes at once.
    mutating func processFin(_ span: AcceptedSpan, now: Instant, ackAtOnce: Bool = true) {
        guard span.fin, span.finSequence == receiveNext, state != .closed else { return }
        receiveNext += 1
        receivedFin = true
        events.insert([.peerClosed, .readable])
        if (state == .synReceived || state == .established) && !ackAtOnce && unacknowledgedSegments < 2 {
            quickAcks = 0
            ackNow = false
            if delayedAckDeadline == nil { delayedAckDeadline = now + configuration.delayedAckTimeout }
        } else {
            ackNow = true
        }
        switch state {
        case .synReceived, .established: enter(.closeWait, now: now)
        case .finWait1: enter(finAcknowledged ? .timeWait : .closing, now: now)
        case .finWait2: enter(.timeWait, now: now)
        case .timeWait: closeDeadline = now + configuration.timeWaitDuration
        default: break
        }
    }

    /// Our timestamp clock: milliseconds, offset per connection (RFC 7323 5.4).
    func timestampNow(_ now: Instant) -> UInt32 {
        UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) &+ timestampOffset
    }
}
