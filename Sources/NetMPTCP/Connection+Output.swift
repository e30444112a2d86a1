import NetMPWire

/// What to send (RFC 9293 3.8.6 with RFC 5681 and RFC 1122 4.2.3.4): a pure decision the
/// runtime asks for after every input, user call and timer, until it returns nil.
extension Connection {
    public mutating func nextSegment(now: Instant) -> OutgoingSegment? {
        if resetDue {
            resetDue = false
            return abort(now: now).map { OutgoingSegment(header: $0, payloadOffset: 0, payloadLength: 0, segmentSize: 0) }
        }
        switch state {
        case .closed: return nil
        case .synSent:
            guard sendNext == initialSendSequence else { return nil }
            return emit(synSegment(ack: false, now: now), length: 1, now: now)
        case .synReceived:
            guard sendNext == initialSendSequence || ackNow else { return nil }
            return emit(synSegment(ack: true, now: now), length: 1, now: now)
        default:
            return retransmission(now: now) ?? sackRetransmission(now: now) ?? tailLossProbe(now: now) ?? newData(now: now)
                ?? finOnly(now: now) ?? bareProbe(now: now) ?? acknowledgment(now: now)
        }
    }

    /// Our SYN or SYN-ACK with the options this stack speaks; on a SYN-ACK only those the
    /// peer offered (RFC 7323 1.3, RFC 2018 2).
    func synSegment(ack: Bool, now: Instant) -> TCPSegmentHeader {
        var options = TCPOptions()
        options.maximumSegmentSize = UInt16(configuration.maximumSegmentSize)
        if !ack || peerOfferedWindowScale { options.windowScale = UInt8(receiveWindowShift) }
        if ack ? sackEnabled : configuration.selectiveAcknowledgments { options.sackPermitted = true }
        if ack ? timestampsEnabled : configuration.timestamps {
            options.timestamp = (timestampNow(now), ack ? timestampRecent : 0)
        }
        return TCPSegmentHeader(sourcePort: tuple.local.port, destinationPort: tuple.remote.port,
                                sequenceNumber: initialSendSequence.raw, acknowledgmentNumber: ack ? receiveNext.raw : 0,
                                flags: ack ? [.syn, .ack] : .syn, window: UInt16(min(configuration.receiveBufferSize, 65_535)),
                                options: options)
    }

    /// Fast retransmit or a NewReno partial ACK asked for one segment at `retransmitAt`.
    mutating func retransmission(now: Instant) -> OutgoingSegment? {
        guard let at = retransmitAt else { return nil }
        retransmitAt = nil
        guard sendUnacknowledged <= at, at < sendMaximum else { return nil }
        let length = min(maximumPayload, max(0, dataEnd - at))
        noteRetransmission(upTo: at + length, now: now)
        if length == 0 { return finSegment(at: at, now: now) }
        return dataSegment(at: at, length: length, fin: false, now: now)
    }

    /// RFC 6675 NextSeg rule 1: in SACK loss recovery, resend the first lost hole above
    /// HighRxt while the pipe leaves room in the congestion window.
    mutating func sackRetransmission(now: Instant) -> OutgoingSegment? {
        guard sackEnabled, recoveryPoint != nil, pipe < congestion.window else { return nil }
        let from = SequenceNumber.latest(highestRetransmitted, sendUnacknowledged)
        guard let (start, holeLength) = scoreboard.nextLostHole(from: from, mss: sendMSS, threshold: reorderingThreshold) else { return nil }
        // A hole of several segments goes as one super-segment, as far as the pipe allows.
        let room = max(maximumPayload, (congestion.window - pipe) / maximumPayload * maximumPayload)
        let length = min(burstLimit, room, holeLength, max(0, dataEnd - start))
        guard length > 0 else { return nil }
        noteRetransmission(upTo: start + length, now: now, segments: segmentCount(length))
        return dataSegment(at: start, length: length, fin: false, now: now)
    }

