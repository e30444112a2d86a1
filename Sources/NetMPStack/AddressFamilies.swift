import NetMPWire

/// The families of peers a socket takes: an AF_INET socket IPv4's, an AF_INET6 one both, or
/// IPv6's alone with IPV6_V6ONLY or once bound to an IPv6 address (a listener's
/// connections, a UDP socket's datagrams). The raw value is the shared layouts'
/// NETMP_FAMILY_* bits.
public struct AddressFamilies: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let ipv4 = AddressFamilies(rawValue: 1)
    public static let ipv6 = AddressFamilies(rawValue: 2)
    public static let both: AddressFamilies = [.ipv4, .ipv6]

    /// A peer at `address` is of a family these take.
    public func takes(_ address: IPAddress) -> Bool { contains(address.isIPv4 ? .ipv4 : .ipv6) }
}
