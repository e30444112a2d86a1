import Glibc
import NetMPStack
import NetMPSystem
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
    /// UDP_SEGMENT: each send is cut into datagrams of this many bytes (0: off).
    let segmentSizeWord = Atomic<Int>(0)
    /// IP_MTU_DISCOVER and IPV6_MTU_DISCOVER: how datagrams to IPv4 and IPv6 peers treat the
    /// path's MTU (Linux's default, WANT: larger ones leave in fragments).
    let pathMTUModeIPv4 = Atomic<Int32>(1)
    let pathMTUModeIPv6 = Atomic<Int32>(1)
    let nonBlockingFlag = Atomic<Bool>(false)
    let receiveTimeout = Atomic<Int>(0)
    nonisolated(unsafe) var closed = false
    /// The channel's name in request records, from bind to close (guarded by `setup`;
    /// send reads it after `published`, which bind stores after it).
    nonisolated(unsafe) var handle: SocketHandle?

    /// AF_INET or AF_INET6: an IPv6 socket reaches IPv4 peers at their mapped addresses
    /// too, unless `v6Only` (IPV6_V6ONLY).
    public let family: SocketFamily
    nonisolated(unsafe) var v6OnlyFlag = false
    /// The address bind named, unless it was the socket's own family's wildcard (an IPv6
    /// socket bound to ::ffff:0.0.0.0 keeps it: it takes IPv4 only). Guarded by `setup`.
    nonisolated(unsafe) var boundName: IPAddress?
    /// connect(): the address datagrams to the peer leave from, which getsockname shows
    /// on a socket bound to a wildcard until the association is dissolved (Linux).
    nonisolated(unsafe) var connectedSource: IPAddress?
    /// IP_BIND_ADDRESS_NO_PORT (guarded by `setup`): a bind to port 0 names the address
    /// only, and the port waits for the first send or connect (`addressOnly`).
    nonisolated(unsafe) var bindAddressNoPort = false
    nonisolated(unsafe) var addressOnly: IPAddress?
    /// SO_REUSEPORT as set before bind (guarded by `setup`): the port may be shared with
    /// other sockets that set it, each taking flows by their hash.
    nonisolated(unsafe) var reusePort = false
    /// SO_REUSEADDR as set before bind (guarded by `setup`): sockets that all set it share
    /// a port (multicast receivers do), as Linux's UDP lets them.
    nonisolated(unsafe) var reuseAddress = false
    /// IP_MULTICAST_TTL, _LOOP, _ALL and IPv6's (guarded by `setup`): kept here until bind
    /// makes the channel, and in its slot from then on (DatagramSocket+Multicast).
    nonisolated(unsafe) var multicastKept = MulticastOptions()
    /// IP_MULTICAST_IF as set: the address and interface index, kept for getsockopt (one
    /// interface and one IPv4 address: datagrams to groups leave from it either way).
    nonisolated(unsafe) var multicastInterfaceKept = (address: IPv4Address.any, index: UInt32(0))
    /// IPV6_MULTICAST_IF as set: an interface index.
    nonisolated(unsafe) var multicastInterface6Kept: UInt32 = 0
    /// IP_RECVERR and IPV6_RECVERR (guarded by `setup`): kept until bind makes the channel.
    nonisolated(unsafe) var receiveErrorsKept = (ipv4: false, ipv6: false)
    /// The groups joined (guarded by `setup`), in the order joined; told to every core
    /// once bound.
    nonisolated(unsafe) var groupsJoined: [IPAddress] = []

    /// A new UDP socket of `client`.
    public init(client: StackClient, family: SocketFamily = .ipv4) {
        self.client = client
        self.family = family
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
    /// UDP_SEGMENT (0 to 65,535, as udp_lib_setsockopt takes it).
    public var segmentSize: Int {
        get { segmentSizeWord.load(ordering: .relaxed) }
        set { segmentSizeWord.store(newValue, ordering: .relaxed) }
    }
    /// SO_RCVTIMEO in nanoseconds (0: none).
    public func setReceiveTimeout(_ ns: Int) { receiveTimeout.store(max(0, ns), ordering: .relaxed) }

    /// IP_TOS and IP_TTL (IPv6's pair on an IPv6 socket), normalised as Linux keeps them:
    /// kept here until bind makes the channel, and in the channel's slot from then on,
    /// where the home core reads them as datagrams leave. `mappedMarkingKept` is the pair
    /// datagrams to IPv4 peers carry: an IPv6 socket's IP-level one (Linux's ip_setsockopt
    /// on an IPv6 socket), an IPv4 socket's only one. Guarded by `setup`.
    nonisolated(unsafe) var markingKept = IPMarking.none
    nonisolated(unsafe) var mappedMarkingKept = IPMarking.none
    public var marking: IPMarking { setup.locked { markingKept } }
    public var mappedMarking: IPMarking { setup.locked { mappedMarkingKept } }
    /// `forIPv4Peers`: an IPv6 socket's IP_TOS and IP_TTL.
    public func setMarking(_ marking: IPMarking, forIPv4Peers: Bool = false) {
        setup.locked {
            if !forIPv4Peers {
                markingKept = marking
                channel?.marking = marking
            }
            if forIPv4Peers || family == .ipv4 {
                mappedMarkingKept = marking
                channel?.mappedMarking = marking
            }
        }
    }

    /// IP_MTU_DISCOVER (`ipv6`: IPV6_MTU_DISCOVER), 0 to 5 (IP_PMTUDISC_DONT to _OMIT).
    public func setPathMTUDiscovery(_ mode: Int32, ipv6: Bool) {
        if ipv6 { pathMTUModeIPv6.store(mode, ordering: .relaxed) } else { pathMTUModeIPv4.store(mode, ordering: .relaxed) }
    }
    public func pathMTUDiscovery(ipv6: Bool) -> Int32 {
        ipv6 ? pathMTUModeIPv6.load(ordering: .relaxed) : pathMTUModeIPv4.load(ordering: .relaxed)
    }
    /// IP_BIND_ADDRESS_NO_PORT.
    public func setBindAddressNoPort(_ on: Bool) { setup.locked { bindAddressNoPort = on } }
    /// SO_REUSEPORT: taken into account by the next bind.
    public func setReusePort(_ on: Bool) { setup.locked { reusePort = on } }
    /// SO_REUSEADDR: taken into account by the next bind.
    public func setReuseAddress(_ on: Bool) { setup.locked { reuseAddress = on } }
    public var isBindAddressNoPort: Bool { setup.locked { bindAddressNoPort } }

    /// The slot of the socket's channel (bind makes it), and the core that sends its
    /// datagrams and writes its error queue.
    public var boundSlot: UInt32? { channel?.lease?.slot }
    public var homeCore: Int? { channel?.homeCore }

    var channel: DatagramChannel? {
        published.load(ordering: .acquiring).map { Unmanaged<DatagramChannel>.fromOpaque($0).takeUnretainedValue() }
    }

    /// The channel borrowed for the length of `body` (nil before bind): it lives as long as
    /// this socket, so no retain and release, which `channel` costs at every select.
    @inline(__always) func withChannel<Result>(_ body: (DatagramChannel) -> Result) -> Result? {
        guard let raw = published.load(ordering: .acquiring) else { return nil }
        return Unmanaged<DatagramChannel>.fromOpaque(raw)._withUnsafeGuaranteedRef(body)
    }

    /// bind(): the port on every core. Port 0 picks an ephemeral one. The address must be
    /// one of the stack's own or a wildcard (0.0.0.0; for an IPv6 socket :: or, unless
    /// IPV6_V6ONLY, an IPv4 one mapped), as Linux's inet_bind and inet6_bind check it.
    public func bind(_ endpoint: Endpoint) throws(SocketError) { try bind(endpoint, autobind: false) }

    /// `autobind`: the first send or connect binds (a port now, even under
    /// IP_BIND_ADDRESS_NO_PORT).
    func bind(_ endpoint: Endpoint, autobind: Bool) throws(SocketError) {
        try setup.locked { () throws(SocketError) in
            guard !closed, channel == nil else { throw SocketError.invalidArgument }
            let address = endpoint.address
            try client.checkBindAddress(address, family: family, v6Only: v6OnlyFlag, groupsAllowed: true)
            let ownWildcard = family == .ipv4 ? address.isUnspecified : address.bits.isUnspecified
            if bindAddressNoPort && endpoint.port == 0 && !autobind {
                addressOnly = address
                boundName = ownWildcard ? nil : address
                return
            }
            let families = family.families(boundTo: address, v6Only: v6OnlyFlag)
            let port: UInt16
            switch client.reservePort(endpoint.port, datagram: true, families: families, shared: reusePort,
                                      reuseAddress: reuseAddress) {
            case .success(let p): port = p
            case .failure(let e): throw e
            }
            // In a slot of the socket table, named so that every core makes its own view.
            guard let channel = DatagramChannel(in: client.sockets, port: port, cores: client.cores,
                                                homeCore: client.coreForNewConnection(), families: families,
                                                boundAddress: address.isUnspecified ? nil : address),
                  let lease = channel.lease,
                  let handle = client.sockets.register(kind: .datagram, in: lease) else {
                client.releasePort(port, datagram: true, families: families)
                throw SocketError.noBufferSpace
            }
            channel.marking = markingKept
            channel.mappedMarking = mappedMarkingKept
            channel.multicast = multicastKept
            channel.setReceivesErrors(ipv4: receiveErrorsKept.ipv4, ipv6: receiveErrorsKept.ipv6)
            boundName = ownWildcard ? nil : address
            self.handle = handle
            for _ in 0..<client.cores { client.sockets.hold(handle.slot) } // for each core's view
            client.onEveryCore(Request(.datagramBind, handle))
            for group in groupsJoined { tellCores(group, joined: true, handle: handle) } // joined before bind
            let common = placeholderBell.load(ordering: .acquiring)
            if common >= 0 { channel.doorbell.standInPlaceholders(common: common) }
            published.store(UnsafeRawPointer(Unmanaged.passRetained(channel).toOpaque()), ordering: .releasing)
        }
    }

    /// IPV6_V6ONLY: an IPv6 socket that takes and reaches IPv6 peers only. Fixed once
    /// bound (Linux refuses the change with EINVAL).
    public var v6Only: Bool { setup.locked { v6OnlyFlag } }
    public func setV6Only(_ on: Bool) throws(SocketError) {
        try setup.locked { () throws(SocketError) in
            guard family == .ipv6 else { throw SocketError.optionNotSupported }
            guard channel == nil else { throw SocketError.invalidArgument }
            v6OnlyFlag = on
        }
    }

    /// The socket's own family's wildcard: what an unbound socket is named by.
    var wildcard: IPAddress { family == .ipv4 ? IPAddress(IPv4Address.any) : IPAddress(IPv6Address.any) }

    /// The channel, binding an ephemeral port first if the socket has none (as Linux does
    /// on the first send or connect).
    func bound() throws(SocketError) -> DatagramChannel {
        if let channel { return channel }
        let address = setup.locked { addressOnly } ?? wildcard
        do { try bind(Endpoint(address, 0), autobind: true) } catch {
            guard error == .invalidArgument else { throw error } // EINVAL: another thread bound it first
        }
        guard let channel else { throw SocketError.badDescriptor } // closed meanwhile
        return channel
    }

    /// connect(): the default destination, and only its datagrams are received; nil
    /// (AF_UNSPEC) dissolves the association.
    public func connect(to remote: Endpoint?) throws(SocketError) {
        // Bound first, even if the destination is then refused (Linux's inet_dgram_connect).
        let channel = try bound()
        var source: IPAddress? = nil
        if let remote { source = try sourceAddress(toward: remote.address) } // port 0 too, as Linux
        setup.locked { connectedSource = source }
        channel.connect(to: remote)
    }

    /// Checks a destination as Linux's ip4_datagram_connect, udp_sendmsg and their IPv6
    /// twins do, and gives the address datagrams to it leave from.
    func sourceAddress(toward destination: IPAddress) throws(SocketError) -> IPAddress {
        let bound = setup.locked { boundName }
        if let v4 = destination.v4 {
            // An IPv6 socket reaches an IPv4 peer at its mapped address, unless v6-only.
            if family == .ipv6 && (v6OnlyFlag || bound?.isIPv4 == false) { throw SocketError.networkUnreachable }
            if v4.isMulticast {
                try checkMulticastRoute(to: v4)
                return IPAddress(client.configuration.address)
            }
            guard v4.isLimitedBroadcast || v4 == client.subnetBroadcast || client.routes.nextHop(for: v4) != nil else {
                throw SocketError.networkUnreachable
            }
            return IPAddress(client.configuration.address)
        }
        guard family == .ipv6 else { throw SocketError.familyNotSupported }
        if bound?.isIPv4 == true { throw SocketError.familyNotSupported } // bound to IPv4: it sends IPv4 only
        let v6 = destination.bits
        guard v6.isMulticast || client.configuration.isOnLink(v6) || client.configuration.acceptRouterAdvertisements else {
            throw SocketError.networkUnreachable
        }
        if let bound { return bound }
        guard let source = client.configuration.ipv6Source(for: v6) else { throw SocketError.addressNotAvailable }
        return IPAddress(source)
    }

    /// getsockname(): the bound address, or once connected the one datagrams leave from,
    /// or the socket's wildcard; the port (0 before any bind).
    public var localAddress: Endpoint {
        guard let channel else { return setup.locked { Endpoint(boundName ?? wildcard, 0) } }
        return setup.locked { Endpoint(boundName ?? connectedSource ?? wildcard, channel.port) }
    }

    public func peerAddress() throws(SocketError) -> Endpoint {
        guard let peer = channel?.connectedPeer else { throw SocketError.notConnected }
        return peer
    }

    /// The largest payload one IPv4 frame carries: poll reports the socket writable while
    /// one such datagram fits its ring.
    public var maximumPayload: Int { client.mtu - 28 }
    /// The largest datagram to `destination`, as Linux allows it: IPv4's 65,507 bytes
    /// (65,535 less its headers), IPv6's 65,527 (no jumbograms). Larger than the MTU, it
    /// leaves in fragments.
    func maximumPayload(to destination: IPAddress) -> Int { destination.isIPv4 ? 65_507 : 65_527 }
    /// Linux's UDP_MAX_SEGMENTS: the most datagrams one UDP_SEGMENT send may make.
    static let maximumSegments = 128

    /// sendto() / send(): one datagram, all or nothing; with UDP_SEGMENT, datagrams of the
    /// segment size (the last one shorter), all or none.
    /// `marking`: this datagram's own TOS or TTL (sendmsg's control messages); `segment`:
    /// its own UDP_SEGMENT (nil: the socket's).
    public func send(_ bytes: UnsafeRawBufferPointer, to destination: Endpoint? = nil, dontWait: Bool = false,
                     marking: DatagramMarking = .socket, segment: Int? = nil) throws(SocketError) -> Int {
        if client.stackGone { throw SocketError.networkDown }
        let channel = try bound()
        try pendingError(channel)
        guard let target = destination ?? channel.connectedPeer else { throw SocketError.destinationRequired }
        if bytes.count > maximumPayload(to: target.address) {
            // Linux's udp_sendmsg refuses an IPv4 datagram past 65,527 bytes before anything
            // else; a smaller one, and any IPv6 one, is refused by ip_append_data, which
            // queues the error too.
            if !target.address.isIPv4 || bytes.count <= 65_527 { queueMessageTooLong(to: target, channel) }
            throw SocketError.messageTooLong
        }
        let headers = target.address.isIPv4 ? 28 : 48
        let segmentSize = segment ?? self.segmentSize
        // DO, PROBE and INTERFACE set DF: a datagram the path cannot carry whole is refused
        // (Linux's ip_sk_ignore_df), where the other modes send it in fragments. A send to
        // be segmented is checked per segment instead, below.
        if segmentSize == 0, (2...4).contains(pathMTUDiscovery(ipv6: !target.address.isIPv4)),
           bytes.count > client.mtu - headers {
            queueMessageTooLong(to: target, channel)
            throw SocketError.messageTooLong
        }
        if destination != nil { // a connected peer was checked, port 0 included (Linux's udp_sendmsg)
            guard target.port != 0 else { throw SocketError.invalidArgument }
            _ = try sourceAddress(toward: target.address)
        }
        if let v4 = target.address.v4 {
            if v4.isLimitedBroadcast || v4 == client.subnetBroadcast, !broadcast.load(ordering: .relaxed) {
                throw SocketError.permissionDenied
            }
        }
        if segmentSize > 0 {
            // Linux's udp_send_skb: each datagram (one no longer than a segment included)
            // must fit the MTU whatever the DF mode, and a send is 128 segments at most.
            if min(bytes.count, segmentSize) > client.mtu - headers { throw SocketError.messageTooLong }
            if bytes.count > segmentSize * Self.maximumSegments { throw SocketError.invalidArgument }
        }
        // One record per datagram, written together: the home core sends them in order.
        let step = segmentSize > 0 ? segmentSize : max(bytes.count, 1)
        let count = max(1, (bytes.count + step - 1) / step)
        let size = count * DatagramRecord.headerLength + bytes.count
        let wait = !(nonBlocking || dontWait)
        while true {
            // From the reservation to the request that announces the datagrams, no signal
            // handler runs: one that jumped out would leave the ring stuck behind them.
            let queued = withSignalsDeferred {
                let queued = channel.outgoing.writeRecords(total: size) { writer in
                    for index in 0..<count {
                        let range = min(index * step, bytes.count)..<min((index + 1) * step, bytes.count)
                        var header = DatagramRecord.header(length: range.count, to: target, marking: marking)
                        withUnsafeBytes(of: &header) { writer.append($0) }
                        writer.append(UnsafeRawBufferPointer(rebasing: bytes[range]))
                    }
                }
                if queued, channel.requestOutput(), let handle {
                    client.request(Request(.datagramOutput, handle), to: channel.homeCore)
                }
                return queued
            }
            if queued { return bytes.count }
            if !wait { throw SocketError.wouldBlock }
            _ = channel.outgoing.writers.wait { channel.outgoing.free >= size || client.stackGone }
            if client.stackGone { throw SocketError.networkDown }
        }
    }

    /// recvfrom(): the next datagram from any core's queue; `length` is its full size
    /// (bigger than the buffer means it was truncated, MSG_TRUNC).
    public func receive(into buffer: UnsafeMutableRawBufferPointer, peek: Bool = false,
                        dontWait: Bool = false) throws(SocketError) -> (length: Int, from: Endpoint) {
        let (length, arrival) = try receiveWithArrival(into: buffer, peek: peek, dontWait: dontWait)
        return (length, arrival.source)
    }

    /// receive, with what the datagram's headers and arrival say (recvmsg's ancillary data).
    public func receiveWithArrival(into buffer: UnsafeMutableRawBufferPointer, peek: Bool = false,
                                   dontWait: Bool = false) throws(SocketError) -> (length: Int, arrival: DatagramArrival) {
        let channel = try bound()
        let wait = !(nonBlocking || dontWait)
        let timeout = receiveTimeout.load(ordering: .relaxed)
        let deadline = timeout > 0 ? MonotonicClock.now() + Interval(nanoseconds: UInt64(timeout)) : nil
        while true {
            try pendingError(channel)
            if let got = channel.receive(into: buffer, peek: peek) { return got }
            if client.stackGone { throw SocketError.networkDown }
            if !wait { throw SocketError.wouldBlock }
            var remaining: Int? = nil
            if let deadline {
                let now = MonotonicClock.now()
                guard now < deadline else { throw SocketError.wouldBlock }
                remaining = Int((deadline - now).nanoseconds)
            }
            // Reading shut, a blocking read with nothing queued ends (Linux's
            // __skb_wait_for_more_packets): the way a thread in recvfrom is stopped.
            if readShut.load(ordering: .acquiring) { return (0, DatagramArrival(source: Endpoint(wildcard, 0), destination: Endpoint(wildcard, 0))) }
            _ = channel.arrivals.wait(timeout: remaining) {
                channel.hasDatagrams || channel.error != 0 || setup.locked { closed } || client.stackGone
                    || readShut.load(ordering: .acquiring)
            }
            if setup.locked({ closed }) { throw SocketError.badDescriptor }
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
        var shut: PollEvents = readShut.load(ordering: .acquiring) ? [.readable, .readHangUp] : []
        if !shut.isEmpty && writeShut.load(ordering: .acquiring) { shut.insert(.hangUp) }
        let record = DatagramRecord.headerLength + maximumPayload
        guard let (error, readable, writable) = withChannel({ $0.readiness(roomFor: record) }) else {
            return shut.union(.writable)
        }
        // An error pending, or one in the error queue (Linux's datagram_poll).
        var events: PollEvents = error ? [.error] : []
        events.formUnion(shut)
        if readable { events.insert(.readable) }
        if writable { events.insert(.writable) }
        return events
    }

    /// The doorbell poll and epoll wait on (nil before bind: nothing changes for an unbound
    /// socket, which poll reports writable and nothing else).
    public var doorbell: Doorbell? { channel?.doorbell }
    /// The shim made this socket's descriptor a placeholder: the process's common bell,
    /// which its channel's doorbell rings on the application's side (-1: none).
    public let placeholderBell = Atomic<Int32>(-1)
    public var isBroadcast: Bool { broadcast.load(ordering: .relaxed) }
    public var receiveTimeoutNanoseconds: Int { receiveTimeout.load(ordering: .relaxed) }

    /// FIONREAD on UDP: the size of the next datagram.
    public var nextDatagramLength: Int { channel?.nextLength ?? 0 }

    /// Set by shutdown(): reading shut makes a blocking read with nothing queued return 0
    /// and poll say readable; both shut, hung up. (Linux's UDP sends on regardless.)
    let readShut = Atomic<Bool>(false), writeShut = Atomic<Bool>(false)

    /// shutdown(), as Linux's inet_shutdown does it for UDP: the directions are marked
    /// shut and readers and pollers woken whether or not the socket is connected, and an
    /// unconnected one says ENOTCONN (what a program stopping a thread in recvfrom relies on).
    public func shutdown(read: Bool, write: Bool) throws(SocketError) {
        if read { readShut.store(true, ordering: .releasing) }
        if write { writeShut.store(true, ordering: .releasing) }
        if let channel {
            channel.arrivals.wakeAll()
            channel.doorbell.ring()
        }
        if channel?.connectedPeer == nil { throw SocketError.notConnected }
    }

    /// close(): the port leaves every core and is free again.
    public func close() {
        setup.locked {
            guard !closed else { return }
            closed = true
            guard let channel else { return }
            if let handle {
                var request = Request(.datagramUnbind, handle)
                request.localPort = channel.port
                request.families = channel.families
                client.onEveryCore(request)
            }
            // After any output request this thread sent: what was queued still goes out.
            if let handle { client.request(Request(.datagramClose, handle), to: channel.homeCore) }
            handle = nil
            client.releasePort(channel.port, datagram: true, families: channel.families)
            channel.arrivals.wakeAll()
        }
    }
}
