import CNetMPChannel
import NetMPTCP
import NetMPWire
import Synchronization

/// A listening socket's options in its listen slot, which the connections it makes take
/// from their SYN on, as Linux's clone of the listening socket does: the MSS offered in
/// the SYN-ACK, the receive buffer and its window scale, keepalive, TCP_NODELAY and
/// TCP_CORK, the congestion algorithm, IP_TOS and IP_TTL on the SYN-ACK. The application
/// writes them at listen and at each setsockopt while listening (one writer: the socket's
/// setup lock), with the version odd while it writes; a core reads them at each SYN and
/// keeps what it built until the version moves. What a client wrote that no application
/// could have set leaves the stack's configuration (ConnectOptions' checks).
extension ListenQueue {
    var optionsVersion: UnsafeMutablePointer<Atomic<UInt32>> { lease.words.atomic(UInt32.self, at: Self.offset(\Slot.options_version)) }

    /// The application: the listening socket's options now; `mapped`: an IPv6 listener's
    /// marking for its IPv4 peers.
    public func publishOptions(_ options: ConnectOptions, mapped: IPMarking) {
        let words = lease.words
        func put<T>(_ value: T, _ field: PartialKeyPath<Slot>) {
            words.storeBytes(of: value, toByteOffset: Self.offset(field), as: T.self)
        }
        let version = optionsVersion.pointee.load(ordering: .relaxed)
        optionsVersion.pointee.store(version | 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        var flags = NETMP_LISTEN_SET
        if options.noDelay { flags |= NETMP_LISTEN_NODELAY }
        if options.cork { flags |= NETMP_LISTEN_CORK }
        if options.keepAlive { flags |= NETMP_LISTEN_KEEPALIVE }
        put(options.receiveBufferSize, \.receive_buffer)
        put(options.keepAliveIdle, \.keep_idle)
        put(options.keepAliveInterval, \.keep_interval)
        put(options.maximumSegmentSize, \.mss)
        put(UInt16(clamping: options.keepAliveProbes), \.keep_probes)
        put(flags, \.option_flags)
        put(UInt8(StreamOption.code(options.congestionControl)), \.congestion)
        put(options.marking.typeOfService, \.tos)
        put(options.marking.timeToLive, \.ttl)
        put(mapped.typeOfService, \.mapped_tos)
        put(mapped.timeToLive, \.mapped_ttl)
        optionsVersion.pointee.store((version | 1) &+ 1, ordering: .releasing)
    }

    /// A core: the configuration a connection this listener makes starts with (`base`
    /// where the socket published none, or something no application could have set);
    /// `ipv4Peer`: an IPv6 listener's IPv4 peer takes the IP-level marking.
    public func connectionConfiguration(base: TCPConfiguration, ipv4Peer: Bool, ipv6Listener: Bool) -> TCPConfiguration {
        let words = lease.words
        func get<T>(_ field: PartialKeyPath<Slot>, as type: T.Type) -> T {
            words.load(fromByteOffset: Self.offset(field), as: T.self)
        }
        let version = optionsVersion.pointee.load(ordering: .acquiring)
        let mapped = ipv6Listener && ipv4Peer
        if version == cachedOptions.version, let cached = mapped ? cachedOptions.mapped : cachedOptions.own { return cached }
        guard version & 1 == 0, get(\.option_flags, as: UInt8.self) & NETMP_LISTEN_SET != 0 else { return base }
        var options = ConnectOptions()
        let flags = get(\.option_flags, as: UInt8.self)
        options.noDelay = flags & NETMP_LISTEN_NODELAY != 0
        options.cork = flags & NETMP_LISTEN_CORK != 0
        options.keepAlive = flags & NETMP_LISTEN_KEEPALIVE != 0
        options.receiveBufferSize = get(\.receive_buffer, as: UInt32.self)
        options.keepAliveIdle = get(\.keep_idle, as: UInt32.self)
        options.keepAliveInterval = get(\.keep_interval, as: UInt32.self)
        options.maximumSegmentSize = get(\.mss, as: UInt16.self)
        options.keepAliveProbes = UInt32(get(\.keep_probes, as: UInt16.self))
        guard let algorithm = StreamOption.algorithm(Int64(get(\.congestion, as: UInt8.self))) else { return base }
        options.congestionControl = algorithm
        options.marking = mapped ? IPMarking(typeOfService: get(\.mapped_tos, as: UInt8.self), timeToLive: get(\.mapped_ttl, as: UInt8.self))
            : IPMarking(typeOfService: get(\.tos, as: UInt8.self), timeToLive: get(\.ttl, as: UInt8.self))
        // Torn by a write under way: the stack's this once.
        atomicMemoryFence(ordering: .acquiring)
        guard optionsVersion.pointee.load(ordering: .relaxed) == version, let built = options.configuration(from: base) else { return base }
        if cachedOptions.version != version { cachedOptions = (version, nil, nil) }
        if mapped { cachedOptions.mapped = built } else { cachedOptions.own = built }
        return built
    }
}
