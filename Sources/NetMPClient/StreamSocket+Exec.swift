import NetMPStack
import NetMPTCP
import NetMPWire

/// A connection that outlives its program's exec: the old image writes down its handle and
/// 4-tuple (the exec hand-off), and the new one views the same slot again through the hold
/// the old one had on it, as an accepted connection is viewed (the channel's words, rings and
/// doorbell are in the client's shared region, which the exec did not touch).
extension StreamSocket {
    /// The handle and 4-tuple of a connection, for the hand-off, and whether it is still
    /// connecting: its handshake under way, or ended in a failure no connect() has reported
    /// (its remote end is where it connects to; its local port may not be known yet). An
    /// established connection a non-blocking connect made goes as connected, whether or not
    /// it was told so. Nil for a fresh, listening or closed socket.
    public var inheritable: (handle: SocketHandle, tuple: FourTuple, connecting: Bool)? {
        learnTuple()
        guard let handle else { return nil }
        let established = channel.status.contains(.established)
        return setup.locked {
            switch phase {
            case .connected: return tuple.map { (handle, $0, false) }
            case .connecting:
                if established { return tuple.map { (handle, $0, false) } }
                guard let remote = connectingTo else { return nil }
                let wildcard = remote.address.isIPv4 && family == .ipv4 ? IPAddress(IPv4Address.any) : IPAddress(IPv6Address.any)
                return (handle, FourTuple(local: Endpoint(boundAddress ?? wildcard, boundPort ?? 0), remote: remote), true)
            default: return nil
            }
        }
    }

    /// The connection the old image handed over, or nil when its handle no longer names a
    /// stream socket of this client or its slot is not held. One still connecting goes on
    /// connecting here: connect() again answers EALREADY until the handshake ends, poll
    /// waits for it, and SO_ERROR says how it ended, as in the old image.
    public static func inherited(client: StackClient, handle: SocketHandle, tuple: FourTuple, family: SocketFamily,
                                 connecting: Bool = false) -> StreamSocket? {
        guard client.sockets.resolves(handle, as: .stream),
              let channel = SocketChannel(adopting: handle.slot, in: client.sockets) else { return nil }
        let socket = StreamSocket(client: client, accepted: AcceptedConnection(handle: handle, tuple: tuple, core: channel.owner),
                                  channel: channel, family: family)
        if connecting {
            socket.setup.locked {
                socket.phase = .connecting
                socket.tuple = nil // learnt from the slot once established
                socket.connectingTo = tuple.remote
            }
        }
        return socket
    }

    /// A listening socket's name and what ExecHandoff.Listener keeps (but the twin, which
    /// is the shim's); nil unless listening.
    public var inheritableListener: (name: SocketHandle, listener: ExecHandoff.Listener)? {
        setup.locked {
            guard phase == .listening, let name = listenerName, let port = boundPort, let slot = channel.doorbell.slot else { return nil }
            return (name, ExecHandoff.Listener(channelSlot: slot, port: port, bound: boundAddress, v6Only: v6OnlyFlag,
                                               reusePort: reusePort, reuseAddress: reuseAddress, twin: -1))
        }
    }

    /// The listener the old image handed over: its own channel and its accept queues (the
    /// slot `name` names) viewed again through the old image's holds, listening on the
    /// same port. Connections the cores queued meanwhile wait there for accept. Nil when
    /// `name` no longer names a listener of this client or a slot is not held.
    public static func inheritedListener(client: StackClient, name: SocketHandle, listener: ExecHandoff.Listener,
                                         family: SocketFamily) -> StreamSocket? {
        guard client.sockets.resolves(name, as: .listener),
              let channel = SocketChannel(adopting: listener.channelSlot, in: client.sockets),
              let queue = ListenQueue(adopting: name.slot, in: client.sockets, port: listener.port) else { return nil }
        // Made as an accepted connection is (a view of an existing slot), then made a listener.
        let wildcard = family == .ipv4 ? IPAddress(IPv4Address.any) : IPAddress(IPv6Address.any)
        let unused = AcceptedConnection(handle: name, tuple: FourTuple(local: Endpoint(wildcard, 0), remote: Endpoint(wildcard, 0)), core: 0)
        let socket = StreamSocket(client: client, accepted: unused, channel: channel, family: family)
        socket.handleWord.store(noHandle, ordering: .releasing)
        socket.setup.locked {
            socket.tuple = nil
            socket.peerIsIPv4 = nil
            socket.boundPort = listener.port
            socket.portNamed = true
            socket.boundAddress = listener.bound
            socket.v6OnlyFlag = listener.v6Only
            socket.reusePort = listener.reusePort
            socket.reuseAddress = listener.reuseAddress
            socket.listenerName = name
            socket.listenQueue = queue
            socket.listening.store(true, ordering: .releasing) // after listenQueue: readiness reads it lock-free
            socket.phase = .listening
        }
        return socket
    }

    /// A socket not yet connected or listening, for the hand-off: the port and address bind
    /// gave it; nil otherwise (one whose connect failed is not carried).
    public var inheritableFresh: ExecHandoff.Fresh? {
        setup.locked {
            guard phase == .fresh, !failureReported else { return nil }
            return ExecHandoff.Fresh(datagram: false, port: boundPort ?? 0, portNamed: portNamed, bound: boundAddress)
        }
    }

    /// The fresh socket the old image handed over, made again on its doorbell (in
    /// `doorbellSlot`, through the old image's hold on it), so that the placeholder the
    /// stack rings and the process's hold on the slot carry over; nil when the slot is
    /// not held. Its bind is restored by `restore(_:)`, after the options are set again.
    public static func inheritedFresh(client: StackClient, doorbellSlot: UInt32, family: SocketFamily) -> StreamSocket? {
        guard let doorbell = Doorbell(adopting: doorbellSlot, in: client.sockets) else { return nil }
        return StreamSocket(client: client, doorbell: doorbell, family: family)
    }

    /// What bind gave the socket in the old image: the port, which the client still holds
    /// (the socket lets it go at close, as its predecessor would have), and the address.
    /// After the options: IPV6_V6ONLY is refused on a bound socket.
    public func restore(_ fresh: ExecHandoff.Fresh) {
        setup.locked {
            boundAddress = fresh.bound
            if fresh.port != 0 {
                boundPort = fresh.port
                portNamed = fresh.portNamed
                // In this socket's own channel, which stands on the old one's doorbell:
                // where the stack looks first (StackService.dropHolds).
                channel.recordBoundPort(fresh.port, families: listenerFamilies)
            }
        }
    }
}
