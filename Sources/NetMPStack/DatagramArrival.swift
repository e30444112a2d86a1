import NetMPTCP
import NetMPWire

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
