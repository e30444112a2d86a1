import NetMPWire

/// One of the stack's IPv6 addresses with its on-link prefix length.
public struct IPv6InterfaceAddress: Equatable, Sendable, CustomStringConvertible {
    public var address: IPv6Address
    public var prefixLength: Int
    public init(_ address: IPv6Address, prefixLength: Int) { self.address = address; self.prefixLength = prefixLength }
    public var description: String { "\(address)/\(prefixLength)" }

    /// Whether `destination` is on the link for a host holding `addresses`: link-scoped, or
    /// inside one of their prefixes.
    static func isOnLink(_ destination: IPv6Address, by addresses: some Sequence<IPv6InterfaceAddress>) -> Bool {
        destination.isLinkScoped || addresses.contains { destination.hasPrefix($0.address, length: $0.prefixLength) }
    }

    /// The source for a packet to `destination` (RFC 6724's rules that matter on one link):
    /// `linkLocal` for a link-scoped destination, else the first of `globals` whose prefix
    /// holds the destination, else the first of them. The stack's address table and its
    /// configuration both choose by this rule.
    static func source(for destination: IPv6Address, linkLocal: IPv6Address?,
                       globals: some Sequence<IPv6InterfaceAddress>) -> IPv6Address? {
        if destination.isLinkScoped { return linkLocal }
        var fallback: IPv6Address?
        for candidate in globals {
            if destination.hasPrefix(candidate.address, length: candidate.prefixLength) { return candidate.address }
            if fallback == nil { fallback = candidate.address }
        }
        return fallback
    }
}

/// The host's IPv6 addresses (its link-local one first, then the configured ones) and
/// what duplicate address detection (RFC 4862 5.4) said of each: an address is tentative
/// until one solicitation went unanswered for a retransmission time, and is never used if
/// another node claimed it. Holds the groups the host listens to: all-nodes and each
/// address's solicited-node group.
public struct IPv6AddressTable: Sendable {
    public enum State: Equatable, Sendable {
        /// Detection runs; `until` is when it ends if nobody objects (nil: not started).
        case tentative(until: Instant?)
        case preferred
        case duplicate
    }
    public struct Entry: Equatable, Sendable {
        public var assigned: IPv6InterfaceAddress
        public var state: State
        public var address: IPv6Address { assigned.address }
    }

    public private(set) var entries: [Entry]

    public init(linkLocal: IPv6Address, configured: [IPv6InterfaceAddress]) {
        entries = ([IPv6InterfaceAddress(linkLocal, prefixLength: 64)] + configured).map { Entry(assigned: $0, state: .tentative(until: nil)) }
    }

    public func state(of address: IPv6Address) -> State? { entries.first { $0.address == address }?.state }

    /// An address packets may be sent from and to: detection found no other owner.
    public func isPreferred(_ address: IPv6Address) -> Bool { state(of: address) == .preferred }

    /// A multicast group the host listens to.
    public func isJoined(_ group: IPv6Address) -> Bool {
        group == .allNodes || entries.contains { $0.state != .duplicate && $0.address.solicitedNodeMulticast == group }
    }

    /// An Ethernet group that carries one of the joined groups.
    public func isJoined(_ mac: MACAddress) -> Bool {
        mac == IPv6Address.allNodes.multicastMAC || entries.contains { $0.address.solicitedNodeMulticast.multicastMAC == mac }
    }

    /// Whether `destination` is on the link: link-scoped, or inside one of our prefixes.
    public func isOnLink(_ destination: IPv6Address) -> Bool {
        IPv6InterfaceAddress.isOnLink(destination, by: entries.lazy.filter { $0.state != .duplicate }.map(\.assigned))
    }

    /// The source for a packet to `destination`, among the addresses detection has passed
    /// (`IPv6InterfaceAddress.source`). Nil while none is ready.
    public func source(for destination: IPv6Address) -> IPv6Address? {
        let ready = entries.lazy.filter { $0.state == .preferred }
        return IPv6InterfaceAddress.source(for: destination, linkLocal: ready.first { $0.address.isLinkLocal }?.address,
                                           globals: ready.filter { !$0.address.isLinkLocal }.map(\.assigned))
    }

    /// Starts detection for every address not yet decided; returns those to probe.
    mutating func startDetection(now: Instant, retransmitTimer: Interval) -> [IPv6Address] {
        var probes: [IPv6Address] = []
        for i in entries.indices where entries[i].state == .tentative(until: nil) {
            entries[i].state = .tentative(until: now + retransmitTimer)
            probes.append(entries[i].address)
        }
        return probes
    }

    /// Another node answered for, or probes for, a tentative address: it is not ours.
    /// Returns false when `address` was not tentative.
    mutating func markDuplicate(_ address: IPv6Address) -> Bool {
        guard let i = entries.firstIndex(where: { $0.address == address }), case .tentative = entries[i].state else { return false }
        entries[i].state = .duplicate
        return true
    }

    /// Makes the addresses whose detection ended by `now` preferred; returns them.
    mutating func finishDetection(now: Instant) -> [IPv6Address] {
        var done: [IPv6Address] = []
        for i in entries.indices {
            if case .tentative(let until?) = entries[i].state, until <= now {
                entries[i].state = .preferred
                done.append(entries[i].address)
            }
        }
        return done
    }

    /// When detection next ends. Asked every turn of the loop: a walk, no allocation.
    var nextDeadline: Instant? {
        var earliest: Instant?
        for entry in entries {
            if case .tentative(let until?) = entry.state, earliest.map({ until < $0 }) ?? true { earliest = until }
        }
        return earliest
    }
}
