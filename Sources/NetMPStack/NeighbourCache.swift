import NetMPWire

/// IPv6's neighbour cache with the reachability states of RFC 4861 7.3.2: INCOMPLETE while
/// a multicast solicitation waits for an answer (packets queue meanwhile), REACHABLE for a
/// while after a solicited advertisement, STALE after that or when only learnt in passing,
/// DELAY when a STALE entry is used (an upper layer may confirm it), and PROBE with unicast
/// solicitations when nothing did. Pure: time comes in, what to send comes out.
public struct NeighbourCache: Sendable {
    /// RFC 4861 10's constants, as Linux uses them.
    public struct Timing: Sendable {
        public var reachableTime = Interval.seconds(30)
        public var retransmitTimer = Interval.seconds(1)
        public var delayFirstProbe = Interval.seconds(5)
        public var maximumMulticastSolicitations = 3
        public var maximumUnicastSolicitations = 3
        /// Packets kept per INCOMPLETE entry, oldest dropped first (as `ARPCache`).
        public var maximumPending = 64
        /// Entries kept; a full cache removes STALE ones, then refuses to learn more.
        public var capacity = 1024
        public init() {}
    }

    public enum State: Equatable, Sendable {
        case incomplete(solicitations: Int, next: Instant)
        case reachable(until: Instant)
        case stale
        case delay(until: Instant)
        case probe(solicitations: Int, next: Instant)
    }

    struct Entry: Sendable {
        var mac: MACAddress
        var state: State
        var isRouter = false
        var pending: [PendingFrame] = []
    }

    /// What `expire` found due.
    public struct Due: Sendable {
        /// INCOMPLETE entries to solicit again, at their solicited-node group.
        public var multicast: [IPv6Address] = []
        /// Entries in PROBE to solicit at the address they had.
        public var unicast: [(address: IPv6Address, mac: MACAddress)] = []
        /// Addresses given up on, with how many packets were dropped.
        public var failed: [(address: IPv6Address, droppedPackets: Int)] = []
    }

    public let timing: Timing
    var entries: [IPv6Address: Entry] = [:]
    /// Entries with a timer running (INCOMPLETE, DELAY, PROBE): `expire` has nothing to do
    /// without them.
    var timed = 0

    public init(timing: Timing = Timing()) { self.timing = timing }

    public var count: Int { entries.count }
    public func state(of address: IPv6Address) -> State? { entries[address]?.state }

    /// The link-layer address to send to `address` now, or nil if it must be resolved. A
    /// REACHABLE entry past its time becomes STALE, and using a STALE one starts DELAY
    /// (7.3.3): the frame goes at once, and a probe follows unless something confirms it.
    public mutating func lookup(_ address: IPv6Address, now: Instant) -> MACAddress? {
        guard var entry = entries[address] else { return nil }
        switch entry.state {
        case .incomplete: return nil
        case .reachable(let until) where now < until: return entry.mac
        case .reachable, .stale:
            entry.state = .delay(until: now + timing.delayFirstProbe)
            timed += 1
            entries[address] = entry
            return entry.mac
        case .delay, .probe: return entry.mac
        }
    }

    /// Keeps `frame` until `address` resolves (an address `lookup` found nothing for).
    public mutating func enqueue(_ frame: PendingFrame, for address: IPv6Address, now: Instant) -> ARPCache.EnqueueOutcome {
        if var entry = entries[address], case .incomplete = entry.state {
            let overflow = entry.pending.count >= timing.maximumPending
            if overflow { entry.pending.removeFirst() }
            entry.pending.append(frame)
            entries[address] = entry
            return overflow ? .queuedDroppingOldest : .queued
        }
        guard entries[address] != nil || makeRoom() else { return .cacheFull }
        if let old = entries[address] { untime(old.state) }
        entries[address] = Entry(mac: .zero, state: .incomplete(solicitations: 1, next: now + timing.retransmitTimer),
                                 pending: [frame])
        timed += 1
        return .sendRequest
    }

