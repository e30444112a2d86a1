import NetMPWire

/// The neighbour cache of RFC 826 with the timing of RFC 1122 2.3.2.1: resolved entries
/// expire, unresolved ones retransmit their request a few times and then give up, and
/// packets wait in a short queue while their next hop is being resolved.
public struct ARPCache: Sendable {
    public struct Timing: Sendable {
        /// How long a learned address is trusted (Linux: about 30 s reachable, then stale).
        public var lifetime = Interval.seconds(60)
        /// Time between requests for an unresolved address (RFC 1122: at most one a second).
        public var retryInterval = Interval.seconds(1)
        /// Requests sent before giving up on an address.
        public var maximumRequests = 3
        /// Frames kept per unresolved address; older ones are dropped first. Linux bounds the
        /// queue by bytes (unres_qlen_bytes, 212,992), which holds every fragment of its
        /// largest datagram: 64 frames do too (65,507 bytes leave in 45), so a first datagram
        /// to a new neighbour is not lost for its size.
        public var maximumPending = 64
        /// Entries kept; a full cache evicts expired entries, then refuses to learn more.
        public var capacity = 1024
        public init() {}
    }

    enum Entry: Sendable {
        case resolved(MACAddress, expires: Instant)
        case resolving(requestsSent: Int, nextRequest: Instant, pending: [PendingFrame])
    }

    /// What the caller must do after handing over a packet for an unresolved address.
    public enum EnqueueOutcome: Equatable, Sendable {
        /// The packet waits; send an ARP request now (first packet for this address).
        case sendRequest
        /// The packet waits behind a request already sent.
        case queued
        /// The queue was full: the oldest waiting packet was dropped to make room.
        case queuedDroppingOldest
        /// The cache is full of live entries: the packet was not kept.
        case cacheFull
    }

    /// What `expire` found due.
    public struct Due: Sendable {
        /// Addresses whose request must be sent again.
        public var retry: [IPv4Address] = []
        /// Addresses given up on, with how many packets were dropped.
        public var failed: [(address: IPv4Address, droppedPackets: Int)] = []
    }

    public let timing: Timing
    var entries: [IPv4Address: Entry] = [:]
    var resolvingCount = 0

    public init(timing: Timing = Timing()) { self.timing = timing }

    public var count: Int { entries.count }

    /// The MAC for `address` if it is resolved and still fresh.
    public func lookup(_ address: IPv4Address, now: Instant) -> MACAddress? {
        if case .resolved(let mac, let expires)? = entries[address], now < expires { return mac }
        return nil
    }

    /// Records `address` at `mac` and returns the packets that were waiting for it (frames
    /// with their destination MAC still to fill in). `create` is false for the RFC 826
    /// "merge" case: update an existing entry, but do not add one for a stranger.
    public mutating func learn(_ address: IPv4Address, at mac: MACAddress, now: Instant, create: Bool = true) -> [PendingFrame] {
        let existing = entries[address]
        guard existing != nil || create else { return [] }
        if existing == nil && !makeRoom(now: now) { return [] }
        var waiting: [PendingFrame] = []
        if case .resolving(_, _, let pending)? = existing {
            waiting = pending
            resolvingCount -= 1
        }
        entries[address] = .resolved(mac, expires: now + timing.lifetime)
        return waiting
    }

    /// Keeps `frame` until `address` resolves.
    public mutating func enqueue(_ frame: PendingFrame, for address: IPv4Address, now: Instant) -> EnqueueOutcome {
        switch entries[address] {
        case .resolving(let sent, let next, var pending)?:
            let overflow = pending.count >= timing.maximumPending
            if overflow { pending.removeFirst() }
            pending.append(frame)
            entries[address] = .resolving(requestsSent: sent, nextRequest: next, pending: pending)
            return overflow ? .queuedDroppingOldest : .queued
        case .resolved?:
            // Expired (a fresh entry would have been found by lookup): resolve again.
            entries[address] = nil
            return enqueue(frame, for: address, now: now)
        case nil:
            guard makeRoom(now: now) else { return .cacheFull }
            entries[address] = .resolving(requestsSent: 1, nextRequest: now + timing.retryInterval, pending: [frame])
            resolvingCount += 1
            return .sendRequest
        }
    }

    /// The next instant `expire` has work to do, if any address is being resolved.
    public var nextDeadline: Instant? {
        guard resolvingCount > 0 else { return nil }
        var earliest: Instant? = nil
        for case .resolving(_, let next, _) in entries.values where earliest == nil || next < earliest! {
            earliest = next
        }
        return earliest
    }

    /// Advances the request timers: which addresses to ask again, which to give up on.
    public mutating func expire(now: Instant) -> Due {
        var due = Due()
        guard resolvingCount > 0 else { return due }
        for (address, entry) in entries {
            guard case .resolving(let sent, let next, let pending) = entry, next <= now else { continue }
            if sent >= timing.maximumRequests {
                entries[address] = nil
                resolvingCount -= 1
                due.failed.append((address, pending.count))
            } else {
                entries[address] = .resolving(requestsSent: sent + 1, nextRequest: now + timing.retryInterval, pending: pending)
                due.retry.append(address)
            }
        }
        return due
    }

    /// Makes space for one more entry by removing expired ones; false if none could go.
    mutating func makeRoom(now: Instant) -> Bool {
        guard entries.count >= timing.capacity else { return true }
        for (address, entry) in entries {
            if case .resolved(_, let expires) = entry, expires <= now { entries[address] = nil }
        }
        return entries.count < timing.capacity
    }
}

/// A frame waiting for its next hop's address, with what it asks of the link (a TCP
/// super-segment stays one, and keeps its offload request).
public struct PendingFrame: Sendable {
    public var bytes: [UInt8]
    public var offload: FrameOffload
    public init(_ bytes: [UInt8], offload: FrameOffload = .none) { self.bytes = bytes; self.offload = offload }
}
