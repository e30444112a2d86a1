import NetMPStack
import NetMPTCP
import NetMPWire

/// The TCP options that change when a connection gives up, waits or acknowledges:
/// TCP_USER_TIMEOUT, TCP_LINGER2, TCP_SYNCNT, TCP_QUICKACK and a listener's
/// TCP_DEFER_ACCEPT. Each is checked and normalised by the caller as Linux's setsockopt
/// does and kept here for getsockopt; the owner core applies it to the control block.
extension StreamSocket {
    /// TCP_USER_TIMEOUT in milliseconds (0: off).
    public func setUserTimeout(milliseconds: Int) {
        configure({ $0.userTimeout = .milliseconds(UInt64(milliseconds)) }, live: [(.userTimeout, Int64(milliseconds))])
    }
    public var userTimeoutMilliseconds: Int { Int(options.userTimeout.nanoseconds / 1_000_000) }

    /// TCP_LINGER2 as Linux normalises it: below 0 resets instead of waiting in FIN-WAIT-2,
    /// 0 is the stack's own time, more is seconds up to 120 (TCP_FIN_TIMEOUT_MAX).
    public func setLinger2(seconds: Int) {
        let stackDefault = client.tcpConfiguration.finWait2Timeout
        let timeout: Interval? = seconds < 0 ? nil : seconds == 0 ? stackDefault : .seconds(UInt64(min(seconds, 120)))
        let record = timeout.map { Int64($0.nanoseconds / 1_000_000_000) } ?? -1
        configure({ c in
            c.resetInsteadOfFinWait2 = timeout == nil
            if let timeout { c.finWait2Timeout = timeout }
        }, live: [(.linger2, record)])
    }
    /// What getsockopt(TCP_LINGER2) says: -1, or the seconds FIN-WAIT-2 lasts.
    public var linger2Seconds: Int {
        let c = options
        return c.resetInsteadOfFinWait2 ? -1 : Int(c.finWait2Timeout.nanoseconds / 1_000_000_000)
    }

    /// TCP_SYNCNT: 1 to 127 SYN retransmissions.
    public func setSYNRetransmissions(_ count: Int) {
        configure({ $0.maximumSYNRetransmissions = count }, live: [(.synRetries, Int64(count))])
    }

    /// TCP_QUICKACK: Linux acts on the low bit only.
    public func setQuickAck(_ on: Bool) {
        setup.locked { quickAck = on }
        configure({ _ in }, live: [(.quickAck, on ? 1 : 0)])
    }
    public var isQuickAck: Bool { setup.locked { quickAck } }

    /// The records that take to the owner what a connect record has no room for, sent right
    /// after it (the same ring keeps them in order): options whose value differs from the
    /// stack's. The caller holds `setup`.
    func optionsAfterConnect() -> [(StreamOption, Int64)] {
        let base = client.tcpConfiguration
        var records: [(StreamOption, Int64)] = []
        if configuration.userTimeout != base.userTimeout {
            records.append((.userTimeout, Int64(configuration.userTimeout.nanoseconds / 1_000_000)))
        }
        if configuration.resetInsteadOfFinWait2 || configuration.finWait2Timeout != base.finWait2Timeout {
            records.append((.linger2, configuration.resetInsteadOfFinWait2 ? -1 : Int64(configuration.finWait2Timeout.nanoseconds / 1_000_000_000)))
        }
        if configuration.maximumSYNRetransmissions != base.maximumSYNRetransmissions {
            records.append((.synRetries, Int64(configuration.maximumSYNRetransmissions)))
        }
        if !quickAck { records.append((.quickAck, 0)) }
        return records
    }

    /// TCP_DEFER_ACCEPT: a listener hands over a connection only once data arrived, or the
    /// time the retransmissions add up to has passed. Kept as Linux keeps it, in SYN-ACK
    /// retransmissions (1 s, doubling, each at most 120 s); on a listener it takes effect
    /// at once, through the listen slot every core reads.
    public func setDeferAccept(seconds: Int) {
        setup.locked {
            deferAcceptRetransmissions = Self.retransmissions(forSeconds: seconds)
            listenQueue?.setDeferAccept(seconds: Self.seconds(forRetransmissions: deferAcceptRetransmissions))
        }
    }
    /// What getsockopt(TCP_DEFER_ACCEPT) says: the retransmissions' time in seconds.
    public var deferAcceptSeconds: Int { setup.locked { Self.seconds(forRetransmissions: deferAcceptRetransmissions) } }

    /// Linux's secs_to_retrans and retrans_to_secs (TCP_TIMEOUT_INIT 1 s, TCP_RTO_MAX 120 s).
    static func retransmissions(forSeconds seconds: Int) -> UInt8 {
        guard seconds > 0 else { return 0 }
        var count = 1, timeout = 1, period = 1
        while seconds > period && count < 255 {
            count += 1
            timeout = min(timeout * 2, 120)
            period += timeout
        }
        return UInt8(count)
    }
    static func seconds(forRetransmissions count: UInt8) -> Int {
        guard count > 0 else { return 0 }
        var period = 1, timeout = 1
        for _ in 1..<Int(count) {
            timeout = min(timeout * 2, 120)
            period += timeout
        }
        return period
    }
}