    /// What a solicitation or router message's source link-layer option says (7.2.3,
    /// 6.3.4): an unknown sender is created STALE, a changed address makes it STALE, an
    /// INCOMPLETE entry resolves. `create` is false when the message was not for us.
    /// Returns the packets that waited.
    public mutating func learn(_ address: IPv6Address, at mac: MACAddress, isRouter: Bool? = nil, now: Instant,
                               create: Bool = true) -> [PendingFrame] {
        guard var entry = entries[address] else {
            guard create, makeRoom() else { return [] }
            entries[address] = Entry(mac: mac, state: .stale, isRouter: isRouter ?? false)
            return []
        }
        if let isRouter { entry.isRouter = isRouter }
        var waiting: [PendingFrame] = []
        if case .incomplete = entry.state {
            untime(entry.state)
            waiting = entry.pending
            entry.pending = []
            entry.state = .stale
        } else if entry.mac != mac {
            untime(entry.state)
            entry.state = .stale
        }
        entry.mac = mac
        entries[address] = entry
        return waiting
    }

    /// What a neighbour advertisement says (7.2.5). Returns the packets that waited.
    public mutating func advertised(_ advertisement: NeighbourAdvertisement, now: Instant) -> [PendingFrame] {
        let address = advertisement.target
        guard var entry = entries[address] else { return [] } // unsolicited for a stranger: ignored
        let reachable = State.reachable(until: now + timing.reachableTime)
        var waiting: [PendingFrame] = []
        if case .incomplete = entry.state {
            guard let mac = advertisement.targetLinkLayer else { return [] }
            untime(entry.state)
            entry.mac = mac
            entry.state = advertisement.solicited ? reachable : .stale
            waiting = entry.pending
            entry.pending = []
        } else {
            let changed = advertisement.targetLinkLayer.map { $0 != entry.mac } ?? false
            if !advertisement.override && changed {
                // A non-override answer with another address: keep ours, but doubt it.
                if case .reachable = entry.state { entry.state = .stale }
            } else {
                if let mac = advertisement.targetLinkLayer { entry.mac = mac }
                // Solicited: reachable both ways. Unsolicited with a new address: STALE.
                // Otherwise the state stays as it was.
                if let next = advertisement.solicited ? reachable : changed ? State.stale : nil {
                    untime(entry.state)
                    entry.state = next
                }
            }
        }
        entry.isRouter = advertisement.router
        entries[address] = entry
        return waiting
    }

    /// An upper layer saw the neighbour answer (7.3.1: TCP acknowledging new data).
    public mutating func confirm(_ address: IPv6Address, now: Instant) {
        guard var entry = entries[address] else { return }
        if case .incomplete = entry.state { return }
        untime(entry.state)
        entry.state = .reachable(until: now + timing.reachableTime)
        entries[address] = entry
    }

    /// The next instant `expire` has work to do.
    public var nextDeadline: Instant? {
        guard timed > 0 else { return nil }
        var earliest: Instant? = nil
        for entry in entries.values {
            let at: Instant
            switch entry.state {
            case .incomplete(_, let next), .probe(_, let next): at = next
            case .delay(let until): at = until
            case .reachable, .stale: continue
            }
            if earliest.map({ at < $0 }) ?? true { earliest = at }
        }
        return earliest
    }

    /// Advances the timers: which addresses to solicit again, which to give up on.
    public mutating func expire(now: Instant) -> Due {
        var due = Due()
        guard timed > 0 else { return due }
        for (address, var entry) in entries {
            switch entry.state {
            case .incomplete(let sent, let next) where next <= now:
                if sent >= timing.maximumMulticastSolicitations {
                    remove(address)
                    due.failed.append((address, entry.pending.count))
                    continue
                }
                entry.state = .incomplete(solicitations: sent + 1, next: now + timing.retransmitTimer)
                due.multicast.append(address)
            case .delay(let until) where until <= now:
                entry.state = .probe(solicitations: 1, next: now + timing.retransmitTimer)
                due.unicast.append((address, entry.mac))
            case .probe(let sent, let next) where next <= now:
                if sent >= timing.maximumUnicastSolicitations {
                    remove(address)
                    due.failed.append((address, 0))
                    continue
                }
                entry.state = .probe(solicitations: sent + 1, next: now + timing.retransmitTimer)
                due.unicast.append((address, entry.mac))
            default: continue
            }
            entries[address] = entry
        }
        return due
    }

    mutating func remove(_ address: IPv6Address) {
        if let entry = entries.removeValue(forKey: address) { untime(entry.state) }
    }

    mutating func untime(_ state: State) {
        switch state {
        case .incomplete, .delay, .probe: timed -= 1
        case .reachable, .stale: break
        }
    }

    /// Makes space for one more entry by removing STALE ones; false if none could go.
    mutating func makeRoom() -> Bool {
        guard entries.count >= timing.capacity else { return true }
        for (address, entry) in entries where entry.state == .stale { entries[address] = nil }
        return entries.count < timing.capacity
    }
}
