import CNetMPChannel
import NetMPTCP
import NetMPWire

/// A TCP option that takes effect on a live connection, as a set-option record carries it
/// (NETMP_OPTION_* of netmp_channel.h): the application checks and normalises the value as
/// Linux's setsockopt does and keeps it for getsockopt; the owner core applies it to the
/// control block. Options that matter only before connect (TCP_MAXSEG, SO_RCVBUF) travel
/// with the connect instead.
public enum StreamOption: UInt32, Sendable {
    case noDelay = 1, cork, keepAlive, keepAliveIdle, keepAliveInterval, keepAliveProbes, congestionControl
    /// IP_TOS and IP_TTL (or IPV6_TCLASS and IPV6_UNICAST_HOPS) together: `IPMarking.word`.
    case marking
    /// TCP_USER_TIMEOUT in milliseconds; TCP_LINGER2 in seconds, -1 to reset instead of
    /// waiting; TCP_SYNCNT; TCP_QUICKACK.
    case userTimeout, linger2, synRetries, quickAck

    /// The owner core: applies `value`. False (and nothing changes) for a value outside
    /// what the application would have sent, which only a faulty writer produces.
    public func apply(_ value: Int64, to connection: inout Connection, now: Instant) -> Bool {
        switch self {
        case .noDelay, .cork, .keepAlive:
            guard value == 0 || value == 1 else { return false }
            if self == .noDelay { connection.setNoDelay(value == 1) }
            else if self == .cork { connection.setCork(value == 1) }
            else { connection.setKeepAlive(value == 1, now: now) }
        case .keepAliveIdle, .keepAliveInterval:
            guard (1...Int64(Int32.max)).contains(value) else { return false }
            let interval = Interval.seconds(UInt64(value))
            connection.setKeepAlive(connection.configuration.keepAlive, idle: self == .keepAliveIdle ? interval : nil,
                                    interval: self == .keepAliveInterval ? interval : nil, now: now)
        case .keepAliveProbes:
            guard (1...Int64(Int32.max)).contains(value) else { return false }
            connection.setKeepAlive(connection.configuration.keepAlive, probes: Int(value), now: now)
        case .congestionControl:
            guard let algorithm = Self.algorithm(value) else { return false }
            connection.setCongestionControl(algorithm)
        case .marking:
            guard (0...0xFFFF).contains(value), value & 3 == 0 else { return false } // TCP's ECN bits are the stack's
            connection.setMarking(IPMarking(word: UInt32(value)))
        case .userTimeout:
            guard (0...Int64(Int32.max)).contains(value) else { return false }
            connection.setUserTimeout(.milliseconds(UInt64(value)), now: now)
        case .linger2:
            guard value == -1 || (1...120).contains(value) else { return false }
            connection.setFinWait2(value < 0 ? nil : .seconds(UInt64(value)))
        case .synRetries:
            guard (1...127).contains(value) else { return false }
            connection.setSYNRetransmissions(Int(value))
        case .quickAck:
            guard value == 0 || value == 1 else { return false }
            connection.setQuickAck(value == 1)
        }
        return true
    }

    /// TCP_CONGESTION's value in a record.
    public static func code(_ algorithm: CongestionAlgorithm) -> Int64 {
        switch algorithm {
        case .newReno: Int64(NETMP_CONGESTION_RENO)
        case .cubic: Int64(NETMP_CONGESTION_CUBIC)
        case .bbr: Int64(NETMP_CONGESTION_BBR)
        }
    }
    static func algorithm(_ code: Int64) -> CongestionAlgorithm? {
        switch code {
        case Int64(NETMP_CONGESTION_RENO): .newReno
        case Int64(NETMP_CONGESTION_CUBIC): .cubic
        case Int64(NETMP_CONGESTION_BBR): .bbr
        default: nil
        }
    }
}
