import CNetMPChannel
import Glibc
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire
import Synchronization

/// The address family a socket was made with (socket()'s domain).
public enum SocketFamily: Sendable {
    case ipv4, ipv6

    /// The families of peers a socket of this family takes, bound to `address` (nil or a
    /// wildcard: none): an IPv4 socket's or one bound to an IPv4 address, IPv4's; one bound
    /// to an IPv6 address or v6-only, IPv6's; else both. Its port is held in theirs.
    func families(boundTo address: IPAddress?, v6Only: Bool) -> AddressFamilies {
        if self == .ipv4 || address?.isIPv4 == true { return .ipv4 }
        return v6Only || address.map({ !$0.isUnspecified }) == true ? .ipv6 : .both
    }
}

/// A TCP socket as application threads use it: the usrreq calls of one socket, each either
/// a message to the owner core or an operation on the shared channel. No call runs protocol
/// code, and data moves without a message except the coalesced "send" and "window" requests.
///
/// Setup calls (bind, listen, connect, close, options) take the socket's own lock: they are
/// rare and must not interleave. send and receive take no lock: any number of threads may
/// use them at once, and they see the connection only through the channel's rings and status.
public final class StreamSocket: @unchecked Sendable {
    /// The side of the stack the socket was made on: its slot and records are the client's,
    /// and all it knows of the stack is what the client says.
    public let client: StackClient
    public let channel: SocketChannel

    /// `stopped`: a listener that shutdown() stopped (Linux's TCP_CLOSE with its port):
    /// listen() starts it again; every other call answers as for a closed socket.
    enum Phase { case fresh, connecting, connected, listening, stopped, closed }
    let setup = PthreadLock()
    // Guarded by `setup`.
    nonisolated(unsafe) var phase: Phase
    nonisolated(unsafe) var boundPort: UInt16?
    /// The address bind() named, nil for the wildcard (getsockname says which).
    nonisolated(unsafe) var boundAddress: IPAddress?
    /// AF_INET or AF_INET6: what addresses the program names it by; an IPv6 socket reaches
    /// IPv4 peers at their mapped addresses unless `v6Only` (IPV6_V6ONLY).
    public let family: SocketFamily
    nonisolated(unsafe) var v6OnlyFlag = false
    /// The TCP options (TCPSettings: the client's defaults until the program changes one).
    nonisolated(unsafe) var settings: TCPSettings
    var configuration: TCPConfiguration {
        get { settings.configuration }
        set { settings = TCPSettings(newValue) }
    }
    nonisolated(unsafe) var listenQueue: ListenQueue?
    /// The listener slot's name, from listen() to close (its views: this socket's and each core's).
    nonisolated(unsafe) var listenerName: SocketHandle?
    nonisolated(unsafe) var tuple: FourTuple?
    /// SO_LINGER: nil off; 0 close resets; n > 0 close waits up to n seconds for the peer's ACK.
    nonisolated(unsafe) var lingerSeconds: Int?
    /// IP_BIND_ADDRESS_NO_PORT: a bind to port 0 names the address only; connect or listen
    /// picks the port.
    nonisolated(unsafe) var bindAddressNoPort = false
    /// SO_REUSEPORT as set before bind: the port may be shared with other sockets that set it.
    nonisolated(unsafe) var reusePort = false
    /// SO_REUSEADDR as set before bind, listen or connect: weighed against the connections
    /// on the port (a port in TIME-WAIT is bound again only if both set it).
    nonisolated(unsafe) var reuseAddress = false
    /// An IPv6 socket's IP_TOS and IP_TTL, for a connection to an IPv4 peer (at its mapped
    /// address), where Linux uses them in place of the IPv6 pair in `configuration`.
    nonisolated(unsafe) var mappedMarking = IPMarking.none
    /// Whether the connection's peer is an IPv4 one: known from connect or accept.
    nonisolated(unsafe) var peerIsIPv4: Bool?
    /// Where connect() sent the connection (the exec hand-off of one still connecting).
    nonisolated(unsafe) var connectingTo: Endpoint?
    /// TCP_QUICKACK as last set (Linux reports 1 until a program asks for delayed ACKs).
    nonisolated(unsafe) var quickAck = true
    /// TCP_DEFER_ACCEPT as Linux keeps it: SYN-ACK retransmissions, not seconds.
    nonisolated(unsafe) var deferAcceptRetransmissions: UInt8 = 0
    /// SO_RCVLOWAT (at least 1) and TCP_NOTSENT_LOWAT (0: no limit), read lock-free by
    /// readiness, recv and send (StreamSocket+LowWater).
    let receiveLowWater = Atomic<Int>(1)
    let notSentLowWater = Atomic<Int>(0)

    /// The socket's name in request records (`SocketHandle.word`; `noHandle` until connect
    /// or accept registers it, and again once close let it go).
    let handleWord = Atomic<UInt64>(StreamSocket.noHandle)
    static let noHandle = UInt64.max // slot UInt32.max, past every table

    let nonBlockingFlag = Atomic<Bool>(false)
    /// SO_RCVTIMEO and SO_SNDTIMEO in nanoseconds (0: wait forever).
    let receiveTimeout = Atomic<Int>(0)
    let sendTimeout = Atomic<Int>(0)

    /// A new, unconnected socket of `client`.
    public init(client: StackClient, doorbell: Doorbell? = nil, family: SocketFamily = .ipv4) {
        self.client = client
        self.family = family
        settings = client.tcpDefaults
        let (send, receive) = (client.tcpConfiguration.sendBufferSize, client.tcpConfiguration.receiveBufferSize)
        // In a slot of the socket table: the same slot names it in requests once it connects.
        channel = SocketChannel(in: client.sockets, sendCapacity: send, receiveCapacity: receive, doorbell: doorbell)
            ?? SocketChannel(sendCapacity: send, receiveCapacity: receive, doorbell: doorbell ?? Doorbell())
        phase = .fresh
    }

    /// Set once connect() has reported a failure: Linux's socket is unconnected again then,
    /// and may connect anew (guarded by `setup`).
    nonisolated(unsafe) var failureReported = false
    /// Whether connect() must start over on a fresh socket (`attemptAgain()`).
    public var mayConnectAgain: Bool { setup.locked { failureReported } }

