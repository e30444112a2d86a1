import NetMPWire

/// The user calls of RFC 9293 3.10 that reach the engine (the socket layer moves the bytes).
extension Connection {
    /// SEND: `count` more bytes were appended to the send buffer.
    public mutating func queued(_ count: Int) {
        precondition(!finQueued, "the socket layer refuses writes after shutdown")
        sendQueued += count
    }

    /// SEND with URGENT (send(MSG_OOB)): the byte `behindEnd` bytes before the end of the
    /// queued data is the last urgent one; the urgent pointer points just past it.
    public mutating func markUrgent(behindEnd: Int) {
        guard behindEnd >= 0, behindEnd <= sendQueued else { return }
        sendUrgentUp = dataEnd - behindEnd
    }

    /// RECEIVE: the application consumed `count` readable bytes; the window may reopen. With
    /// `now`, the window is auto-tuned: when the application drained more than half of it in
    /// one round trip, the window is what limits the flow, so it doubles (up to the buffer).
    public mutating func consumed(_ count: Int, now: Instant? = nil) {
        unread = max(0, unread - count)
        consumedSinceAdvertised &+= max(0, count)
        guard let now, receiveWindowLimit < configuration.receiveBufferSize else { return }
        consumedInPeriod += count
        guard let start = tuningPeriodStart else { tuningPeriodStart = now; return }
        let period = Interval(nanoseconds: max(receiverRTT ?? rtt.smoothed ?? 10_000_000, 1_000_000))
        guard period <= now - start else { return }
        if consumedInPeriod * 2 > receiveWindowLimit {
            receiveWindowLimit = min(receiveWindowLimit * 2, configuration.receiveBufferSize)
        }
        consumedInPeriod = 0
        tuningPeriodStart = now
    }

    /// CLOSE (shutdown for writing): a FIN follows the queued data.
    public mutating func close(now: Instant) {
        switch state {
        case .synSent: enter(.closed, now: now)
        case .synReceived: finQueued = true // sent once established (RFC 9293 3.10.4)
        case .established: finQueued = true; enter(.finWait1, now: now)
        case .closeWait: finQueued = true; enter(.lastAck, now: now)
        default: break
        }
    }

    /// The socket was closed (not just shut down): nobody reads any more. Sends the FIN if
    /// not yet queued, and bounds how long FIN-WAIT-2 may wait for the peer's.
    public mutating func orphan(now: Instant) {
        orphaned = true
        close(now: now)
        if state == .finWait2 && closeDeadline == nil { waitInFinWait2(now: now) }
    }

    /// An orphaned connection in FIN-WAIT-2 waits TCP_LINGER2 for the peer's FIN, or with a
    /// negative one resets at once (Linux's tcp_close and tcp_rcv_state_process).
    mutating func waitInFinWait2(now: Instant) {
        if configuration.resetInsteadOfFinWait2 { resetDue = true } else { closeDeadline = now + configuration.finWait2Timeout }
    }

    /// TCP_LINGER2: seconds in FIN-WAIT-2 after close, or nil to reset instead.
    public mutating func setFinWait2(_ timeout: Interval?) {
        configuration.resetInsteadOfFinWait2 = timeout == nil
        if let timeout { configuration.finWait2Timeout = timeout }
    }

    /// TCP_USER_TIMEOUT (zero: off). A stall under way is bounded by it from now on.
    public mutating func setUserTimeout(_ timeout: Interval, now: Instant) {
        configuration.userTimeout = timeout
        if let deadline = retransmitDeadline, timeout.nanoseconds > 0, let since = stalledSince {
            retransmitDeadline = min(deadline, max(now, since + timeout))
        }
    }

    /// TCP_SYNCNT: SYN retransmissions before connect gives up.
    public mutating func setSYNRetransmissions(_ count: Int) { configuration.maximumSYNRetransmissions = count }

    /// TCP_QUICKACK: 1 sends now an ACK that waits on the delayed-ACK timer; 0 ends the
    /// quick-ACK start, so single segments wait for the timer or a reply to ride on (Linux's
    /// pingpong mode). Every second full segment is acknowledged at once either way.
    public mutating func setQuickAck(_ on: Bool) {
        if on {
            if delayedAckDeadline != nil { ackNow = true; delayedAckDeadline = nil }
        } else {
            quickAcks = 0
        }
    }

