/// An address of either family, as connections and sockets hold it. An IPv4 address is
/// kept in its IPv4-mapped IPv6 form (::ffff:a.b.c.d, RFC 4291 2.5.5.2), the form a
/// dual-stack socket names it by, so one 16-byte value, one comparison and one hash serve
/// both families.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public var bits: IPv6Address
    public init(_ v4: IPv4Address) { bits = IPv6Address(mapping: v4) }
    public init(_ v6: IPv6Address) { bits = v6 }

    /// The IPv4 address, for an address of that family.
    public var v4: IPv4Address? { bits.ipv4Mapped }
    public var isIPv4: Bool { bits.isIPv4Mapped }
    /// The IPv6 address, for an address of that family.
    public var v6: IPv6Address? { isIPv4 ? nil : bits }

    /// 0.0.0.0 or ::, the wildcard of its family.
    public var isUnspecified: Bool { v4?.isUnspecified ?? bits.isUnspecified }
    /// A group: 224.0.0.0/4, or ff00::/8.
    public var isMulticast: Bool { v4?.isMulticast ?? bits.isMulticast }

    public var description: String { v4?.description ?? bits.description }
}
