import CNetMPChannel
import NetMPTCP
import NetMPWire
import Synchronization

/// A listening socket's options in its listen slot, which the connections it makes take
/// from their SYN on, as Linux's clone of the listening socket does: the MSS offered in
/// the SYN-ACK, the receive buffer and its window scale, keepalive, TCP_NODELAY and
/// TCP_CORK, the congestion algorithm, IP_TOS and IP_TTL on the SYN-ACK, and TCP_SYNCNT as
/// the number of SYN-ACK retransmissions (Linux's icsk_syn_retries of the listener). The application
/// writes them at listen and at each setsockopt while listening (one writer: the socket's
/// setup lock), with the version odd while it writes; a core reads them at each SYN and
/// keeps what it built until the version moves. What a client wrote that no application
/// could have set leaves the stack's configuration (ConnectOptions' checks).
extension ListenQueue {
    var optionsVersion: UnsafeMutablePointer<Atomic<UInt32>> { lease.words.atomic(UInt32.self, at: Self.offset(\Slot.options_version)) }

    /// The application: the listening socket's options now; `mapped`: an IPv6 listener's
    /// marking for its IPv4 peers; `synRetries`: TCP_SYNCNT if the socket set it (0: not).
    public func publishOptions(_ options: ConnectOptions, mapped: IPMarking, synRetries: UInt8 = 0) {
        let words = lease.words
        let version = optionsVersion.pointee.load(ordering: .relaxed)
        optionsVersion.pointee.store(version | 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        words.storeBytes(of: options.raw, toByteOffset: Self.offset(\Slot.options), as: netmp_stream_options.self)
        words.storeBytes(of: mapped.typeOfService, toByteOffset: Self.offset(\Slot.mapped_tos), as: UInt8.self)
        words.storeBytes(of: mapped.timeToLive, toByteOffset: Self.offset(\Slot.mapped_ttl), as: UInt8.self)
        words.storeBytes(of: synRetries, toByteOffset: Self.offset(\Slot.syn_retries), as: UInt8.self)
        optionsVersion.pointee.store((version | 1) &+ 1, ordering: .releasing)
    }

    /// A core: the configuration a connection this listener makes starts with (`base`
    /// where the socket published none, or something no application could have set);
    /// `ipv4Peer`: an IPv6 listener's IPv4 peer takes the IP-level marking.
    public func connectionConfiguration(base: TCPConfiguration, ipv4Peer: Bool, ipv6Listener: Bool) -> TCPConfiguration {
        let words = lease.words
        let version = optionsVersion.pointee.load(ordering: .acquiring)
        let mapped = ipv6Listener && ipv4Peer
        if version == cachedOptions.version, let cached = mapped ? cachedOptions.mapped : cachedOptions.own { return cached }
        guard version != 0, version & 1 == 0,
              var options = ConnectOptions(words.load(fromByteOffset: Self.offset(\Slot.options), as: netmp_stream_options.self))
        else { return base }
        if mapped {
            options.marking = IPMarking(typeOfService: words.load(fromByteOffset: Self.offset(\Slot.mapped_tos), as: UInt8.self),
                                        timeToLive: words.load(fromByteOffset: Self.offset(\Slot.mapped_ttl), as: UInt8.self))
        }
        let synRetries = words.load(fromByteOffset: Self.offset(\Slot.syn_retries), as: UInt8.self)
        // Torn by a write under way: the stack's this once.
        atomicMemoryFence(ordering: .acquiring)
        guard optionsVersion.pointee.load(ordering: .relaxed) == version, var built = options.configuration(from: base) else { return base }
        if (1...127).contains(synRetries) { built.maximumSYNACKRetransmissions = Int(synRetries) } // Linux's TCP_SYNCNT range
        if cachedOptions.version != version { cachedOptions = (version, nil, nil) }
        if mapped { cachedOptions.mapped = built } else { cachedOptions.own = built }
        return built
    }
}