    /// RFC 6191: a SYN may reopen a connection still in TIME-WAIT when it is certainly newer
    /// than anything of the old incarnation: a later timestamp, or without timestamps a
    /// sequence number past the old RCV.NXT.
    public func acceptsNewIncarnation(_ syn: TCPSegmentHeader) -> Bool {
        guard state == .timeWait, syn.flags == .syn else { return false }
        if timestampsEnabled, let ts = syn.options.timestamp { return Int32(bitPattern: ts.value &- timestampRecent) > 0 }
        return receiveNext < SequenceNumber(syn.sequenceNumber)
    }

    /// TCP_NODELAY.
    public mutating func setNoDelay(_ on: Bool) { configuration.noDelay = on }

    /// TCP_CORK: while set, only full segments leave; clearing it sends what waits.
    public mutating func setCork(_ on: Bool) { configuration.cork = on }

    /// SO_KEEPALIVE and its three TCP_KEEP* parameters; arms the idle timer at once.
    public mutating func setKeepAlive(_ on: Bool, idle: Interval? = nil, interval: Interval? = nil, probes: Int? = nil, now: Instant) {
        configuration.keepAlive = on
        if let idle { configuration.keepAliveIdle = idle }
        if let interval { configuration.keepAliveInterval = interval }
        if let probes { configuration.keepAliveProbes = max(1, probes) }
        peerWasHeard(now: now)
    }

    /// TCP_MAXSEG: our MSS, announced on the SYN, so only before the connection opens
    /// (Linux likewise ignores it afterwards for what was announced). Clamped to 88...65495.
    public mutating func setMaximumSegmentSize(_ mss: Int) -> Bool {
        guard state == .synSent && sendNext == initialSendSequence || state == .closed else { return false }
        configuration.maximumSegmentSize = min(max(mss, 88), 65_495)
        return true
    }

    /// IP_TOS / IP_TTL (or the IPv6 pair) from now on.
    public mutating func setMarking(_ marking: IPMarking) { configuration.marking = marking }

    /// TCP_CONGESTION: switch the algorithm, keeping the current window and threshold.
    public mutating func setCongestionControl(_ algorithm: CongestionAlgorithm) {
        guard algorithm != congestion.algorithm else { return }
        let (window, threshold) = (congestion.window, congestion.slowStartThreshold)
        congestion = CongestionController(algorithm, maximumSegmentSize: sendMSS, burst: configuration.segmentationLimit)
        congestion.adopt(window: window, slowStartThreshold: threshold)
        configuration.congestionControl = algorithm
    }

    /// Everything written, FIN included, has been acknowledged: a close with SO_LINGER may
    /// return (the socket layer waits for this, up to the linger time, then aborts).
    public var everythingAcknowledged: Bool { finQueued ? finAcknowledged : sendQueued == 0 }

    /// ABORT (SO_LINGER 0, or close with unread data): the reset to send, if the peer knows
    /// about us (RFC 9293 3.10.5), and CLOSED.
    public mutating func abort(now: Instant) -> TCPSegmentHeader? {
        defer { enter(.closed, now: now) }
        guard state != .synSent && state != .closed && state != .timeWait else { return nil }
        return TCPSegmentHeader(sourcePort: tuple.local.port, destinationPort: tuple.remote.port,
                                sequenceNumber: sendNext.raw, acknowledgmentNumber: receiveNext.raw,
                                flags: [.rst, .ack], window: 0)
    }
}

/// Reactions to ICMP errors about this connection's segments.
extension Connection {
    /// RFC 1191: the path takes at most `mtu` bytes; segments shrink to fit, never below
    /// RFC 9293 3.7.1's 536-byte MSS (a 576-byte datagram).
    public mutating func pathMTUChanged(_ mtu: Int) {
        // IPv6's header is 20 bytes longer; its links carry at least 1280 (RFC 8200 5).
        let mss = tuple.isIPv4 ? max(536, mtu - 40) : max(1220, mtu - 60)
        if mss < sendMSS { sendMSS = mss }
    }

    /// RFC 1122 4.2.3.9: a hard error ends an opening connection; an established one
    /// keeps trying (the error is remembered for SO_ERROR if it then times out).
    public mutating func unreachable(code: UInt8, now: Instant) {
        guard state == .synSent || state == .synReceived else { return }
        if state == .synReceived { enter(.closed, now: now); return }
        fail(code == ICMPv4Message.UnreachableCode.port
             ? .connectionRefused : .unreachable(code: code), now: now)
    }
}
