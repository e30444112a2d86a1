import NetMPWire

/// The user calls of RFC 9293 3.10 that reach the engine (the socket layer moves the bytes).
extension Connection {
    /// SEND: `count` more bytes were appended to the send buffer.
    public mutating func queued(_ count: Int) {
        precondition(!finQueued, "the socket layer refuses writes after shutdown")
        sendQueued += count
    }

    /// RECEIVE: the application consumed `count` readable bytes; the window may reopen.
    public mutating func consumed(_ count: Int) {
        unread = max(0, unread - count)
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
        if state == .finWait2 && closeDeadline == nil { closeDeadline = now + configuration.finWait2Timeout }
    }

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
        let mss = max(536, mtu - 40)
        if mss < sendMSS { sendMSS = mss }
    }

    /// RFC 1122 4.2.3.9: a hard error ends an opening connection; an established one
    /// keeps trying (the error is remembered for SO_ERROR if it then times out).
    public mutating func unreachable(code: UInt8, now: Instant) {
        guard state == .synSent || state == .synReceived else { return }
        if state == .synReceived { enter(.closed, now: now); return }
        fail(code == ICMPv4Message.UnreachableCode.port || code == ICMPv4Message.UnreachableCode.proto
             ? .connectionRefused : .unreachable(code: code), now: now)
    }
}