    /// RFC 8985 7.3: the probe is a new segment if one may go, else the flight's last segment
    /// again. Through a link that segments, the probe is DupThresh segments in one
    /// super-segment: their SACK alone shows the hole before them as lost (RFC 6675 IsLost),
    /// where a single SACKed segment would leave it to the retransmission timeout (RACK,
    /// which this stack does not run, would find it by time).
    mutating func tailLossProbe(now: Instant) -> OutgoingSegment? {
        guard probeDue else { return nil }
        probeDue = false
        let probeLength = min(burstLimit, maximumPayload * reorderingThreshold)
        let unsent = dataEnd - sendNext
        if unsent > 0 && sendNext == sendMaximum && sendWindow - flight > 0 {
            let length = min(probeLength, unsent, sendWindow - flight)
            return dataSegment(at: sendNext, length: length, fin: finQueued && length == unsent, now: now)
        }
        let end = min(sendMaximum, dataEnd)
        let start = SequenceNumber.latest(sendUnacknowledged, end - probeLength)
        segmentsRetransmitted &+= 1
        if start < end { return dataSegment(at: start, length: end - start, fin: false, now: now) }
        if finSent && !finAcknowledged { return finSegment(at: dataEnd, now: now) }
        return nil
    }

    /// Bookkeeping for a resent segment: HighRxt, and in loss recovery the marks that detect a
    /// lost retransmission (by order) and a spurious recovery (by timestamp).
    mutating func noteRetransmission(upTo end: SequenceNumber, now: Instant, segments: Int = 1) {
        segmentsRetransmitted &+= UInt64(segments)
        if highestRetransmitted < end { highestRetransmitted = end }
        guard recoveryPoint != nil else { return }
        if retransmissionRoundMark == nil { retransmissionRoundMark = sendMaximum }
        if recoveryRetransmitTimestamp == nil { recoveryRetransmitTimestamp = timestampNow(now) }
        armProbe(now: now) // watch this retransmission
    }

    /// RFC 6675 SetPipe: bytes presumed in the network. Outside SACK recovery, the flight.
    var pipe: Int {
        guard sackEnabled, recoveryPoint != nil else { return flight }
        let lostNotResent = scoreboard.holeBytes(from: SequenceNumber.latest(highestRetransmitted, sendUnacknowledged))
        return max(0, (sendMaximum - sendUnacknowledged) - scoreboard.sackedBytes - lostNotResent)
    }

    /// Bytes in the network for the rate model: the pipe in SACK recovery, else the flight
    /// less what the receiver SACKed.
    var bytesInFlight: Int { sackEnabled && recoveryPoint != nil ? pipe : max(0, flight - scoreboard.sackedBytes) }

    /// New data (or data again after a timeout moved SND.NXT back), within both windows.
    mutating func newData(now: Instant) -> OutgoingSegment? {
        // After a timeout, skip what the receiver already SACKed (RFC 6675 5.1).
        while sendNext < sendMaximum, let end = scoreboard.sackedRangeEnd(containing: sendNext) { sendNext = end }
        let unsent = dataEnd - sendNext
        // The window has room the application did not fill: rate samples until this flight
        // is delivered show the application's pace, not the path's (Linux's tcp_rate_check_app_limited).
        if unsent < maximumPayload && congestion.wantsRateSamples && recoveryPoint == nil && bytesInFlight < congestion.window {
            deliveryRate.applicationLimited(flight: bytesInFlight)
        }
        guard unsent > 0 else { return nil }
        let inflation = recoveryPoint != nil && !sackEnabled ? duplicateAcks * sendMSS : 0 // RFC 6582 3.2 step 3
        let window = congestion.window + inflation
        let inFlight = sackEnabled && recoveryPoint != nil ? pipe + (sendNext - sendMaximum) : flight
        // The congestion window counts the pipe; the receiver's window counts from SND.UNA.
        let usable = min(window - inFlight, sendWindow - flight)
        guard usable > 0 else { armPersist(now: now); return nil }
        var length = min(burstLimit, unsent, usable)
        // Nagle (RFC 896, RFC 1122 4.2.3.4): a small segment waits while data is in flight,
        // unless it is the last data before our FIN or TCP_NODELAY is set.
        let nagleHolds = flight > 0 && !configuration.noDelay && !finQueued
        // TCP_CORK: only full segments until uncorked, whatever is in flight; but a partial
        // segment held with nothing in flight goes when the probe timer fires.
        let corkHolds = configuration.cork && !finQueued && !corkCeilingPassed
        if length < maximumPayload && (nagleHolds || corkHolds) {
            if corkHolds && flight == 0 { armCorkCeiling(now: now) }
            return nil
        }
        // A super-segment carries a short last segment only where that segment could go
        // alone (the same rules, as Linux's tcp_mss_split_point), and only at the end of
        // the data: a window-limited one stops at a whole segment.
        if length > maximumPayload && length % maximumPayload != 0 && (length < unsent || nagleHolds || corkHolds) {
            length -= length % maximumPayload
        }
        if sendNext < sendMaximum { segmentsRetransmitted &+= UInt64(segmentCount(length)) }
        corkCeilingPassed = false
        let fin = finQueued && length == unsent
        return dataSegment(at: sendNext, length: length, fin: fin, now: now)
    }

