import NetMPStack
import NetMPWire

/// A core's part of multicast: which bound UDP sockets joined which groups, the host's
/// membership that follows from them, and the delivery of a group's (or a broadcast's)
/// datagram to every socket that takes it.
extension ProtocolLoop {
    /// The most groups one socket may hold on a core: the client refuses more (Linux's
    /// igmp_max_memberships is 20 for IPv4), so more is a faulty client's.
    static let membershipsPerSocket = 64

    func join(_ group: IPAddress, identity: UInt64, now: Instant) {
        var groups = memberships[identity] ?? []
        guard !groups.contains(group) else { return }
        guard groups.count < Self.membershipsPerSocket else {
            clientsByID[UInt32(truncatingIfNeeded: identity >> 32)]?.requests.countMalformed()
            return
        }
        groups.append(group)
        memberships[identity] = groups
        host.joinGroup(group, now: now, sink: &sink)
    }

    func leave(_ group: IPAddress, identity: UInt64, now: Instant) {
        guard var groups = memberships[identity], let index = groups.firstIndex(of: group) else { return }
        groups.remove(at: index)
        memberships[identity] = groups.isEmpty ? nil : groups
        host.leaveGroup(group, now: now, sink: &sink)
    }

    /// A socket's bindings went: so do its memberships (close drops them, as Linux's
    /// ip_mc_drop_socket).
    func leaveAll(identity: UInt64) {
        guard let groups = memberships.removeValue(forKey: identity) else { return }
        let now = currentTime()
        for group in groups { host.leaveGroup(group, now: now, sink: &sink) }
    }

    /// A datagram to a group or a broadcast address goes to every socket on its port that
    /// takes it, not one (Linux's __udp4_lib_mcast_deliver; SO_REUSEPORT picks none out):
    /// to a group, only a socket that joined it or takes every group the host joined
    /// (IP_MULTICAST_ALL). Delivered if any took it.
    func deliverToAll(_ payload: UnsafeRawBufferPointer, arrival: DatagramArrival,
                      among group: [DatagramBinding]) -> Host.UDPDelivery {
        let destination = arrival.destination.address
        var outcome = Host.UDPDelivery.noSocket
        for binding in group where binding.channel.takes(from: arrival.source, to: destination) {
            if destination.isMulticast {
                let options = binding.channel.multicast
                let all = destination.isIPv4 ? options.all : options.all6
                guard all || memberships[binding.identity]?.contains(destination) == true else { continue }
            }
            if binding.channel.deliver(payload, arrival: arrival, core: core) { outcome = .delivered }
            else if outcome == .noSocket { outcome = .queueFull }
        }
        return outcome
    }
}