    /// Whether bind() named the port (Linux's SOCK_BINDPORT_LOCK): only such a port outlives
    /// a failed connect; one the stack picked is let go with the failure (guarded by `setup`).
    nonisolated(unsafe) var portNamed = false
    /// Set on the socket that takes the place of one whose connect failed: Linux's socket
    /// is no longer unconnected then, and listen() says EINVAL (guarded by `setup`).
    nonisolated(unsafe) var listenRefused = false

    /// The socket a later call runs on after a failed connect (a new connect(), or a bind):
    /// the same doorbell (pollers and epoll registrations carry over), options, blocking
    /// mode, bound address, and the bound port if the program named it; this one is closed
    /// (letting go of a port the stack picked). The shim's handle points to the new one
    /// from then on.
    public func attemptAgain() -> StreamSocket {
        let fresh = StreamSocket(client: client, doorbell: channel.doorbell, family: family)
        setup.locked {
            carryOptions(to: fresh)
            if portNamed {
                fresh.boundPort = boundPort
                fresh.portNamed = true
                if let port = boundPort {
                    let families = listenerFamilies
                    channel.recordBoundPort(nil, families: families)
                    fresh.channel.recordBoundPort(port, families: families)
                }
                boundPort = nil // now the new socket's to release
            }
            fresh.boundAddress = boundAddress
            fresh.v6OnlyFlag = v6OnlyFlag
            fresh.listenRefused = true
        }
        close()
        return fresh
    }

    /// What a socket that takes this one's place keeps (attemptAgain): TCP options,
    /// linger, blocking mode and timeouts. The caller holds `setup`.
    func carryOptions(to successor: StreamSocket) {
        successor.settings = settings
        successor.channel.setOutputOption(NETMP_OUTPUT_CORK, configuration.cork)
        successor.channel.setOutputOption(NETMP_OUTPUT_NODELAY, configuration.noDelay)
        successor.lingerSeconds = lingerSeconds
        successor.reusePort = reusePort
        successor.reuseAddress = reuseAddress
        successor.nonBlocking = nonBlocking
        successor.setTimeouts(receive: receiveTimeout.load(ordering: .relaxed), send: sendTimeout.load(ordering: .relaxed))
    }

    /// A connection a listener accepted: the core named it in the socket table, which
    /// holds its channel until this socket's close record.
    init(client: StackClient, accepted: AcceptedConnection, channel: SocketChannel, family: SocketFamily) {
        self.client = client
        self.family = family
        settings = client.tcpDefaults
        self.channel = channel
        tuple = accepted.tuple
        peerIsIPv4 = accepted.tuple.remote.address.isIPv4
        phase = .connected
        handleWord.store(accepted.handle.word, ordering: .releasing)
    }

    /// A socket dropped without close() (a failed accept, a caller's error path) still
    /// gives its handle back.
    deinit { releaseHandle() }

    var handle: SocketHandle? {
        let word = handleWord.load(ordering: .acquiring)
        return word == Self.noHandle ? nil : SocketHandle(word: word)
    }

    /// Names the channel's slot in the socket table; false when the socket has no slot (the
    /// table was full when it was made).
    func register() -> Bool {
        guard let lease = channel.lease, let handle = client.sockets.register(kind: .stream, in: lease) else { return false }
        handleWord.store(handle.word, ordering: .releasing)
        return true
    }

    /// Lets the handle go, once: through the owner core with the socket's last record (a
    /// close, or only the release when the connection is already gone), or here when no
    /// core ever saw it.
    func releaseHandle(abort: Bool = false) {
        let word = handleWord.exchange(Self.noHandle, ordering: .acquiringAndReleasing)
        guard word != Self.noHandle else { return }
        let handle = SocketHandle(word: word)
        if ownerCore >= 0 {
            var close = Request(.close, handle)
            close.abort = abort
            client.request(close, to: ownerCore)
        } else {
            client.sockets.release(handle)
        }
    }

    public var nonBlocking: Bool {
        get { nonBlockingFlag.load(ordering: .relaxed) }
        set { nonBlockingFlag.store(newValue, ordering: .relaxed) }
    }

    // MARK: Addresses

    /// bind(): `address` must be one of the stack's own or a wildcard (0.0.0.0; for an IPv6
    /// socket :: or, unless IPV6_V6ONLY, an IPv4 one mapped); port 0 picks an ephemeral port.
    public func bind(_ endpoint: Endpoint) throws(SocketError) {
        try setup.locked { () throws(SocketError) in
            guard phase == .fresh, boundPort == nil else { throw SocketError.invalidArgument }
            let address = endpoint.address
            try client.checkBindAddress(address, family: family, v6Only: v6OnlyFlag)
            // The socket's own family's wildcard is no address; an IPv6 socket bound to
            // ::ffff:0.0.0.0 keeps it (IPv4's wildcard: it listens for IPv4 only).
            let wildcard = family == .ipv4 ? address.isUnspecified : address.bits.isUnspecified
            let bound = wildcard ? nil : address
            if bindAddressNoPort && endpoint.port == 0 {
                boundAddress = bound
                return
            }
            let families = family.families(boundTo: bound, v6Only: v6OnlyFlag)
            switch client.reservePort(endpoint.port, datagram: false, families: families, shared: reusePort, reuseAddress: reuseAddress) {
            case .success(let port):
                boundPort = port
                channel.recordBoundPort(port, families: families)
            case .failure(let error): throw error
            }
            portNamed = endpoint.port != 0
            boundAddress = bound
        }
    }

    /// getsockname().
    public var localAddress: Endpoint {
        learnTuple()
        return setup.locked {
            if let tuple { return tuple.local }
            let wildcard = family == .ipv4 ? IPAddress(IPv4Address.any) : IPAddress(IPv6Address.any)
            return Endpoint(boundAddress ?? wildcard, boundPort ?? 0)
        }
    }

