import CNetMPChannel
import NetMPWire

/// The IPv4 groups this host belongs to: a count per group of the sockets that joined it
/// (one host-wide membership however many sockets share it, as Linux's ip_mc_list keeps
/// one per device), and the all-hosts group, which every host belongs to. Frames to a
/// group outside it are not ours; the first join and the last leave are what IGMP reports.
public struct MulticastGroups: Sendable {
    var members: [IPv4Address: Int] = [:]

    public init() {}

    /// One more socket in `group`; true when it is the host's first (a join to report).
    public mutating func join(_ group: IPv4Address) -> Bool {
        members[group, default: 0] += 1
        return members[group] == 1 && group != IGMPMessage.allHosts
    }

    /// One socket fewer in `group`; true when it was the host's last (a leave to report).
    public mutating func leave(_ group: IPv4Address) -> Bool {
        guard let count = members[group] else { return false }
        members[group] = count > 1 ? count - 1 : nil
        return count == 1 && group != IGMPMessage.allHosts
    }

    public func contains(_ group: IPv4Address) -> Bool { group == IGMPMessage.allHosts || members[group] != nil }

    /// A frame to `mac` may carry a group's datagram (several groups share an Ethernet
    /// address; the IP layer tells them apart).
    public func contains(_ mac: MACAddress) -> Bool {
        mac == MACAddress(ipv4Group: IGMPMessage.allHosts) || members.keys.contains { MACAddress(ipv4Group: $0) == mac }
    }

    /// The groups a report names (all-hosts never), in a stable order.
    public var reported: [IPv4Address] { members.keys.filter { $0 != IGMPMessage.allHosts }.sorted() }
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

    /// How a datagram to an IPv4 group leaves.
    public var sendingIPv4: MulticastSending { MulticastSending(timeToLive: timeToLive, loop: loop) }
}