    /// Data bytes one segment carries: the MSS less this segment's options (RFC 6691: the
    /// MSS counts the IP and TCP headers without options, so options come out of the data).
    var maximumPayload: Int {
        var options = timestampsEnabled ? 12 : 0
        if sackEnabled && !outOfOrder.isEmpty {
            options += 4 + 8 * min(outOfOrder.ranges.count, timestampsEnabled ? 3 : 4)
        }
        return sendMSS - options
    }

    /// The most payload one segment handed to the link carries: one MSS, or with
    /// segmentation offload as many whole MSS as fit the configured limit.
    var burstLimit: Int {
        let unit = maximumPayload
        // The link would copy one urgent pointer into every piece: urgent data goes one
        // segment at a time.
        if sendUrgentUp != nil { return unit }
        return max(unit, configuration.segmentationLimit / unit * unit)
    }

    /// The wire segments `length` payload bytes make.
    func segmentCount(_ length: Int) -> Int { max(1, (length + maximumPayload - 1) / maximumPayload) }

    /// A FIN with no data, once every queued byte is sent.
    mutating func finOnly(now: Instant) -> OutgoingSegment? {
        guard finQueued, sendNext == dataEnd, state != .synReceived else { return nil }
        return finSegment(at: sendNext, now: now)
    }

    /// A keepalive or zero-window probe: an ACK one byte below SND.UNA, which the peer must
    /// answer with an ACK carrying its window (RFC 1122 4.2.3.6; Linux's tcp_xmit_probe_skb
    /// sends both without data).
    mutating func bareProbe(now: Instant) -> OutgoingSegment? {
        guard bareProbeDue else { return nil }
        bareProbeDue = false
        return emit(header(sequence: sendUnacknowledged - 1, flags: .ack, now: now), length: 0, now: now)
    }

    /// A bare ACK when one is due, or a window update once the application made room by
    /// reading (RFC 1122 4.2.3.3: only when the window grows by an MSS or half the buffer).
    mutating func acknowledgment(now: Instant) -> OutgoingSegment? {
        let growth = (receiveNext + advertisableWindow) - advertisedRightEdge
        let worthIt = min(configuration.receiveBufferSize / 2, 2 * configuration.maximumSegmentSize)
        let windowUpdate = growth >= worthIt && consumedSinceAdvertised >= worthIt
        guard ackNow || windowUpdate, state != .timeWait || ackNow else { return nil }
        // SND.MAX, not SND.NXT: after a timeout SND.NXT lies behind what the peer holds, and a
        // bare ACK numbered there would be unacceptable to it (BSD's tcp_output does the same).
        return emit(header(sequence: sendMaximum, flags: .ack, now: now), length: 0, payloadOffset: 0, now: now)
    }

    mutating func dataSegment(at sequence: SequenceNumber, length: Int, fin: Bool, now: Instant) -> OutgoingSegment {
        var flags: TCPFlags = [.ack]
        if sequence + length == dataEnd { flags.insert(.psh) }
        if fin { flags.insert(.fin) }
        var header = header(sequence: sequence, flags: flags, now: now)
        // Before SND.UP: URG, the pointer relative to this segment (Linux's tcp_transmit_skb:
        // 0xFFFF when the urgent data lies further than the field reaches).
        if let up = sendUrgentUp, sequence < up {
            header.flags.insert(.urg)
            header.urgentPointer = UInt16(clamping: up - sequence)
        }
        return emit(header, length: length + (fin ? 1 : 0), payloadOffset: sequence - sendBufferStart, payloadLength: length, now: now)
    }

