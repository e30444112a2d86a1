import Glibc
import NetMPStack
import NetMPTCP
import NetMPWire
import Synchronization

/// A UDP socket as application threads use it. Bound, it exists on every core (the port's
/// datagrams are queued on whichever core received them); receive() drains the cores'
/// queues in turn. send() queues a whole record in the socket's send ring and asks its
/// home core to transmit, once per core turn: no thread but a core builds a frame.
public final class DatagramSocket: @unchecked Sendable {
    /// The side of the stack the socket was made on: its slot and records are the client's,
    /// and all it knows of the stack is what the client says.
    public let client: StackClient
    let setup = PthreadLock()
    /// The channel, published once at bind (lock-free for send and receive).
    let published = Atomic<UnsafeRawPointer?>(nil)
    let broadcast = Atomic<Bool>(false)
    let nonBlockingFlag = Atomic<Bool>(false)
    let receiveTimeout = Atomic<Int>(0)
    nonisolated(unsafe) var closed = false
    /// The channel's name in request records, from bind to close (guarded by `setup`;
    /// send reads it after `published`, which bind stores after it).
    nonisolated(unsafe) var handle: SocketHandle?

    /// A new UDP socket, the application's.
    public convenience init(stack: NetworkStack) { self.init(client: stack.primary) }

    /// A new UDP socket of `client`.
    public init(client: StackClient) {
        self.client = client
    }

    deinit {
        if let raw = published.load(ordering: .acquiring) {
            let channel = Unmanaged<DatagramChannel>.fromOpaque(raw).takeRetainedValue()
            if let handle { client.request(Request(.datagramClose, handle), to: channel.homeCore) } // never closed
        }
    }

    public var nonBlocking: Bool {
        get { nonBlockingFlag.load(ordering: .relaxed) }
        set { nonBlockingFlag.store(newValue, ordering: .relaxed) }
    }
    /// SO_BROADCAST: sending to a broadcast address needs it (EACCES otherwise).
    public func setBroadcast(_ on: Bool) { broadcast.store(on, ordering: .relaxed) }
    /// SO_RCVTIMEO in nanoseconds (0: none).
    public func setReceiveTimeout(_ ns: Int) { receiveTimeout.store(max(0, ns), ordering: .relaxed) }

    /// The slot of the socket's channel (bind makes it).
    public var boundSlot: UInt32? { channel?.lease?.slot }

    var channel: DatagramChannel? {
        published.load(ordering: .acquiring).map { Unmanaged<DatagramChannel>.fromOpaque($0).takeUnretainedValue() }
    }

    /// bind(): the port on every core. Port 0 picks an ephemeral one.
    public func bind(_ endpoint: Endpoint) throws(SocketError) {
        try setup.locked { () throws(SocketError) in
            guard !closed, channel == nil else { throw SocketError(EINVAL) }
            guard endpoint.address.isIPv4 else { throw SocketError(EAFNOSUPPORT) }
            guard endpoint.address.isUnspecified || endpoint.address == IPAddress(client.configuration.address) else {
                throw SocketError(EADDRNOTAVAIL)
            }
            let port: UInt16
            switch client.reservePort(endpoint.port, datagram: true) {
            case .success(let p): port = p
            case .failure(let e): throw e
            }
            // In a slot of the socket table, named so that every core makes its own view.
            guard let channel = DatagramChannel(in: client.sockets, port: port, cores: client.cores,
                                                homeCore: client.coreForNewConnection()),
                  let lease = channel.lease,
                  let handle = client.sockets.register(kind: .datagram, in: lease) else {
                client.releasePort(port, datagram: true)
                throw SocketError(ENOBUFS)
            }
            self.handle = handle
            for _ in 0..<client.cores { client.sockets.hold(handle.slot) } // for each core's view
            client.onEveryCore(Request(.datagramBind, handle))
            channel.doorbell.fd = descriptor.load(ordering: .acquiring)
            published.store(UnsafeRawPointer(Unmanaged.passRetained(channel).toOpaque()), ordering: .releasing)
        }
    }

    /// The channel, binding an ephemeral port first if the socket has none (as Linux does
    /// on the first send or connect).
    func bound() throws(SocketError) -> DatagramChannel {
        if let channel { return channel }
        do { try bind(Endpoint(IPv4Address(0), 0)) } catch {
            guard error.errno == EINVAL else { throw error } // EINVAL: another thread bound it first
        }
        guard let channel else { throw SocketError(EBADF) } // closed meanwhile
        return channel
    }

    /// connect(): the default destination, and only its datagrams are received; nil
    /// (AF_UNSPEC) dissolves the association.
    public func connect(to remote: Endpoint?) throws(SocketError) {
        if let remote {
            guard let address = remote.address.v4 else { throw SocketError(EAFNOSUPPORT) }
            guard remote.port != 0 else { throw SocketError(ECONNREFUSED) }
            guard client.routes.nextHop(for: address) != nil else { throw SocketError(ENETUNREACH) }
        }
        try bound().connect(to: remote)
    }

    public var localAddress: Endpoint {
        guard let channel else { return Endpoint(IPv4Address(0), 0) }
        return Endpoint(client.configuration.address, channel.port)
    }

    public func peerAddress() throws(SocketError) -> Endpoint {
        guard let peer = channel?.connectedPeer else { throw SocketError(ENOTCONN) }
        return peer
    }

