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

    /// How many `reported` lists, without making the list (the stats page asks every turn).
    public var reportedCount: Int { members.count - (members[always] == nil ? 0 : 1) }
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