    /// IPV6_V6ONLY: an IPv6 socket that reaches IPv6 peers only. Fixed once bound (Linux).
    public var v6Only: Bool { setup.locked { v6OnlyFlag } }
    public func setV6Only(_ on: Bool) throws(SocketError) {
        try setup.locked { () throws(SocketError) in
            guard family == .ipv6 else { throw SocketError.optionNotSupported }
            guard boundPort == nil, phase == .fresh else { throw SocketError.invalidArgument }
            v6OnlyFlag = on
        }
    }

    /// The families of connections a listener takes, and whose namespaces its port is
    /// held in (fixed once bound: IPV6_V6ONLY cannot change then).
    var listenerFamilies: AddressFamilies { family.families(boundTo: boundAddress, v6Only: v6OnlyFlag) }

    /// getpeername(): ENOTCONN until connected.
    public func peerAddress() throws(SocketError) -> Endpoint {
        learnTuple()
        let known: FourTuple? = setup.locked { phase == .connected || phase == .connecting ? tuple : nil }
        guard let known, channel.status.contains(.established) else { throw SocketError.notConnected }
        return known.remote
    }

    // MARK: Listening

    /// listen(): every core gets its own copy of the listener.
    public func listen(backlog: Int = 128) throws(SocketError) {
        if client.stackGone { throw SocketError.networkDown }
        try setup.locked { () throws(SocketError) in
            if phase == .listening { return }
            if phase == .stopped { return try listenAgain() }
            guard phase == .fresh, !listenRefused else { throw SocketError.invalidArgument }
            var port: UInt16
            if let bound = boundPort { port = bound } else {
                switch client.reservePort(0, datagram: false, families: listenerFamilies, shared: reusePort,
                                          reuseAddress: reuseAddress) {
                case .success(let p): port = p
                case .failure(let e): throw e
                }
            }
            // The accept queues in a slot of their own, which every core views by its name.
            guard let queue = ListenQueue(in: client.sockets, port: port, backlog: min(max(backlog, 1), 4096),
                                          cores: client.cores, doorbell: channel.doorbell),
                  let name = client.sockets.register(kind: .listener, in: queue.lease) else {
                if boundPort == nil { client.releasePort(port, datagram: false, families: listenerFamilies) }
                throw SocketError.noBufferSpace
            }
            boundPort = port
            channel.recordBoundPort(port, families: listenerFamilies)
            listenQueue = queue
            listening.store(true, ordering: .releasing) // after listenQueue: readiness reads it lock-free
            startListening(queue, name: name, port: port)
        }
    }

    /// The cores listen on `port` with `queue`, named `name` (the caller holds `setup`).
    private func startListening(_ queue: ListenQueue, name: SocketHandle, port: UInt16) {
        for _ in 0..<client.cores { client.sockets.hold(name.slot) } // for each core's view
        // Deferral first: the cores take connections as soon as they listen.
        queue.setDeferAccept(seconds: Self.seconds(forRetransmissions: deferAcceptRetransmissions))
        var request = Request(.listen, name)
        request.localPort = port
        request.families = listenerFamilies
        request.shared = reusePort
        request.reuseAddress = reuseAddress // for the connections it makes
        // Before the cores listen: their first SYN takes the socket's options.
        queue.publishOptions(ConnectOptions(configuration), mapped: mappedMarking, synRetries: listenerSYNRetries)
        client.onEveryCore(request)
        listenerName = name
        phase = .listening
    }

    /// listen() on a listener that shutdown() stopped, as Linux listens again: on its port,
    /// with its accept queues (their size is the first listen()'s backlog), which the cores
    /// take by a new name. The caller holds `setup`.
    private func listenAgain() throws(SocketError) {
        guard let queue = listenQueue, let port = boundPort,
              let name = client.sockets.register(kind: .listener, in: queue.lease) else { throw SocketError.noBufferSpace }
        // Before the cores can queue a connection: accept() and poll see a listener again.
        closing.store(false, ordering: .releasing)
        listenerShut.store(false, ordering: .releasing)
        startListening(queue, name: name, port: port)
    }

    /// accept(): takes from the cores' accept queues in turn; blocks unless non-blocking.
    public func accept() throws(SocketError) -> StreamSocket {
        guard let queue: ListenQueue = setup.locked({ phase == .listening ? listenQueue : nil }) else {
            throw SocketError.invalidArgument
        }
        let deadline = deadline(receiveTimeout)
        while true {
            if let connection = queue.pop() {
                // Resolved by the only thread that holds the handle: nobody can release it
                // meanwhile. (Only a table entry overwritten by a bug could fail this.)
                guard client.sockets.resolves(connection.handle, as: .stream),
                      let channel = SocketChannel(adopting: connection.handle.slot, in: client.sockets) else { continue }
                return StreamSocket(client: client, accepted: connection, channel: channel, family: family)
            }
            guard setup.locked({ phase == .listening }) else { throw SocketError.invalidArgument }
            if client.stackGone { throw SocketError.networkDown }
            if nonBlocking { throw SocketError.wouldBlock }
            switch block(on: queue.arrivals, until: deadline, ready: {
                queue.pending > 0 || closing.load(ordering: .acquiring) || client.stackGone
            }) {
            case .ready: break
            case .timedOut: throw SocketError.wouldBlock
            case .interrupted: throw SocketError.interrupted
            }
        }
    }
    /// Connections waiting for accept() (0 unless listening).
    public var listenQueueDepth: Int { setup.locked { listenQueue?.pending ?? 0 } }

    /// Set once listen() made `listenQueue` (which never changes after).
    let listening = Atomic<Bool>(false)

    /// Neither listening nor connecting yet (nor closed): such a socket may still move to the
    /// kernel (a loopback destination).
    public var isFresh: Bool { setup.locked { phase == .fresh } }
    /// Connecting, connected or listening: a connect() then answers for the state whatever
    /// address it names (Linux's inet_stream_connect looks at the state first).
    public var hasBegun: Bool { setup.locked { phase == .connecting || phase == .connected || phase == .listening } }
    /// Connecting or connected (Linux's states other than CLOSE and LISTEN, for the options
    /// it takes only in those).
    public var isConnection: Bool { setup.locked { phase == .connecting || phase == .connected } }

