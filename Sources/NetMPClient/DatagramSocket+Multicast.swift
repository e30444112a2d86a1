import Glibc
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire

/// A UDP socket's part in multicast, as Linux's ip_setsockopt and its IPv6 twin keep it:
/// the options that shape datagrams to groups (IP_MULTICAST_TTL, _LOOP, _IF), which
/// groups' datagrams it takes (IP_MULTICAST_ALL), and its memberships
/// (IP_ADD_MEMBERSHIP / IP_DROP_MEMBERSHIP). Values arrive checked by the option layer.
extension DatagramSocket {
    /// Linux's igmp_max_memberships: the most IPv4 groups one socket joins (ENOBUFS past it).
    public static let maximumIPv4Memberships = 20
    /// IPv6 has no count of its own in Linux, only the socket's option memory; netmp's is
    /// the cores' bound per socket, less IPv4's share.
    public static let maximumIPv6Memberships = 44

    public var multicastOptions: MulticastOptions { setup.locked { multicastKept } }

    /// Changes the socket's multicast options (and its channel's, once bound).
    public func changeMulticast(_ change: (inout MulticastOptions) -> Void) {
        setup.locked {
            change(&multicastKept)
            channel?.multicast = multicastKept
        }
    }

    /// IP_MULTICAST_IF as set (0.0.0.0 and 0: none, datagrams to groups follow the routes).
    public var multicastInterface: (address: IPv4Address, index: UInt32) { setup.locked { multicastInterfaceKept } }
    public func setMulticastInterface(address: IPv4Address, index: UInt32) {
        setup.locked { multicastInterfaceKept = (address, index) }
    }

    /// IPV6_MULTICAST_IF as set (0: none).
    public var multicastInterface6: UInt32 { setup.locked { multicastInterface6Kept } }
    public func setMulticastInterface6(index: UInt32) { setup.locked { multicastInterface6Kept = index } }

    /// The groups the socket belongs to, in the order it joined them.
    public var memberships: [IPAddress] { setup.locked { groupsJoined } }

    /// IP_ADD_MEMBERSHIP (IPV6_ADD_MEMBERSHIP): from now on the stack belongs to `group`
    /// and the socket takes its datagrams. EADDRINUSE if it already joined, ENOBUFS past
    /// the bound. Joined before bind, the membership waits for the binding.
    public func join(_ group: IPAddress) throws(SocketError) {
        try setup.locked { () throws(SocketError) in
            guard !closed else { throw SocketError.badDescriptor }
            guard group.isMulticast else { throw SocketError.invalidArgument }
            guard !groupsJoined.contains(group) else { throw SocketError.addressInUse }
            let sameFamily = groupsJoined.filter { $0.isIPv4 == group.isIPv4 }.count
            guard sameFamily < (group.isIPv4 ? Self.maximumIPv4Memberships : Self.maximumIPv6Memberships) else {
                throw SocketError.noBufferSpace
            }
            groupsJoined.append(group)
            if let handle { tellCores(group, joined: true, handle: handle) }
        }
    }

    /// IP_DROP_MEMBERSHIP: EADDRNOTAVAIL for a group the socket did not join.
    public func leave(_ group: IPAddress) throws(SocketError) {
        try setup.locked { () throws(SocketError) in
            guard let index = groupsJoined.firstIndex(of: group) else { throw SocketError.addressNotAvailable }
            groupsJoined.remove(at: index)
            if let handle { tellCores(group, joined: false, handle: handle) }
        }
    }

    /// Every core takes the change before this returns: a datagram to the group that
    /// arrives after a join is the socket's.
    func tellCores(_ group: IPAddress, joined: Bool, handle: SocketHandle) {
        var request = Request(joined ? .datagramJoin : .datagramLeave, handle)
        request.remote = Endpoint(group, 0)
        client.onEveryCore(request)
    }

    /// Checks a datagram to an IPv4 group as Linux's route lookup does: it needs a route,
    /// unless IP_MULTICAST_IF names the interface or its address.
    func checkMulticastRoute(to group: IPv4Address) throws(SocketError) {
        let named = setup.locked { multicastInterfaceKept }
        guard named.index != 0 || !named.address.isUnspecified || client.routes.nextHop(for: group) != nil else {
            throw SocketError.networkUnreachable
        }
    }
}