    /// The largest payload one frame carries (netmp does not fragment).
    public var maximumPayload: Int { client.configuration.mtu - 28 }

    /// sendto() / send(): one datagram, all or nothing.
    public func send(_ bytes: UnsafeRawBufferPointer, to destination: Endpoint? = nil, dontWait: Bool = false) throws(SocketError) -> Int {
        if client.stackGone { throw SocketError(ENETDOWN) }
        let channel = try bound()
        try pendingError(channel)
        guard let target = destination ?? channel.connectedPeer else { throw SocketError(EDESTADDRREQ) }
        guard bytes.count <= maximumPayload else { throw SocketError(EMSGSIZE) }
        guard target.port != 0 else { throw SocketError(EINVAL) }
        guard let address = target.address.v4 else { throw SocketError(EAFNOSUPPORT) }
        let subnetBroadcast = client.configuration.address.value | ~IPv4Address.mask(prefixLength: client.configuration.prefixLength)
        if address.isLimitedBroadcast || address.value == subnetBroadcast {
            guard broadcast.load(ordering: .relaxed) else { throw SocketError(EACCES) }
        } else if client.routes.nextHop(for: address) == nil {
            throw SocketError(ENETUNREACH)
        }
        var header: (UInt32, UInt32, UInt32) = (UInt32(bytes.count), address.value, UInt32(target.port))
        let wait = !(nonBlocking || dontWait)
        while true {
            let queued = withUnsafeBytes(of: &header) { channel.outgoing.writeRecord($0, bytes) }
            if queued { break }
            if !wait { throw SocketError(EAGAIN) }
            let size = DatagramRecord.headerLength + bytes.count
            _ = channel.outgoing.writers.wait { channel.outgoing.free >= size || client.stackGone }
            if client.stackGone { throw SocketError(ENETDOWN) }
        }
        if channel.requestOutput(), let handle { client.request(Request(.datagramOutput, handle), to: channel.homeCore) }
        return bytes.count
    }

    /// recvfrom(): the next datagram from any core's queue; `length` is its full size
    /// (bigger than the buffer means it was truncated, MSG_TRUNC).
    public func receive(into buffer: UnsafeMutableRawBufferPointer, peek: Bool = false,
                        dontWait: Bool = false) throws(SocketError) -> (length: Int, from: Endpoint) {
        let channel = try bound()
        let wait = !(nonBlocking || dontWait)
        let timeout = receiveTimeout.load(ordering: .relaxed)
        let deadline = timeout > 0 ? MonotonicClock.now() + Interval(nanoseconds: UInt64(timeout)) : nil
        while true {
            try pendingError(channel)
            if let got = channel.receive(into: buffer, peek: peek) { return got }
            if client.stackGone { throw SocketError(ENETDOWN) }
            if !wait { throw SocketError(EAGAIN) }
            var remaining: Int? = nil
            if let deadline {
                let now = MonotonicClock.now()
                guard now < deadline else { throw SocketError(EAGAIN) }
                remaining = Int((deadline - now).nanoseconds)
            }
            _ = channel.arrivals.wait(timeout: remaining) {
                channel.hasDatagrams || channel.error != 0 || setup.locked { closed } || client.stackGone
            }
            if setup.locked({ closed }) { throw SocketError(EBADF) }
        }
    }

    /// An ICMP error the socket's peer caused, reported once (as Linux's sock_error).
    func pendingError(_ channel: DatagramChannel) throws(SocketError) {
        let error = channel.error != 0 ? channel.takeError() : 0
        if error != 0 { throw SocketError(error) }
    }

    /// SO_ERROR: the pending error, taken.
    public func takeError() -> Int32 { channel?.takeError() ?? 0 }

    /// poll(2)'s view: readable with a datagram queued, writable with room for a full one,
    /// and an error pending (POLLERR, as Linux reports sk_err).
    public var readiness: PollEvents {
        guard let channel else { return .writable }
        var events: PollEvents = channel.error != 0 ? [.error] : []
        if channel.hasDatagrams { events.insert(.readable) }
        if channel.outgoing.free >= DatagramRecord.headerLength + maximumPayload { events.insert(.writable) }
        return events
    }

    /// The doorbell poll and epoll wait on (nil before bind: nothing changes for an unbound
    /// socket, which poll reports writable and nothing else).
    public var doorbell: Doorbell? { channel?.doorbell }
    /// The descriptor the shim gave this socket: its channel's doorbell rings it.
    public let descriptor = Atomic<Int32>(-1)
    public var isBroadcast: Bool { broadcast.load(ordering: .relaxed) }
    public var receiveTimeoutNanoseconds: Int { receiveTimeout.load(ordering: .relaxed) }

    /// FIONREAD on UDP: the size of the next datagram.
    public var nextDatagramLength: Int { channel?.nextLength ?? 0 }

    /// close(): the port leaves every core and is free again.
    public func close() {
        setup.locked {
            guard !closed else { return }
            closed = true
            guard let channel else { return }
            if let handle {
                var request = Request(.datagramUnbind, handle)
                request.localPort = channel.port
                client.onEveryCore(request)
            }
            // After any output request this thread sent: what was queued still goes out.
            if let handle { client.request(Request(.datagramClose, handle), to: channel.homeCore) }
            handle = nil
            client.releasePort(channel.port, datagram: true)
            channel.arrivals.wakeAll()
        }
    }
}