    /// poll(2)'s view of the socket, computed from the published status and the rings.
    public var readiness: PollEvents {
        if listening.load(ordering: .acquiring) {
            if listenerShut.load(ordering: .acquiring) { return [.writable, .hangUp] }
            return (listenQueue?.pending ?? 0) > 0 || client.stackGone ? .readable : [] // accept says why
        }
        let status = channel.status
        guard status.contains(.attached) else { return [.writable, .hangUp] } // never connected, as Linux says
        if status.contains(.failed) {
            var events: PollEvents = [.readable, .writable, .hangUp, .readHangUp]
            if channel.error != 0 { events.insert(.error) }
            return events
        }
        var events: PollEvents = []
        // Linux's tcp_poll: reading is shut (RCV_SHUTDOWN) by the peer's FIN from its
        // arrival, unread data or not, and by shutdown(SHUT_RD); either makes the socket
        // readable with POLLRDHUP. Both directions shut is POLLHUP.
        let readingShut = channel.receive.endOfStreamArrived || status.contains(.readShut)
        // An urgent byte that reads skip is no data to read (tcp_stream_is_readable), and
        // one not yet taken by recv(MSG_OOB) is POLLPRI.
        let inline = outOfBandInline.load(ordering: .relaxed)
        var readable = channel.receive.readable
        if readable > 0 && channel.urgentByteIsNext(inline: inline) { readable -= 1 }
        if readable >= receiveLowWater.load(ordering: .relaxed) || readingShut { events.insert(.readable) } // the mark is at least 1
        if readingShut { events.insert(.readHangUp) }
        if channel.urgentPending { events.insert(.priority) }
        if status.contains(.writeShut) {
            events.insert(.writable)
        } else if status.contains(.established) && channel.sendHasAThirdFree && notSentBelowLowWater {
            // Linux's rule (sk_stream_is_writeable): writable once a third of the buffer is
            // free, so a poller wakes to write a batch, not a few bytes; and with
            // TCP_NOTSENT_LOWAT, once less than that waits unsent.
            events.insert(.writable)
        }
        if status.contains(.closed) || (status.contains(.writeShut) && readingShut) { events.insert(.hangUp) }
        return events
    }

    /// Set by close() so that threads blocked in accept() see it.
    let closing = Atomic<Bool>(false)

    // MARK: Connecting

    /// connect(): the connection is born on its owner core. Unbound, it goes to the next core
    /// in turn, which picks an ephemeral port whose 4-tuple hashes to itself; bound, the
    /// 4-tuple is known and names its owner. Non-blocking, it returns EINPROGRESS as soon
    /// as the request is posted; SO_ERROR then tells how it ended.
    public func connect(to remote: Endpoint) throws(SocketError) {
        if client.stackGone { throw SocketError.networkDown }
        let settledEarlier: Bool = try setup.locked { () throws(SocketError) in
            switch phase {
            case .fresh: break
            case .connecting:
                // A non-blocking connect under way: Linux answers the first call after it
                // settled with its outcome (0, or the pending error), EALREADY before.
                let status = channel.status
                if status.isDisjoint(with: [.established, .failed, .closed]) { throw SocketError.alreadyInProgress }
                return true
            case .connected: throw SocketError.alreadyConnected
            case .listening: throw SocketError.alreadyConnected
            case .stopped, .closed: throw SocketError.invalidArgument
            }
            let local = try localAddress(toward: remote)
            let core: Int
            if let port = boundPort {
                core = client.steering.owner(of: FourTuple(local: Endpoint(local, port), remote: remote))
            } else {
                core = client.coreForNewConnection()
            }
            guard handle != nil || register() else { throw SocketError.noBufferSpace }
            phase = .connecting
            // The connection is this core's from now on: the core picks a local port whose
            // tuple hashes to it. Attached before the record goes, so every later record
            // (a send, a close) follows it to the same ring, in order, without waiting for
            // the core to answer: a non-blocking connect costs the caller no thread switch.
            channel.attach(to: core)
            _ = channel.raise(.attached)
            var request = Request(.connect, handle!)
            request.remote = remote
            request.localPort = boundPort ?? 0
            request.shared = reusePort // how the connection holds its port
            request.reuseAddress = reuseAddress
            var options = configuration
            if family == .ipv6 && remote.address.isIPv4 { options.marking = mappedMarking } // an IPv4 peer: IP's pair
            request.options = ConnectOptions(options)
            peerIsIPv4 = remote.address.isIPv4
            connectingTo = remote
            client.sockets.hold(request.handle.slot) // for the core's view of the slot
            if let doorbellSlot = channel.doorbell.slot, doorbellSlot != request.handle.slot {
                client.sockets.hold(doorbellSlot) // and of the first slot's doorbell it keeps
            }
            client.request(request, to: core)
            for (option, value) in optionsAfterConnect() {
                var record = Request(.setOption, handle!)
                record.option = option
                record.value = value
                client.request(record, to: core)
            }
            return false
        }
        if settledEarlier {
            if channel.status.isDisjoint(with: [.failed, .closed]) { try finishConnect(); return }
            setup.locked { phase = .closed; failureReported = true }
            let error = channel.takeError() // SO_ERROR may have taken it already
            throw error != 0 ? SocketError(error) : .connectionAborted
        }
        // A refusal the core gives at once (no local port left, the bound port's tuple in
        // use) arrives as the connection's failure: a blocking connect reports it below, a
        // non-blocking one through SO_ERROR and poll, as any other failed connect.
        if nonBlocking { throw SocketError.inProgress }
        let deadline = deadline(sendTimeout)
        switch block(on: channel.changes, until: deadline, ready: {
            !channel.status.isDisjoint(with: [.established, .failed, .closed])
        }) {
        case .ready:
            do { try finishConnect() } catch {
                setup.locked { if phase == .connecting { phase = .closed; failureReported = true } }
                throw error
            }
        case .timedOut: throw SocketError.inProgress
        case .interrupted: throw SocketError.interrupted // the handshake goes on; connect() again says EALREADY
        }
    }

