import NetMPTCP
import NetMPWire
import var Glibc.EMSGSIZE

/// What a received datagram's IP and UDP headers and its arrival say beside its payload:
/// where it came from, where it was sent (the address and port: IP_PKTINFO and
/// IP_RECVORIGDSTADDR), its TOS or traffic class and TTL or hop limit (IP_RECVTOS,
/// IP_RECVTTL and IPv6's), and when it arrived (SO_TIMESTAMP).
public struct DatagramArrival: Equatable, Sendable {
    public var source: Endpoint
    public var destination: Endpoint
    public var trafficClass: UInt8
    public var hopLimit: UInt8
    /// On the stack's monotonic clock.
    public var at: Instant

    public init(source: Endpoint, destination: Endpoint, trafficClass: UInt8 = 0, hopLimit: UInt8 = 64, at: Instant = .zero) {
        self.source = source
        self.destination = destination
        self.trafficClass = trafficClass
        self.hopLimit = hopLimit
        self.at = at
    }
}

/// An ICMP or ICMPv6 error about a datagram a UDP socket sent, as IP_RECVERR's error queue
/// keeps it (Linux's sock_extended_err and what recvmsg(MSG_ERRQUEUE) returns beside it):
/// the errno it means, who reported it, what kind of report it was, and the datagram it
/// is about (its source is the socket's, its destination msg_name). The datagram's
/// payload, as far as the error quoted it, travels beside it.
public struct DatagramError: Equatable, Sendable {
    public var errorNumber: Int32
    /// Linux's harderr: an error a connected socket fails its next call with even without
    /// IP_RECVERR (an unreachable port, host or network), not a transient one.
    public var hard: Bool
    /// SO_EE_ORIGIN_LOCAL (1), SO_EE_ORIGIN_ICMP (2) or SO_EE_ORIGIN_ICMP6 (3).
    public var origin: UInt8
    public var type: UInt8
    public var code: UInt8
    /// The next hop's MTU of a "fragmentation needed" or "packet too big", else 0.
    public var info: UInt32
    public var offender: IPAddress
    public var datagram: FourTuple

    public static let originLocal: UInt8 = 1, originICMP: UInt8 = 2, originICMP6: UInt8 = 3

    /// An ICMP or ICMPv6 error, which becomes the socket's pending error (a local one does
    /// not: Linux's is_icmp_err_skb).
    public var fromICMP: Bool { Self.isICMP(origin: origin) }
    static func isICMP(origin: UInt8) -> Bool { origin == originICMP || origin == originICMP6 }

    /// A send refused for its size (EMSGSIZE), as ip_local_error and ipv6_local_error
    /// queue it: origin local, the route's MTU as info, no offender, `destination` as the
    /// name (its port as the sender's protocol gives it).
    public init(messageTooLongTo destination: Endpoint, mtu: UInt32) {
        self.init(errorNumber: EMSGSIZE, hard: false, origin: Self.originLocal, type: 0, code: 0, info: mtu,
                  offender: IPAddress(IPv6Address.any),
                  datagram: FourTuple(local: Endpoint(IPAddress(IPv6Address.any), 0), remote: destination))
    }

    public init(errorNumber: Int32, hard: Bool, origin: UInt8, type: UInt8, code: UInt8, info: UInt32 = 0,
                offender: IPAddress, datagram: FourTuple) {
        self.errorNumber = errorNumber; self.hard = hard; self.origin = origin; self.type = type; self.code = code
        self.info = info; self.offender = offender; self.datagram = datagram
    }
}
