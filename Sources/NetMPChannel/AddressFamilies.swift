import NetMPWire

/// The families of peers a socket takes: an AF_INET socket IPv4's, an AF_INET6 one both, or
/// IPv6's alone with IPV6_V6ONLY or once bound to an IPv6 address (a listener's
/// connections, a UDP socket's datagrams). The raw value is the shared layouts'
/// NETMP_FAMILY_* bits.
public struct AddressFamilies: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let ipv4 = AddressFamilies(rawValue: 1)
    public static let ipv6 = AddressFamilies(rawValue: 2)
    public static let both: AddressFamilies = [.ipv4, .ipv6]

    /// A peer at `address` is of a family these take.
    public func takes(_ address: IPAddress) -> Bool { contains(address.isIPv4 ? .ipv4 : .ipv6) }
}

/// A port in one family's namespace. IPv4's ports and IPv6's are held apart, as Linux's
/// bind conflicts allow: an IPv4 socket and a v6-only one (nginx's `listen 80; listen
/// [::]:80;`) may hold the same number; a dual-stack socket holds it in both. Listeners
/// and UDP bindings are found by it, from the family of the address a segment was sent to.
public struct FamilyPort: Hashable, Comparable, Sendable {
    public var port: UInt16
    public var ipv6: Bool
    public init(_ port: UInt16, ipv6: Bool) { self.port = port; self.ipv6 = ipv6 }
    /// `port` in the namespace of `address`'s family.
    public init(_ port: UInt16, of address: IPAddress) { self.init(port, ipv6: !address.isIPv4) }
    /// `port` in the namespace of `ipv6`'s family, alone.
    public var family: AddressFamilies { ipv6 ? .ipv6 : .ipv4 }
    /// By port, IPv4's namespace before IPv6's (the order `netmp stat` lists sockets in).
    public static func < (a: FamilyPort, b: FamilyPort) -> Bool { (a.port, a.ipv6 ? 1 : 0) < (b.port, b.ipv6 ? 1 : 0) }
}

/// A port and the families a socket holds it in: what a core or the port table needs to
/// give it back.
public struct PortHold: Hashable, Sendable {
    public var port: UInt16
    public var families: AddressFamilies
    public init(_ port: UInt16, _ families: AddressFamilies) { self.port = port; self.families = families }

    /// The port in each family's namespace it covers.
    public var keys: [FamilyPort] {
        (families.contains(.ipv4) ? [FamilyPort(port, ipv6: false)] : []) + (families.contains(.ipv6) ? [FamilyPort(port, ipv6: true)] : [])
    }
}

/// How a socket lets others bind the port it holds: SO_REUSEADDR, SO_REUSEPORT, and the
/// user it runs as. Linux keeps every connection in its port's bind bucket, TIME-WAIT
/// included (an accepted one with its listener's settings), and weighs a bind against each
/// (inet_bind_conflict): the stack's port table does the same with these.
public struct PortReuse: Hashable, Sendable {
    public var address: Bool
    public var port: Bool
    public var uid: UInt32
    public init(address: Bool = false, port: Bool = false, uid: UInt32 = 0) {
        self.address = address; self.port = port; self.uid = uid
    }

    /// A socket bound as `binding` may take the port while a connection made as this one
    /// holds it: both set SO_REUSEADDR, or both SO_REUSEPORT and they run as one user.
    public func admits(_ binding: PortReuse) -> Bool {
        (address && binding.address) || (port && binding.port && uid == binding.uid)
    }
}
