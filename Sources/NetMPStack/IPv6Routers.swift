import NetMPWire

/// What router advertisements taught the host (RFC 4861 6.3.4), when the stack takes them
/// (NETMP_ACCEPT_RA): the default routers, each until its lifetime ends; the prefixes the
/// link holds (on-link flag); the link's MTU and the hop limit to send with. Lifetimes end
/// lazily, where they are read. Bounded, so a flood of advertisements costs a few entries.
public struct IPv6Routers: Sendable {
    public struct Router: Equatable, Sendable {
        public var address: IPv6Address
        public var expires: Instant
    }
    public struct Prefix: Equatable, Sendable {
        public var prefix: IPv6Address
        public var length: Int
        /// nil: the all-ones lifetime, which never ends.
        public var expires: Instant?
    }

    public static let maximumRouters = 8
    public static let maximumPrefixes = 16

    public private(set) var routers: [Router] = []
    public private(set) var prefixes: [Prefix] = []
    /// The MTU an advertisement gave, within 1280 and what the link was configured with.
    public private(set) var mtu: Int?
    /// The hop limit an advertisement asked for (0 in it leaves it alone).
    public private(set) var hopLimit: UInt8?

    public init() {}

    /// Takes what an advertisement from `router` (a link-local address, checked when it was
    /// parsed) says.
    public mutating func learn(_ advertisement: RouterAdvertisement, from router: IPv6Address, linkMTU: Int, now: Instant) {
        routers.removeAll { $0.address == router || $0.expires <= now }
        if advertisement.routerLifetime > 0 && routers.count < Self.maximumRouters {
            routers.append(Router(address: router, expires: now + .seconds(UInt64(advertisement.routerLifetime))))
        }
        for offered in advertisement.prefixes where offered.onLink && offered.length <= 128 && !offered.prefix.isLinkLocal {
            prefixes.removeAll { ($0.prefix == offered.prefix && $0.length == offered.length) || ($0.expires.map { $0 <= now } ?? false) }
            guard offered.validLifetime > 0, prefixes.count < Self.maximumPrefixes else { continue }
            let expires = offered.validLifetime == .max ? nil : now + .seconds(UInt64(offered.validLifetime))
            prefixes.append(Prefix(prefix: offered.prefix, length: offered.length, expires: expires))
        }
        // RFC 4861 6.3.4: an MTU below the minimum or above the link's is ignored.
        if let offered = advertisement.mtu, Int(offered) >= IPv6Header.minimumMTU, Int(offered) <= linkMTU { mtu = Int(offered) }
        if advertisement.currentHopLimit != 0 { hopLimit = advertisement.currentHopLimit }
    }

    /// A default router whose lifetime has not ended, the first learnt first.
    public func defaultRouter(now: Instant) -> IPv6Address? { routers.first { $0.expires > now }?.address }

    /// Whether an advertised prefix, still valid, holds `destination`.
    public func isOnLink(_ destination: IPv6Address, now: Instant) -> Bool {
        prefixes.contains { destination.hasPrefix($0.prefix, length: $0.length) && ($0.expires.map { $0 > now } ?? true) }
    }
}
