import NetMPStack
import NetMPTCP

/// One UDP socket bound on a core: its channel, named by its client and slot so that one
/// of several sharing a port (SO_REUSEPORT) can leave alone.
struct DatagramBinding {
    let identity: UInt64
    let channel: DatagramChannel

    /// Which of the sockets bound to a port takes a datagram from `source` to `destination`,
    /// as Linux's UDP lookup scores them: one connected to the source first; else, among
    /// those that take it, the one the flow's hash picks (reuseport groups), so a flow stays
    /// with one socket. No allocation: the group is walked twice.
    static func receiver(among group: [DatagramBinding], from source: Endpoint, to destination: Endpoint) -> DatagramChannel? {
        receiving(among: group, from: source, to: destination)?.channel
    }

    /// The binding of the socket `receiver` picks.
    static func receiving(among group: [DatagramBinding], from source: Endpoint, to destination: Endpoint) -> DatagramBinding? {
        if group.count == 1 { return group[0].channel.takes(from: source, to: destination.address) ? group[0] : nil }
        var takers = 0
        for binding in group where binding.channel.takes(from: source, to: destination.address) {
            if binding.channel.connectedPeer != nil { return binding }
            takers += 1
        }
        guard takers > 0 else { return nil }
        var hasher = Hasher()
        hasher.combine(source)
        hasher.combine(destination)
        var pick = Int(UInt(bitPattern: hasher.finalize()) % UInt(takers))
        for binding in group where binding.channel.takes(from: source, to: destination.address) {
            if pick == 0 { return binding }
            pick -= 1
        }
        return nil
    }
}

extension ProtocolLoop {
    /// Socket `identity`'s binding leaves this core's table; others sharing the port stay.
    func unbindDatagram(_ hold: PortHold, identity: UInt64) {
        leaveAll(identity: identity)
        for key in hold.keys {
            guard var group = datagramSockets[key] else { continue }
            group.removeAll { $0.identity == identity }
            datagramSockets[key] = group.isEmpty ? nil : group
        }
    }
}