    mutating func finSegment(at sequence: SequenceNumber, now: Instant) -> OutgoingSegment {
        emit(header(sequence: sequence, flags: [.fin, .ack], now: now), length: 1, payloadOffset: 0, now: now)
    }

    /// A header for a synchronized-state segment: ACK, window, timestamps, SACK blocks.
    func header(sequence: SequenceNumber, flags: TCPFlags, now: Instant) -> TCPSegmentHeader {
        var options = TCPOptions()
        if timestampsEnabled { options.timestamp = (timestampNow(now), timestampRecent) }
        if sackEnabled && !outOfOrder.isEmpty {
            for block in outOfOrder.blocks(limit: timestampsEnabled ? 3 : 4) { options.appendSACK(block) }
        }
        let window = advertisableWindow >> receiveWindowShift
        return TCPSegmentHeader(sourcePort: tuple.local.port, destinationPort: tuple.remote.port,
                                sequenceNumber: sequence.raw, acknowledgmentNumber: receiveNext.raw,
                                flags: flags, window: UInt16(window), options: options)
    }

    /// Records a segment as sent: SND.NXT and SND.MAX, the timers, the ACK now carried.
    mutating func emit(_ header: TCPSegmentHeader, length: Int, payloadOffset: Int = 0, payloadLength: Int = 0,
                       now: Instant) -> OutgoingSegment {
        let sequence = SequenceNumber(header.sequenceNumber)
        if length > 0 {
            let end = sequence + length
            // The flight before this segment: an empty one starts a fresh sampling interval.
            if congestion.wantsRateSamples && sendMaximum < end { deliveryRate.sent(end: end, flight: bytesInFlight, now: now) }
            if sendNext < end { sendNext = end }
            // A flight of one segment waits longer for its probe: one growing past it, not.
            let wasOneSegment = sendMaximum > sendUnacknowledged && segmentCount(sendMaximum - sendUnacknowledged) == 1
            if sendMaximum < end {
                if timedSegment == nil && !timestampsEnabled && sequence == sendMaximum { timedSegment = (end, now) }
                sendMaximum = end
            }
            if retransmitDeadline == nil { retransmitDeadline = retransmissionDeadline(from: now) }
            if (probeDeadline == nil || wasOneSegment && segmentCount(flight) > 1) && !probeDue { armProbe(now: now) }
        }
        if header.flags.contains(.ack) {
            ackNow = false
            unacknowledgedSegments = 0
            delayedAckDeadline = nil
            consumedSinceAdvertised = 0
            // A SYN's window is never scaled (RFC 7323 2.2).
            let edge = receiveNext + (Int(header.window) << (header.flags.contains(.syn) ? 0 : receiveWindowShift))
            if advertisedRightEdge < edge { advertisedRightEdge = edge }
        }
        let unit = maximumPayload
        return OutgoingSegment(header: header, payloadOffset: payloadOffset, payloadLength: payloadLength,
                               segmentSize: payloadLength > unit ? unit : 0)
    }

    /// The window the 16-bit field can carry at our scale: a peer that did not offer window
    /// scaling sees at most 64 KiB, however much buffer there is.
    var advertisableWindow: Int { min(receiveWindow, 65_535 << receiveWindowShift) }

    /// RFC 9293 3.8.6.1: with data waiting and a zero window, probe it on the RTO schedule
    /// (windowProbeTimeout).
    mutating func armPersist(now: Instant) {
        guard sendWindow == 0, flight == 0, persistDeadline == nil, retransmitDeadline == nil else { return }
        persistDeadline = now + rtt.timeout
    }

    /// TCP_CORK holds a partial segment and nothing is in flight: the same timer, one RTO
    /// (200 ms at least) from the first time it held (Linux's tcp_check_probe_timer). An
    /// ACK that opens or keeps the window open clears it, and the next look arms it again,
    /// as Linux's tcp_ack_probe does.
    mutating func armCorkCeiling(now: Instant) {
        guard persistDeadline == nil, retransmitDeadline == nil else { return }
        persistDeadline = now + rtt.timeout
    }
}