    /// Checks `remote` as Linux's tcp_v4_connect and tcp_v6_connect do, and gives the local
    /// address the connection will have (the core picks the same). The caller holds `setup`.
    func localAddress(toward remote: Endpoint) throws(SocketError) -> IPAddress {
        if let v4 = remote.address.v4 {
            // An IPv6 socket reaches an IPv4 peer at its mapped address, unless v6-only.
            if family == .ipv6 && v6OnlyFlag { throw SocketError.networkUnreachable }
            guard remote.port != 0, !v4.isUnspecified else { throw SocketError.connectionRefused }
            // No route fails at once, and the socket stays unconnected.
            guard client.routes.nextHop(for: v4) != nil else { throw SocketError.networkUnreachable }
            return IPAddress(client.configuration.address)
        }
        guard family == .ipv6 else { throw SocketError.familyNotSupported }
        let v6 = remote.address.bits
        guard remote.port != 0, !v6.isUnspecified else { throw SocketError.connectionRefused }
        guard !v6.isMulticast else { throw SocketError.networkUnreachable }
        let configuration = client.configuration
        guard configuration.isOnLink(v6) || configuration.acceptRouterAdvertisements else { throw SocketError.networkUnreachable }
        guard let source = configuration.ipv6Source(for: v6) else { throw SocketError.addressNotAvailable }
        return IPAddress(source)
    }

    /// Records the connection's addresses once established, or reports why it failed.
    func finishConnect() throws(SocketError) {
        let status = channel.status
        if status.contains(.established) {
            setup.locked {
                if phase == .connecting { phase = .connected }
                if tuple == nil { tuple = connectedTuple() }
            }
            return
        }
        if status.contains(.failed) || status.contains(.closed) {
            let error = channel.takeError()
            throw error != 0 ? SocketError(error) : .connectionRefused
        }
    }

    /// The 4-tuple, as the owner core wrote it into the slot (it picked the ephemeral port).
    func connectedTuple() -> FourTuple? { channel.publishedTuple }

    /// SO_ERROR: the pending error, taken.
    public func takeError() -> Int32 { channel.takeError() }

    /// A non-blocking connect that completed unseen (no second connect()): the addresses
    /// are asked of the owner on first need. The phase stays `connecting` until connect()
    /// is called again, which then answers 0 as Linux does.
    func learnTuple() {
        guard channel.status.contains(.established) else { return }
        setup.locked { if tuple == nil && (phase == .connecting || phase == .connected) { tuple = connectedTuple() } }
    }

    // MARK: Data

