import NetMPStack

/// SO_RCVLOWAT and TCP_NOTSENT_LOWAT: how much must be readable before a socket polls
/// readable and a blocking read returns, and how little may wait unsent before it polls
/// writable and a send may add more. Both are read lock-free by readiness, recv and send.
extension StreamSocket {
    /// SO_RCVLOWAT as Linux's tcp_set_rcvlowat keeps it: below 0 is "as much as can be",
    /// 0 is 1, and nothing above half the receive ring (Linux caps at half of its largest
    /// receive buffer), so a reader is never asked to wait for more than can arrive.
    public func setReceiveLowWater(_ bytes: Int) {
        let cap = channel.receive.capacity / 2
        let value = bytes < 0 ? cap : max(1, min(bytes, cap))
        receiveLowWater.store(value, ordering: .relaxed)
        channel.doorbell.ring() // a poller re-reads readiness under the new mark
    }
    public var receiveLowWaterMark: Int { receiveLowWater.load(ordering: .relaxed) }

    /// TCP_NOTSENT_LOWAT: kept as the program gave it (getsockopt reads it back); 0 is no
    /// limit, and Linux takes the value as unsigned.
    public func setNotSentLowWater(_ value: Int32) {
        notSentLowWater.store(Int(UInt32(bitPattern: value)), ordering: .relaxed)
        channel.doorbell.ring()
    }
    public var notSentLowWaterMark: Int32 { Int32(truncatingIfNeeded: notSentLowWater.load(ordering: .relaxed)) }

    /// Writable as TCP_NOTSENT_LOWAT sees it (Linux's tcp_stream_memory_free).
    var notSentBelowLowWater: Bool {
        let limit = notSentLowWater.load(ordering: .relaxed)
        return limit == 0 || channel.send.notSent < limit
    }

    /// How much of `wanted` a send may add now: all of it without TCP_NOTSENT_LOWAT; below
    /// the mark, up to it and one 64 KiB segment more, as Linux's tcp_sendmsg looks at the
    /// mark only before it starts a new (TSO-sized) segment; nothing once it is reached
    /// (the writer waits for the owner to send).
    func roomUnderNotSentLowWater(_ wanted: Int) -> Int {
        let limit = notSentLowWater.load(ordering: .relaxed)
        guard limit > 0 else { return wanted }
        let unsent = channel.send.notSent
        return unsent < limit ? min(wanted, limit - unsent + 65_536) : 0
    }
}
