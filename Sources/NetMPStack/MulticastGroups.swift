import CNetMPChannel
import NetMPWire

/// The groups of one family this host belongs to: a count per group of the sockets that
/// joined it (one host-wide membership however many sockets share it, as Linux's
/// ip_mc_list and ifmcaddr6 keep one per device), and the group every host belongs to
/// without a join (IPv4's all-hosts, IPv6's all-nodes), never reported. Frames to a group
/// outside it are not ours; the first join and the last leave are what IGMP and MLD report.
public struct MulticastGroups<Group: Hashable & Comparable & Sendable>: Sendable {
    var members: [Group: Int] = [:]
    let always: Group

    public init(always: Group) { self.always = always }

    /// One more socket in `group`; true when it is the host's first (a join to report).
    public mutating func join(_ group: Group) -> Bool {
        members[group, default: 0] += 1
        return members[group] == 1 && group != always
    }

    /// One socket fewer in `group`; true when it was the host's last (a leave to report).
    public mutating func leave(_ group: Group) -> Bool {
        guard let count = members[group] else { return false }
        members[group] = count > 1 ? count - 1 : nil
        return count == 1 && group != always
    }

    public func contains(_ group: Group) -> Bool { group == always || members[group] != nil }

    /// The groups joined, but the one every host belongs to, in a stable order.
    public var reported: [Group] { members.keys.filter { $0 != always }.sorted() }
}

extension MulticastGroups where Group == IPv4Address {
    /// A frame to `mac` may carry a group's datagram (several groups share an Ethernet
    /// address; the IP layer tells them apart).
    public func contains(_ mac: MACAddress) -> Bool {
        mac == MACAddress(ipv4Group: always) || members.keys.contains { MACAddress(ipv4Group: $0) == mac }
    }
}

extension MulticastGroups where Group == IPv6Address {
    public func contains(_ mac: MACAddress) -> Bool { members.keys.contains { $0.multicastMAC == mac } }
}

/// A UDP socket's multicast options as Linux keeps them (inet_create's and inet6_create's
/// defaults: one hop, looped, every group the host joined), packed into its slot's
/// `multicast` word.
public struct MulticastOptions: Equatable, Sendable {
    public var timeToLive: UInt8 = 1        // IP_MULTICAST_TTL
    public var hopLimit: UInt8 = 1          // IPV6_MULTICAST_HOPS
    public var loop = true                  // IP_MULTICAST_LOOP
    public var loop6 = true                 // IPV6_MULTICAST_LOOP
    public var all = true                   // IP_MULTICAST_ALL
    public var all6 = true                  // IPV6_MULTICAST_ALL

    public init() {}

    public init(word: UInt32) {
        timeToLive = UInt8(truncatingIfNeeded: word)
        hopLimit = UInt8(truncatingIfNeeded: word >> 8)
        loop = word & NETMP_MULTICAST_LOOP != 0
        all = word & NETMP_MULTICAST_ALL != 0
        loop6 = word & NETMP_MULTICAST_LOOP6 != 0
        all6 = word & NETMP_MULTICAST_ALL6 != 0
    }

    public var word: UInt32 {
        var w = UInt32(timeToLive) | UInt32(hopLimit) << 8
        if loop { w |= NETMP_MULTICAST_LOOP }
        if all { w |= NETMP_MULTICAST_ALL }
        if loop6 { w |= NETMP_MULTICAST_LOOP6 }
        if all6 { w |= NETMP_MULTICAST_ALL6 }
        return w
    }

    /// How a datagram to an IPv4 group leaves, and to an IPv6 one.
    public var sendingIPv4: MulticastSending { MulticastSending(timeToLive: timeToLive, loop: loop) }
    public var sendingIPv6: MulticastSending { MulticastSending(timeToLive: hopLimit, loop: loop6) }
}