    public struct Flags: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        @inlinable public static var dontWait: Flags { Flags(rawValue: 0x40) }  // MSG_DONTWAIT
        @inlinable public static var peek: Flags { Flags(rawValue: 0x02) }      // MSG_PEEK
        @inlinable public static var waitAll: Flags { Flags(rawValue: 0x100) }  // MSG_WAITALL
        @inlinable public static var urgent: Flags { Flags(rawValue: 0x01) }    // MSG_OOB
    }

    /// send(): copies into the send ring and asks the owner to send, once per owner turn.
    /// Blocking, it returns when every byte is in the ring (as Linux does); non-blocking,
    /// with what fitted, or EAGAIN. EPIPE after shutdown or close (the shim raises SIGPIPE).
    public func send(_ bytes: UnsafeRawBufferPointer, flags: Flags = []) throws(SocketError) -> Int {
        try send(count: bytes.count, flags: flags) { done, room, end, mark in
            channel.send.write(UnsafeRawBufferPointer(rebasing: bytes[done..<(done + room)]), end: &end, beforeCommit: mark)
        }
    }

    /// writev() and sendmsg(): the pieces as one write, each part of it that fits the ring
    /// appended and committed at once, so the owner never sends a piece alone that came
    /// with others (an HTTP header before its body).
    public func send(gathering pieces: UnsafeBufferPointer<iovec>, flags: Flags = []) throws(SocketError) -> Int {
        var total = 0
        for piece in pieces {
            let (sum, overflow) = total.addingReportingOverflow(piece.iov_len)
            guard !overflow, piece.iov_len >= 0 else { throw SocketError.invalidArgument } // past SSIZE_MAX, as Linux says
            guard piece.iov_len == 0 || piece.iov_base != nil else { throw SocketError.fault }
            total = sum
        }
        return try send(count: total, flags: flags) { done, room, end, mark in
            channel.send.write(gathering: pieces, from: done, total: done + room, end: &end, beforeCommit: mark)
        }
    }

    /// The send loop: `write(done, room, &end, mark)` appends up to `room` bytes from `done`
    /// on, telling `mark` (MSG_OOB's, nil otherwise) where they end before committing them.
    private func send(count: Int, flags: Flags, write: (Int, Int, inout Int, ((Int) -> Void)?) -> Int) throws(SocketError) -> Int {
        let wait = !(nonBlocking || flags.contains(.dontWait))
        var deadline: Instant?? = nil
        var done = 0
        while true {
            let status = channel.status
            if status.contains(.failed) {
                let error = channel.takeError()
                if done > 0 { return done }
                throw error != 0 ? SocketError(error) : .brokenPipe
            }
            guard !status.contains(.writeShut), !status.contains(.closed) else {
                if done > 0 { return done }
                throw SocketError.brokenPipe
            }
            guard status.contains(.established) else {
                guard status.contains(.attached) else { throw SocketError.brokenPipe } // never connected
                if !wait { throw SocketError.wouldBlock }
                if deadline == nil { deadline = self.deadline(sendTimeout) }
                switch block(on: channel.changes, until: deadline!, ready: {
                    !channel.status.isDisjoint(with: [.established, .failed, .closed])
                }) {
                case .ready: continue
                case .timedOut: throw SocketError.wouldBlock
                case .interrupted: throw SocketError.interrupted
                }
            }
            let room = roomUnderNotSentLowWater(count - done)
            if room > 0 {
                // From the reservation to the request that announces the bytes, no handler
                // runs (withSignalsDeferred): one that jumped out would leave them uncommitted
                // or unannounced, and the ring stuck behind them.
                let written: Int? = withSignalsDeferred {
                    guard channel.beginWrite() else { return nil } // shut meanwhile: the checks above report it
                    var end = 0
                    // MSG_OOB: the last byte written so far is urgent (Linux's tcp_push moves
                    // SND.UP to the end of the write each time it pushes), marked before the
                    // bytes are committed: an owner that sent them unmarked would lose it.
                    let n = write(done, room, &end, flags.contains(.urgent) ? { [channel] in channel.markUrgentSent(upTo: $0) } : nil)
                    channel.endWrite()
                    if n > 0 { requestOutput() }
                    return n
                }
                guard let written else { continue }
                done += written
            }
            if done == count { return done }
            if !wait {
                if done > 0 { return done }
                throw SocketError.wouldBlock
            }
            if deadline == nil { deadline = self.deadline(sendTimeout) }
            switch block(on: channel.send.writers, until: deadline!, ready: {
                (channel.send.free > 0 && notSentBelowLowWater) || !channel.status.isDisjoint(with: [.failed, .closed, .writeShut])
            }) {
            case .ready: break
            case .timedOut: if done > 0 { return done }; throw SocketError.wouldBlock
            case .interrupted: if done > 0 { return done }; throw SocketError.interrupted
            }
        }
    }

    /// recv(): copies out of the receive ring and asks the owner for a window update, once
    /// per owner turn. 0 at end of stream; ECONNRESET (once) after a reset.
    public func receive(into destination: UnsafeMutableRawBufferPointer, flags: Flags = []) throws(SocketError) -> Int {
        guard destination.count > 0 else { return 0 }
        let wait = !(nonBlocking || flags.contains(.dontWait))
        // Linux's sock_rcvlowat: a blocking read returns once it has SO_RCVLOWAT bytes (or
        // all it asked for), MSG_WAITALL once it has all.
        let target = flags.contains(.waitAll) ? destination.count : min(receiveLowWater.load(ordering: .relaxed), destination.count)
        var deadline: Instant?? = nil
        var done = 0
        while true {
            let rest = UnsafeMutableRawBufferPointer(rebasing: destination[done...])
            let (n, atMark) = channel.readStream(into: rest, inline: outOfBandInline.load(ordering: .relaxed), copied: done,
                                                 peek: flags.contains(.peek))
            if atMark { return done } // a read ends at the urgent mark (SIOCATMARK then says so)
            if n > 0 {
                done += n
                if !flags.contains(.peek) { requestWindowUpdate() }
                if done >= target || flags.contains(.peek) { return done }
                continue
            }
            // End of stream first, the status after: the owner raises a failure before it
            // publishes the end, so an end seen here comes with its failure.
            let atEnd = channel.receive.atEnd
            let status = channel.status
            if status.contains(.readShut) { return done }
            if status.contains(.failed) {
                if done > 0 { return done }
                let error = channel.takeError()
                if error != 0 { throw SocketError(error) }
                return 0
            }
            if atEnd { return done }
            guard status.contains(.attached) else { throw SocketError.notConnected }
            if !wait {
                if done > 0 { return done }
                throw SocketError.wouldBlock
            }
            if deadline == nil { deadline = self.deadline(receiveTimeout) }
            switch block(on: channel.receive.readers, until: deadline!, ready: {
                channel.receive.readable > 0 || channel.receive.atEnd
                    || !channel.status.isDisjoint(with: [.failed, .readShut])
            }) {
            case .ready: break
            case .timedOut: if done > 0 { return done }; throw SocketError.wouldBlock
            case .interrupted: if done > 0 { return done }; throw SocketError.interrupted
            }
        }
    }

    /// recv(MSG_OOB): the urgent byte, as Linux's tcp_recv_urg (EINVAL with SO_OOBINLINE,
    /// or with none to take; EAGAIN, blocking or not, while it is on its way).
    public func receiveUrgent(into destination: UnsafeMutableRawBufferPointer, flags: Flags = []) throws(SocketError) -> Int {
        guard !outOfBandInline.load(ordering: .relaxed) else { throw SocketError.invalidArgument }
        switch channel.readUrgent(into: destination, peek: flags.contains(.peek)) {
        case .success(let n): return n
        case .failure(.none): throw SocketError.invalidArgument
        case .failure(.notYet):
            guard channel.status.contains(.attached) else { throw SocketError.notConnected }
            throw SocketError.wouldBlock
        }
    }

    /// SO_OOBINLINE: urgent bytes are read with the rest of the stream.
    public let outOfBandInline = Atomic<Bool>(false)
    public func setOutOfBandInline(_ on: Bool) { outOfBandInline.store(on, ordering: .relaxed) }

    /// SIOCATMARK: the next byte to read is urgent.
    public var atUrgentMark: Bool { channel.atUrgentMark }

    /// Bytes readable now, a lower bound (FIONREAD).
    public var readable: Int { channel.receive.readable }
    /// Bytes written and not yet acknowledged, an upper bound (SIOCOUTQ).
    public var unacknowledged: Int { channel.send.outstanding }

    /// The bit raised and its request sent with no handler between them: a bit left raised
    /// with no request on its way would hold back every later one.
    func requestOutput() {
        withSignalsDeferred {
            if channel.raise(.outputRequested), let handle { client.request(Request(.output, handle), to: ownerCore) }
        }
    }

    func requestWindowUpdate() {
        withSignalsDeferred {
            if channel.raise(.windowRequested), let handle { client.request(Request(.window, handle), to: ownerCore) }
        }
    }

    var ownerCore: Int { channel.owner }

    // MARK: Ending

    public enum ShutdownHow: Sendable { case read, write, both }

    /// shutdown(): SHUT_WR sends a FIN after the written data; SHUT_RD makes reads return 0.
    /// ENOTCONN, whatever `how`, once the connection is over: Linux's socket is in TCP_CLOSE
    /// then, in TIME-WAIT too (both FINs sent and acknowledged: the owner publishes `drained`
    /// before the end of stream, so a reader that saw the end sees `drained` with it).
    public func shutdown(_ how: ShutdownHow) throws(SocketError) {
        if shutdownListener(how) { return }
        let status = channel.status
        let over = status.contains(.closed)
            || (status.isSuperset(of: [.writeShut, .drained]) && channel.receive.endOfStreamArrived)
        guard status.contains(.attached), !over else { throw SocketError.notConnected }
        if how != .write {
            channel.publishFromApplication(.readShut)
        }
        if how != .read, channel.shutWriting() {
            if let handle { client.request(Request(.shutdownWrite, handle), to: ownerCore) }
            channel.send.writers.wakeAll()
        }
    }

    /// shutdown() of a listener, as Linux's inet_shutdown: SHUT_WR does nothing; shutting
    /// reading stops it listening (tcp_disconnect), so connections never accepted are
    /// reset, a blocked accept() wakes with EINVAL, and poll says writable and hung up, as
    /// for a socket never connected. listen() starts it again (`listenAgain`). The port
    /// stays the socket's until close (Linux lets go of one that listen() picked). False
    /// when the socket is not listening.
    func shutdownListener(_ how: ShutdownHow) -> Bool {
        setup.locked {
            guard phase == .listening else { return false }
            guard how != .write else { return true }
            listenerShut.store(true, ordering: .releasing) // before the ring stopListening gives pollers
            stopListening()
            phase = .stopped
            return true
        }
    }

    /// Set when shutdown() stopped the listener (poll then says writable and hung up).
    let listenerShut = Atomic<Bool>(false)

    /// The listener stops on every core and resets what was never accepted; accept()
    /// waiters and pollers wake. The caller holds `setup` and sets the phase.
    private func stopListening() {
        let queue = listenQueue!
        closing.store(true, ordering: .releasing)
        if let name = listenerName {
            var request = Request(.stopListening, name)
            request.localPort = queue.port
            request.families = listenerFamilies
            client.onEveryCore(request)
        }
        while let never = queue.pop() {
            var reset = Request(.close, never.handle)
            reset.abort = true
            client.request(reset, to: never.core)
            client.sockets.letGo(never.handle.slot) // the hold taken for accept's view
        }
        if let name = listenerName { client.sockets.release(name) } // the cores let their views go
        listenerName = nil
        queue.arrivals.wakeAll()
        channel.doorbell.ring()
    }

    /// close(): a listener stops on every core and resets what was never accepted; a
    /// connection sends its FIN after the data (or a RST: SO_LINGER 0, or unread data, as
    /// Linux does). With SO_LINGER > 0 and blocking, waits for the peer's ACK of everything.
    public func close() {
        setup.locked {
            switch phase {
            case .listening:
                phase = .closed
                stopListening()
            case .connecting, .connected:
                phase = .closed
                let abort = lingerSeconds == 0 || channel.receive.readable > 0
                _ = channel.shutWriting()
                channel.publishFromApplication(.readShut)
                if ownerCore >= 0 {
                    releaseHandle(abort: abort)
                    if let seconds = lingerSeconds, seconds > 0, !abort, !nonBlocking {
                        let deadline = MonotonicClock.now() + .seconds(UInt64(seconds))
                        _ = block(on: channel.changes, until: deadline) {
                            !channel.status.isDisjoint(with: [.drained, .closed])
                        }
                    }
                }
            case .fresh, .stopped, .closed:
                phase = .closed
                releaseHandle() // after a failed connect: the core only lets the handle go
            }
            if let port = boundPort { client.releasePort(port, datagram: false, families: listenerFamilies); boundPort = nil }
        }
    }

    // MARK: Options

    /// Options that live in the engine's configuration: set before connect, they go with
    /// the connect; after, a set-option record takes each to the owner, behind the records
    /// this socket sent before it and ahead of those after, so nobody waits for it (a
    /// getsockopt reads the value kept here).
    func configure(_ change: (inout TCPConfiguration) -> Void, live: [(StreamOption, Int64)]) {
        let connected: Bool = setup.locked {
            change(&configuration)
            publishListenerOptions()
            return phase == .connecting || phase == .connected
        }
        guard connected, let handle else { return }
        for (option, value) in live {
            var request = Request(.setOption, handle)
            request.option = option
            request.value = value
            client.request(request, to: ownerCore)
        }
    }

    /// A listening socket's options changed (under `setup`): the next SYN takes them.
    func publishListenerOptions() {
        guard phase == .listening, let listenQueue else { return }
        listenQueue.publishOptions(ConnectOptions(configuration), mapped: mappedMarking, synRetries: listenerSYNRetries)
    }

    /// TCP_SYNCNT as a listener's connections take it: the number of their SYN-ACK
    /// retransmissions when the socket set one, else 0 (the stack's tcp_synack_retries).
    var listenerSYNRetries: UInt8 {
        configuration.maximumSYNRetransmissions == client.tcpConfiguration.maximumSYNRetransmissions
            ? 0 : UInt8(clamping: configuration.maximumSYNRetransmissions)
    }

    /// IP_TOS and IP_TTL (IPV6_TCLASS and IPV6_UNICAST_HOPS on an IPv6 socket), already
    /// normalised as Linux keeps them: before connect they go with it (the SYN carries
    /// them), after it a record takes them to the owner. `forIPv4Peers`: an IPv6 socket's
    /// IP-level pair, which marks a connection to an IPv4 peer instead. A pair that does not
    /// mark the connection's family is kept and reaches no record.
    public func setMarking(_ marking: IPMarking, forIPv4Peers: Bool = false) {
        let mapped = forIPv4Peers && family == .ipv6
        let live: Bool = setup.locked {
            if mapped { mappedMarking = marking } else { configuration.marking = marking }
            publishListenerOptions()
            guard phase == .connecting || phase == .connected, let peerIsIPv4 else { return false }
            return family == .ipv4 || mapped == peerIsIPv4
        }
        guard live, let handle else { return }
        var request = Request(.setOption, handle)
        request.option = .marking
        request.value = Int64(marking.word)
        client.request(request, to: ownerCore)
    }
    /// The IP-level pair of an IPv6 socket (`setMarking(_:forIPv4Peers:)`).
    public var markingForIPv4Peers: IPMarking { setup.locked { mappedMarking } }

    /// TCP_NODELAY: in the slot's output options at once (the owner honours it for every
    /// later write); the record makes the owner send what it may now send.
    public func setNoDelay(_ on: Bool) {
        channel.setOutputOption(NETMP_OUTPUT_NODELAY, on)
        configure({ $0.noDelay = on }, live: [(.noDelay, on ? 1 : 0)])
    }
    /// TCP_CORK: as TCP_NODELAY; uncorking sends what waited.
    public func setCork(_ on: Bool) {
        channel.setOutputOption(NETMP_OUTPUT_CORK, on)
        configure({ $0.cork = on }, live: [(.cork, on ? 1 : 0)])
    }
    /// SO_KEEPALIVE.
    public func setKeepAlive(_ on: Bool) {
        configure({ $0.keepAlive = on }, live: [(.keepAlive, on ? 1 : 0)])
    }
    /// TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT.
    public func setKeepAliveParameters(idle: Int? = nil, interval: Int? = nil, probes: Int? = nil) {
        let idle = idle.map { max(1, $0) }, interval = interval.map { max(1, $0) }, probes = probes.map { max(1, $0) }
        configure({ c in
            if let idle { c.keepAliveIdle = .seconds(UInt64(idle)) }
            if let interval { c.keepAliveInterval = .seconds(UInt64(interval)) }
            if let probes { c.keepAliveProbes = probes }
        }, live: [idle.map { (.keepAliveIdle, Int64($0)) }, interval.map { (.keepAliveInterval, Int64($0)) },
                  probes.map { (.keepAliveProbes, Int64($0)) }].compactMap { $0 })
    }
    /// TCP_CONGESTION.
    public func setCongestionControl(_ algorithm: CongestionAlgorithm) {
        configure({ $0.congestionControl = algorithm }, live: [(.congestionControl, StreamOption.code(algorithm))])
    }
    /// TCP_MAXSEG (before connect; Linux ignores it after, for what was announced): at most
    /// the stack's own (its MTU's); 0 is that again.
    public func setMaximumSegmentSize(_ mss: Int) {
        let own = client.tcpConfiguration.maximumSegmentSize
        configure({ $0.maximumSegmentSize = mss == 0 ? own : min(max(mss, 88), own) }, live: [])
    }
    /// The options as set (the engine's configuration this socket connects with).
    public var options: TCPConfiguration { setup.locked { configuration } }
    /// SO_LINGER as set.
    public var linger: Int? { setup.locked { lingerSeconds } }
    /// SO_RCVTIMEO / SO_SNDTIMEO as set, in nanoseconds.
    public var timeouts: (receive: Int, send: Int) {
        (receiveTimeout.load(ordering: .relaxed), sendTimeout.load(ordering: .relaxed))
    }
    /// SO_ACCEPTCONN.
    public var isListening: Bool { listening.load(ordering: .acquiring) }

    /// SO_LINGER (nil: off).
    public func setLinger(seconds: Int?) { setup.locked { lingerSeconds = seconds } }
    /// SO_RCVTIMEO / SO_SNDTIMEO in nanoseconds (0: none).
    public func setTimeouts(receive: Int? = nil, send: Int? = nil) {
        if let receive { receiveTimeout.store(max(0, receive), ordering: .relaxed) }
        if let send { sendTimeout.store(max(0, send), ordering: .relaxed) }
    }
    /// SO_RCVBUF, `size` as Linux makes it of the value asked for (doubled, within
    /// net.core.rmem_max's double): the window may grow up to it, or to the ring, which was
    /// made at the stack's full size, where that is less. Only the limit moves (before connect).
    public func setReceiveBuffer(_ size: Int) {
        let size = min(max(size, 0), channel.receive.capacity)
        setup.locked { if phase == .fresh { configuration.receiveBufferSize = size } }
    }
    public var receiveBufferSize: Int { setup.locked { configuration.receiveBufferSize } }
    /// SO_SNDBUF, `size` as Linux makes it: writers of this socket, in every process that
    /// holds it, hold at most that much written and not yet acknowledged (or the ring, where
    /// that is less), and poll says writable once a third of it is free, as Linux's
    /// sk_stream_is_writeable does of sk_sndbuf.
    public func setSendBuffer(_ size: Int) { channel.send.limitWriters(to: size) }

    /// Names `port` as this fresh socket's bound port without asking the stack, so that its
    /// connect record names a port the client may not hold (tests play a hostile client).
    public func forgeBoundPortForTesting(_ port: UInt16) { setup.locked { if phase == .fresh { boundPort = port } } }
    public var sendBufferSize: Int { channel.send.capacity }

    /// TCP_INFO, from the owner, as Linux fills it for the socket: CLOSE without a connection, and CLOSE in
    /// TIME-WAIT too (Linux hands that state to a separate time-wait socket).
    public func info() -> TCPInfo {
        var closed = TCPInfo()
        closed.state = TCPInfo.linuxState(.closed)
        guard ownerCore >= 0, let handle else { return closed }
        var result = client.ask(Request(.query, handle), to: ownerCore) { $0.isEmpty ? closed : TCPInfo(parsing: $0) }
        if result.state == TCPInfo.linuxState(.timeWait) { result.state = TCPInfo.linuxState(.closed) }
        return result
    }

    // MARK: Waiting

    func deadline(_ timeout: borrowing Atomic<Int>) -> Instant? {
        let ns = timeout.load(ordering: .relaxed)
        return ns > 0 ? MonotonicClock.now() + Interval(nanoseconds: UInt64(ns)) : nil
    }

    /// How a blocking wait ended.
    enum Blocked { case ready, timedOut, interrupted }

    /// Sleeps on `word` until `ready` holds or `deadline` passes. A signal whose handler
    /// was installed without SA_RESTART ends the wait (the call then fails with EINTR, as
    /// the kernel's would); other signals do not.
    func block(on word: WaitWord, until deadline: Instant?, ready: () -> Bool) -> Blocked {
        while true {
            var timeout: Int? = nil
            if let deadline {
                let now = MonotonicClock.now()
                guard now < deadline else { return ready() ? .ready : .timedOut }
                timeout = Int((deadline - now).nanoseconds)
            }
            switch word.wait(timeout: timeout, interruptible: true, until: ready) {
            case .ready: return .ready
            case .interrupted: return .interrupted
            case .notYet: continue
            }
        }
    }
}

extension SocketChannel {
    /// A state change made by the application itself (shutdown for reading): published and
    /// every waiter woken, like the owner's.
    func publishFromApplication(_ bits: Status) {
        raise(bits)
        changes.wakeAll()
        receive.readers.wakeAll()
        send.writers.wakeAll()
        doorbell.ring()
    }
}
