import NetMPWire

/// One route: packets to `destination/prefixLength` go to `gateway`, or straight to the
/// destination on the link when `gateway` is nil.
public struct Route: Equatable, Sendable {
    public var destination: IPv4Address
    public var prefixLength: Int
    public var gateway: IPv4Address?
    public init(destination: IPv4Address, prefixLength: Int, gateway: IPv4Address?) {
        self.destination = destination; self.prefixLength = prefixLength; self.gateway = gateway
    }
    func matches(_ address: IPv4Address) -> Bool {
        let mask = IPv4Address.mask(prefixLength: prefixLength)
        return address.value & mask == destination.value & mask
    }
}

/// A small routing table (the on-link subnet and a default gateway), longest prefix first.
public struct RoutingTable: Sendable {
    public private(set) var routes: [Route] = []
    public init() {}

    /// The table a host with one interface needs.
    public init(interface address: IPv4Address, prefixLength: Int, gateway: IPv4Address?) {
        let mask = IPv4Address.mask(prefixLength: prefixLength)
        add(Route(destination: IPv4Address(address.value & mask), prefixLength: prefixLength, gateway: nil))
        if let gateway { add(Route(destination: .any, prefixLength: 0, gateway: gateway)) }
    }

    public mutating func add(_ route: Route) {
        routes.append(route)
        routes.sort { $0.prefixLength > $1.prefixLength }
    }

    /// The neighbour to hand a packet for `destination` to, or nil when no route matches.
    public func nextHop(for destination: IPv4Address) -> IPv4Address? {
        for route in routes where route.matches(destination) { return route.gateway ?? destination }
        return nil
    }
}
