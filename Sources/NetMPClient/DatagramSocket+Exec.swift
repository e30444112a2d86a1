import NetMPStack
import NetMPWire

/// A bound UDP socket that outlives its program's exec (ExecHandoff): its channel, queues
/// and error queue are in the client's region, and the new image views its slot again
/// through the hold the old one had; what the slot does not hold comes in the hand-off.
extension DatagramSocket {
    /// The name and ExecHandoff.Datagram of a bound socket; nil when it has no channel yet
    /// (unbound, or bound to an address only) or is closed.
    public var inheritable: (handle: SocketHandle, datagram: ExecHandoff.Datagram)? {
        setup.locked {
            guard !closed, channel != nil, let handle else { return nil }
            return (handle, ExecHandoff.Datagram(bound: boundName, connectedSource: connectedSource, v6Only: v6OnlyFlag,
                                                 reusePort: reusePort, reuseAddress: reuseAddress, groups: groupsJoined))
        }
    }

    /// The socket the old image handed over, standing on `common` (the process's common
    /// bell, as bind makes it stand); nil when `handle` no longer names a UDP socket of
    /// this client or its slot is not held.
    public static func inherited(client: StackClient, handle: SocketHandle, datagram: ExecHandoff.Datagram,
                                 family: SocketFamily, common: Int32) -> DatagramSocket? {
        guard client.sockets.resolves(handle, as: .datagram),
              let channel = DatagramChannel(adopting: handle.slot, in: client.sockets) else { return nil }
        let socket = DatagramSocket(client: client, family: family)
        socket.setup.locked {
            socket.boundName = datagram.bound
            socket.connectedSource = datagram.connectedSource
            socket.v6OnlyFlag = datagram.v6Only
            socket.reusePort = datagram.reusePort
            socket.reuseAddress = datagram.reuseAddress
            socket.groupsJoined = datagram.groups // the cores still have them: not told again
            socket.markingKept = channel.marking
            socket.mappedMarkingKept = channel.mappedMarking
            socket.multicastKept = channel.multicast
            socket.handle = handle
            socket.placeholderBell.store(common, ordering: .releasing)
            channel.doorbell.standInPlaceholders(common: common)
            socket.published.store(UnsafeRawPointer(Unmanaged.passRetained(channel).toOpaque()), ordering: .releasing)
        }
        return socket
    }

    /// A socket not yet bound to a port, for the hand-off: the address a bind under
    /// IP_BIND_ADDRESS_NO_PORT named; nil once bound or closed.
    public var inheritableFresh: ExecHandoff.Fresh? {
        setup.locked {
            guard !closed, channel == nil else { return nil }
            return ExecHandoff.Fresh(datagram: true, bound: boundName, addressOnly: addressOnly)
        }
    }

    /// The address-only bind of the old image's socket, after its options were set again.
    public func restore(_ fresh: ExecHandoff.Fresh) {
        setup.locked {
            boundName = fresh.bound
            addressOnly = fresh.addressOnly
        }
    }
}
