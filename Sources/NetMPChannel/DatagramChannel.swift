import CNetMPChannel
import NetMPTCP
import NetMPWire
import Synchronization

/// What a UDP socket's application threads and the cores share. Datagrams are queued on the
/// core that received them, one queue per core (the seed's per-core receive queues: no
/// core waits for another, and order across cores is not kept, as with SO_REUSEPORT);
/// readers drain the queues in turn. Datagrams to send go through one multi-producer ring
/// as whole records, drained by the socket's home core.
///
/// The shared words are a `netmp_datagram_slot`, each queue's positions a
/// `netmp_record_queue` (netmp_channel.h), in C layout like a stream socket's.
public final class DatagramChannel: @unchecked Sendable {
    public let port: UInt16
    public let queues: [DatagramQueue]
    /// The slot's words (one cache line): in the socket table's entry, or this object's.
    public let slot: UnsafeMutableRawPointer
    /// Readers block here; a core wakes it after queueing.
    public let arrivals: WaitWord
    /// Rung when a datagram arrives or send space frees (the shim's eventfd).
    public let doorbell: Doorbell
    public let outgoing: SendRing
    /// The errors about the socket's datagrams that ICMP and ICMPv6 reported, for
    /// MSG_ERRQUEUE (IP_RECVERR): written by the home core alone (another core that hears
    /// an error forwards it), read by any application thread.
    public let errors: DatagramQueue
    /// The core that sends this socket's datagrams.
    public let homeCore: Int
    /// connect(): only datagrams from this peer are received. The peer is two address
    /// halves and a port under a version word (a seqlock: odd while connect writes), so a
    /// core reads a whole one without a lock; see `loadPeer`.
    let peerVersion: UnsafeMutablePointer<Atomic<UInt32>>
    let peerHigh, peerLow: UnsafeMutablePointer<Atomic<UInt64>>
    let peerPort: UnsafeMutablePointer<Atomic<UInt32>>
    /// Whose datagrams the socket takes, and the address they must be sent to (nil: any of
    /// ours), as bind set them: read once from the slot when the view is made.
    public let families: AddressFamilies
    public let boundAddress: IPAddress?
    let outputRequested: UnsafeMutablePointer<Atomic<UInt32>>
    let turn: UnsafeMutablePointer<Atomic<Int>>
    let overflowCount: UnsafeMutablePointer<Atomic<Int>>
    /// Datagrams dropped because a core's queue was full (SO_RXQ_OVFL's count).
    public var overflows: Int { overflowCount.pointee.load(ordering: .relaxed) }

    /// The slot this channel's words and rings lie in (nil: memory of its own).
    public let lease: SlotLease?
    /// The home core's count of the send ring's impossible positions already counted
    /// against the socket's client (only the home core's view touches it).
    public var positionFaultsSeen = 0

    /// A channel with memory of its own.
    public convenience init(port: UInt16, cores: Int, homeCore: Int, families: AddressFamilies = .ipv4, boundAddress: IPAddress? = nil,
                            queueCapacity: Int = 256 << 10, sendCapacity: Int = 256 << 10) {
        let slot = UnsafeMutableRawPointer.zeroed(netmp_datagram_slot.self, alignment: 64)
        Self.describe(slot, families: families, boundAddress: boundAddress)
        self.init(port: port, homeCore: homeCore, queues: (0..<cores).map { _ in DatagramQueue(capacity: queueCapacity) },
                  outgoing: SendRing(capacity: sendCapacity), errors: DatagramQueue(capacity: Self.errorCapacity),
                  slot: slot, lease: nil, doorbell: Doorbell())
    }

    /// The error queue's size (IP_RECVERR): a handful of errors, each a record header and
    /// the payload an ICMP error quotes (at most about 520 bytes of an IPv4 datagram's).
    public static let errorCapacity = 16 << 10 - MemoryLayout<netmp_record_queue>.size
    static var errorArea: Int { ClientRegion.pageAligned(MemoryLayout<netmp_record_queue>.size + errorCapacity) }

    /// Writes what bind decided into the slot's words, before any core reads them.
    static func describe(_ words: UnsafeMutableRawPointer, families: AddressFamilies, boundAddress: IPAddress?) {
        words.storeBytes(of: UInt16(families.rawValue), toByteOffset: offset(\Slot.families), as: UInt16.self)
        words.storeAddress(boundAddress ?? IPAddress(IPv6Address.any), at: offset(\Slot.bound_address))
        words.storeBytes(of: MulticastOptions().word, toByteOffset: offset(\Slot.multicast), as: UInt32.self)
    }

    typealias Slot = netmp_datagram_slot
    static func offset(_ field: PartialKeyPath<Slot>) -> Int { MemoryLayout<Slot>.offset(of: field)! }

    /// A channel in a slot leased from `table`: each core's queue and then the send ring in
    /// the slot's stride, the queues made smaller where many cores would not fit. Nil when
    /// the table is full or the strides are too small.
    public convenience init?(in table: SocketTable, port: UInt16, cores: Int, homeCore: Int, families: AddressFamilies = .ipv4,
                             boundAddress: IPAddress? = nil, queueCapacity: Int = 256 << 10, sendCapacity: Int = 256 << 10) {
        let queueBlock = MemoryLayout<netmp_record_queue>.size
        let sendArea = ClientRegion.pageAligned(MemoryLayout<netmp_send_ring>.size + sendCapacity)
        let memory = table.memory
        guard memory.stride > sendArea + Self.errorArea else { return nil }
        let fitting = (memory.stride - sendArea - Self.errorArea) / cores / ClientRegion.pageSize * ClientRegion.pageSize
        let queueArea = min(ClientRegion.pageAligned(queueBlock + queueCapacity), fitting)
        let capacity = min(queueCapacity, queueArea - queueBlock)
        guard capacity >= 16 << 10, cores <= Int(UInt16.max), let lease = table.lease() else { return nil }
        let words = lease.words
        words.storeBytes(of: port, toByteOffset: Self.offset(\Slot.port), as: UInt16.self)
        words.storeBytes(of: UInt16(homeCore), toByteOffset: Self.offset(\Slot.home_core), as: UInt16.self)
        words.storeBytes(of: UInt16(cores), toByteOffset: Self.offset(\Slot.cores), as: UInt16.self)
        words.storeBytes(of: UInt32(capacity), toByteOffset: Self.offset(\Slot.queue_capacity), as: UInt32.self)
        words.storeBytes(of: UInt32(sendCapacity), toByteOffset: Self.offset(\Slot.send_capacity), as: UInt32.self)
        words.storeBytes(of: UInt32(Self.errorCapacity), toByteOffset: Self.offset(\Slot.error_capacity), as: UInt32.self)
        Self.describe(words, families: families, boundAddress: boundAddress)
        let doorbell = Doorbell(in: lease)
        doorbell.name(in: words, at: Self.offset(\Slot.doorbell_slot))
        self.init(lease: lease, doorbell: doorbell)
    }

    /// A core's view of the datagram socket in `slot`, on the hold the application took for
    /// it: the port, home core, ring sizes and doorbell as the slot's words say; nil if the
    /// slot is not held or they do not fit its stride.
    public convenience init?(adopting slot: UInt32, in table: SocketTable) {
        guard let lease = table.adopt(slot),
              let doorbell = Doorbell(namedBy: lease.words, at: Self.offset(\Slot.doorbell_slot), in: table) else { return nil }
        let words = lease.words
        // Read once: the application may change the words after this look.
        let cores = Int(words.load(fromByteOffset: Self.offset(\Slot.cores), as: UInt16.self))
        let queue = Int(words.load(fromByteOffset: Self.offset(\Slot.queue_capacity), as: UInt32.self))
        let send = Int(words.load(fromByteOffset: Self.offset(\Slot.send_capacity), as: UInt32.self))
        let errors = Int(words.load(fromByteOffset: Self.offset(\Slot.error_capacity), as: UInt32.self))
        let area = ClientRegion.pageAligned(MemoryLayout<netmp_record_queue>.size + queue)
        guard cores > 0, queue > 0, send > 0, errors > 0,
              cores * area + ClientRegion.pageAligned(MemoryLayout<netmp_send_ring>.size + send)
                + ClientRegion.pageAligned(MemoryLayout<netmp_record_queue>.size + errors) <= table.memory.stride else { return nil }
        self.init(lease: lease, doorbell: doorbell, cores: cores, capacity: queue, sendCapacity: send, errorCapacity: errors)
    }

    /// The queues of a leased slot, one per core on pages of their own, then the send ring,
    /// as the slot's words describe them.
    convenience init(lease: SlotLease, doorbell: Doorbell) {
        let words = lease.words
        self.init(lease: lease, doorbell: doorbell,
                  cores: Int(words.load(fromByteOffset: Self.offset(\Slot.cores), as: UInt16.self)),
                  capacity: Int(words.load(fromByteOffset: Self.offset(\Slot.queue_capacity), as: UInt32.self)),
                  sendCapacity: Int(words.load(fromByteOffset: Self.offset(\Slot.send_capacity), as: UInt32.self)),
                  errorCapacity: Int(words.load(fromByteOffset: Self.offset(\Slot.error_capacity), as: UInt32.self)))
    }

    /// The queues (each core's, on pages of their own), the send ring, then the error queue.
    convenience init(lease: SlotLease, doorbell: Doorbell, cores: Int, capacity: Int, sendCapacity: Int, errorCapacity: Int) {
        let words = lease.words
        let queueBlock = MemoryLayout<netmp_record_queue>.size
        let queueArea = ClientRegion.pageAligned(queueBlock + capacity)
        let queues = (0..<cores).map { core in
            DatagramQueue(storage: RingStorage(placedAt: lease.base + core * queueArea, capacity: capacity,
                                               headerLength: queueBlock, owner: .placed(lease)))
        }
        self.init(port: words.load(fromByteOffset: Self.offset(\Slot.port), as: UInt16.self),
                  homeCore: Int(words.load(fromByteOffset: Self.offset(\Slot.home_core), as: UInt16.self)), queues: queues,
                  outgoing: SendRing(placedAt: lease.base + cores * queueArea, capacity: sendCapacity, owner: .placed(lease)),
                  errors: DatagramQueue(storage: RingStorage(
                      placedAt: lease.base + cores * queueArea + ClientRegion.pageAligned(MemoryLayout<netmp_send_ring>.size + sendCapacity),
                      capacity: errorCapacity, headerLength: queueBlock, owner: .placed(lease))),
                  slot: words, lease: lease, doorbell: doorbell)
    }

    init(port: UInt16, homeCore: Int, queues: [DatagramQueue], outgoing: SendRing, errors: DatagramQueue,
         slot: UnsafeMutableRawPointer, lease: SlotLease?, doorbell: Doorbell) {
        self.errors = errors
        self.doorbell = doorbell
        self.port = port
        self.homeCore = homeCore
        self.queues = queues
        self.outgoing = outgoing
        self.lease = lease
        self.slot = slot
        peerVersion = slot.atomic(UInt32.self, at: Self.offset(\Slot.peer_version))
        peerHigh = slot.atomic(UInt64.self, at: Self.offset(\Slot.peer_address))
        peerLow = slot.atomic(UInt64.self, at: Self.offset(\Slot.peer_address) + 8)
        peerPort = slot.atomic(UInt32.self, at: Self.offset(\Slot.peer_port))
        // Read once: what the application writes after bind changes nothing on a core.
        let familyBits = UInt8(truncatingIfNeeded: slot.load(fromByteOffset: Self.offset(\Slot.families), as: UInt16.self))
        families = familyBits == 0 ? .ipv4 : AddressFamilies(rawValue: familyBits)
        let bound = slot.loadAddress(at: Self.offset(\Slot.bound_address))
        boundAddress = bound.isUnspecified ? nil : bound
        outputRequested = slot.atomic(UInt32.self, at: MemoryLayout<Slot>.offset(of: \Slot.output_requested)!)
        turn = slot.atomic(Int.self, at: MemoryLayout<Slot>.offset(of: \Slot.turn)!)
        overflowCount = slot.atomic(Int.self, at: MemoryLayout<Slot>.offset(of: \Slot.overflows)!)
        errorNumber = slot.atomic(Int32.self, at: MemoryLayout<Slot>.offset(of: \Slot.error)!)
        markingWord = slot.atomic(UInt32.self, at: Self.offset(\Slot.marking))
        mappedMarkingWord = slot.atomic(UInt32.self, at: Self.offset(\Slot.mapped_marking))
        multicastWord = slot.atomic(UInt32.self, at: Self.offset(\Slot.multicast))
        receiveErrorsWord = slot.atomic(UInt32.self, at: Self.offset(\Slot.receive_errors))
        arrivals = WaitWord(zeroedAt: slot + MemoryLayout<Slot>.offset(of: \Slot.arrivals)!)
    }

    let markingWord: UnsafeMutablePointer<Atomic<UInt32>>
    /// IP_TOS and IP_TTL (or IPv6's pair) for the datagrams it sends: the application sets
    /// them, the home core reads them as each run of datagrams leaves (any value is one
    /// Linux would take).
    public var marking: IPMarking {
        get { IPMarking(word: markingWord.pointee.load(ordering: .relaxed)) }
        set { markingWord.pointee.store(newValue.word, ordering: .relaxed) }
    }
    let receiveErrorsWord: UnsafeMutablePointer<Atomic<UInt32>>
    /// IP_RECVERR (IPv4's errors) and IPV6_RECVERR (IPv6's): set by the application, read
    /// by a core as an error arrives.
    public func receivesErrors(ipv6: Bool) -> Bool {
        receiveErrorsWord.pointee.load(ordering: .relaxed) & (ipv6 ? NETMP_RECEIVE_ERRORS_IPV6 : NETMP_RECEIVE_ERRORS_IPV4) != 0
    }
    public func setReceivesErrors(ipv4: Bool, ipv6: Bool) {
        receiveErrorsWord.pointee.store((ipv4 ? NETMP_RECEIVE_ERRORS_IPV4 : 0) | (ipv6 ? NETMP_RECEIVE_ERRORS_IPV6 : 0), ordering: .relaxed)
    }
    let multicastWord: UnsafeMutablePointer<Atomic<UInt32>>
    /// IP_MULTICAST_TTL, _LOOP and _ALL and their IPv6 twins: the application sets them (the
    /// word from bind on), the home core reads them as datagrams to groups leave and every
    /// core as a group's datagram arrives.
    public var multicast: MulticastOptions {
        get { MulticastOptions(word: multicastWord.pointee.load(ordering: .relaxed)) }
        set { multicastWord.pointee.store(newValue.word, ordering: .relaxed) }
    }
    let mappedMarkingWord: UnsafeMutablePointer<Atomic<UInt32>>
    /// An IPv6 socket's IP_TOS and IP_TTL, which Linux puts on its datagrams to IPv4 peers
    /// (at their mapped addresses) in place of its IPv6 pair.
    public var mappedMarking: IPMarking {
        get { IPMarking(word: mappedMarkingWord.pointee.load(ordering: .relaxed)) }
        set { mappedMarkingWord.pointee.store(newValue.word, ordering: .relaxed) }
    }

    let errorNumber: UnsafeMutablePointer<Atomic<Int32>>
    /// The pending error of a connected socket (0: none): an ICMP error about a datagram it
    /// sent to its peer, which Linux reports once, to the next call or SO_ERROR.
    public var error: Int32 { errorNumber.pointee.load(ordering: .acquiring) }
    public func takeError() -> Int32 { errorNumber.pointee.exchange(0, ordering: .acquiringAndReleasing) }

    /// The stack is gone: the socket's next call fails with `errno`; its readers and
    /// pollers wake to find it.
    public func fail(_ errno: Int32) {
        errorNumber.pointee.store(errno, ordering: .releasing)
        arrivals.wakeAll()
        outgoing.writers.wakeAll()
        doorbell.ring()
    }

    /// Any core: an ICMP error about a datagram this socket sent to `destination`. Only a
    /// connected socket learns it, and only about its peer (Linux's __udp4_lib_err without
    /// IP_RECVERR); its readers and pollers wake to find it.
    public func reportError(_ errno: Int32, about destination: Endpoint) {
        guard connectedPeer == destination else { return }
        errorNumber.pointee.store(errno, ordering: .releasing)
        arrivals.wakeAll()
        doorbell.ring()
    }

    /// Application: after error record `taken` was read, the socket's pending error becomes
    /// the next record's errno if that came from ICMP, else none if `taken` did; a local
    /// error (EMSGSIZE) never touches it (Linux's sock_dequeue_err_skb).
    public func errorRecordTaken(_ taken: DatagramError) {
        if let next = errors.nextError, next.fromICMP {
            errorNumber.pointee.store(next.errorNumber, ordering: .releasing)
        } else if taken.fromICMP {
            errorNumber.pointee.store(0, ordering: .releasing)
        }
    }

    /// Home core: queues an error record and tells the readers and pollers.
    public func queue(_ error: DatagramError, quoted payload: UnsafeRawBufferPointer, at now: Instant) {
        guard errors.push(error, quoted: payload, at: now) else { return } // full: Linux drops it too (sk_rcvbuf)
        arrivals.wakeAll()
        doorbell.ring()
    }

    /// Home core: an ICMP error the socket asked to hear of (IP_RECVERR): queued, then made
    /// pending (as __udp4_lib_err sets sk_err after ip_icmp_error queued), and only then
    /// are readers and pollers told, once: a program woken by POLLERR finds both the record
    /// and the pending error, never one without the other.
    public func report(_ error: DatagramError, quoted payload: UnsafeRawBufferPointer, at now: Instant) {
        _ = errors.push(error, quoted: payload, at: now) // full: Linux drops the record too (sk_rcvbuf)
        errorNumber.pointee.store(error.errorNumber, ordering: .releasing)
        arrivals.wakeAll()
        doorbell.ring()
    }
    deinit { if lease == nil { slot.deallocate() } }

    /// The connected peer (nil: none), as the application sees it.
    public var connectedPeer: Endpoint? {
        // Only a writer that died mid-write leaves the version odd: then it is read as it is.
        for _ in 0..<1000 {
            if case .settled(let peer) = loadPeer() { return peer }
            ChannelCalls.yield()
        }
        return nil
    }

    public enum PeerRead: Equatable { case settled(Endpoint?), changing }
    /// In the peer's port word beside the port: connected (to port 0 too, as Linux allows).
    static let connectedBit: UInt32 = 1 << 16

    /// One bounded look at the peer: a core never waits for an application thread, so a
    /// peer being written (or a version left odd) reads as `changing`.
    public func loadPeer() -> PeerRead {
        for _ in 0..<4 {
            let before = peerVersion.pointee.load(ordering: .acquiring)
            guard before & 1 == 0 else { continue }
            let high = peerHigh.pointee.load(ordering: .relaxed), low = peerLow.pointee.load(ordering: .relaxed)
            let port = peerPort.pointee.load(ordering: .relaxed)
            atomicMemoryFence(ordering: .acquiring)
            guard peerVersion.pointee.load(ordering: .relaxed) == before else { continue }
            guard port & Self.connectedBit != 0 else { return .settled(nil) }
            return .settled(Endpoint(IPAddress(IPv6Address(high: high, low: low)), UInt16(truncatingIfNeeded: port)))
        }
        return .changing
    }

    /// connect(): sets the peer, or clears it (nil). Writers take turns by moving the
    /// version from even to odd; one that finds it odd for long (a writer that died) goes on.
    public func connect(to remote: Endpoint?) {
        var version = peerVersion.pointee.load(ordering: .relaxed)
        for attempt in 0... {
            if version & 1 == 0 || attempt > 1000 {
                let (exchanged, found) = peerVersion.pointee.compareExchange(expected: version, desired: version | 1,
                                                                             ordering: .acquiring)
                if exchanged { break }
                version = found
            } else {
                ChannelCalls.yield()
                version = peerVersion.pointee.load(ordering: .relaxed)
            }
        }
        let address = remote?.address.bits ?? .any
        peerHigh.pointee.store(address.high, ordering: .relaxed)
        peerLow.pointee.store(address.low, ordering: .relaxed)
        peerPort.pointee.store(remote.map { Self.connectedBit | UInt32($0.port) } ?? 0, ordering: .relaxed)
        peerVersion.pointee.store((version | 1) &+ 1, ordering: .releasing)
    }

    /// Core: whether a datagram from `source` to `destination` is this socket's: of a
    /// family it takes, to the address it bound (if it bound one), from its peer (if
    /// connected; Linux's __udp4_lib_lookup scoring, which makes a mismatch "no socket").
    public func takes(from source: Endpoint, to destination: IPAddress) -> Bool {
        guard families.takes(source.address) else { return false }
        if let boundAddress, boundAddress != destination { return false }
        switch loadPeer() {
        case .settled(let peer): return peer == nil || peer == source
        case .changing: return true // connect() is moving it: as if the datagram came a moment before
        }
    }

    // MARK: Cores

    /// Queues a datagram that arrived on `core`; false (and counted) when its queue is full.
    public func deliver(_ payload: UnsafeRawBufferPointer, arrival: DatagramArrival, core: Int) -> Bool {
        // (A slot's words may name fewer queues than the stack has cores: a scribbled one.)
        guard queues.indices.contains(core), queues[core].push(payload, arrival: arrival) else {
            overflowCount.pointee.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        arrivals.wakeAll()
        doorbell.ring()
        return true
    }

    /// Home core: clears the send request before draining, so a later write asks again.
    public func takeOutputRequest() { outputRequested.pointee.store(0, ordering: .sequentiallyConsistent) }

    // MARK: Application threads

    /// True if the caller must ask the home core to send (the first request since it drained).
    public func requestOutput() -> Bool { outputRequested.pointee.exchange(1, ordering: .sequentiallyConsistent) == 0 }

    /// Takes the next datagram from the cores' queues in turn.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, peek: Bool) -> (length: Int, arrival: DatagramArrival)? {
        let start = turn.pointee.wrappingAdd(1, ordering: .relaxed).newValue
        for i in 0..<queues.count {
            if let got = queues[(start + i) % queues.count].pop(into: buffer, peek: peek) { return got }
        }
        return nil
    }

    public var hasDatagrams: Bool { queues.contains { !$0.isEmpty } }
    /// poll's view of the channel in one call: an error pending or queued, a datagram to
    /// read, and room in the send ring for a record of `recordBytes`.
    public func readiness(roomFor recordBytes: Int) -> (error: Bool, readable: Bool, writable: Bool) {
        (error != 0 || !errors.isEmpty, hasDatagrams, outgoing.free >= recordBytes)
    }
    /// The size of the next datagram waiting (FIONREAD on UDP), or 0.
    public var nextLength: Int {
        for queue in queues { if let n = queue.nextLength { return n } }
        return 0
    }
}

/// One core's queue of received datagrams: one producer (the core), any number of readers.
/// Each record is a header (`netmp_datagram_record`: length, ports, addresses, TOS, TTL,
/// arrival time) and the payload; a reader copies a whole record and then claims it by CAS
/// on `head`, like ReceiveRing.
public final class DatagramQueue: @unchecked Sendable {
    public let storage: RingStorage
    /// In the queue's control block (`netmp_record_queue`), in front of its records.
    let tail, head: UnsafeMutablePointer<Atomic<Int>>
    typealias Header = netmp_datagram_record
    static let headerLength = MemoryLayout<Header>.size
    /// The producing core's own view of the positions (a client can write the block).
    var owner: ProducerPositions

    public convenience init(capacity: Int) {
        self.init(storage: RingStorage(capacity: capacity, headerLength: MemoryLayout<netmp_record_queue>.size))
    }

    init(storage: RingStorage) {
        typealias Block = netmp_record_queue
        self.storage = storage
        tail = storage.block.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.tail)!)
        head = storage.block.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.head)!)
        owner = ProducerPositions(tail: tail, head: head, capacity: storage.capacity)
    }
    deinit { storage.deallocate(touched: tail.pointee.load(ordering: .relaxed)) }

    public var isEmpty: Bool { tail.pointee.load(ordering: .acquiring) == head.pointee.load(ordering: .acquiring) }

    /// Owner: appends a record; false when it does not fit.
    func push(_ payload: UnsafeRawBufferPointer, arrival: DatagramArrival) -> Bool {
        let size = Self.headerLength + payload.count
        guard storage.capacity &- owner.unread(head) >= size else { return false }
        let t = owner.tail
        let source = arrival.source.address.bits, destination = arrival.destination.address.bits
        var header = Header()
        header.length = UInt32(payload.count)
        header.source_port = arrival.source.port
        header.destination_port = arrival.destination.port
        header.traffic_class = arrival.trafficClass
        header.hop_limit = arrival.hopLimit
        header.source = (source.high, source.low)
        header.destination = (destination.high, destination.low)
        header.arrival = Int64(bitPattern: arrival.at.nanoseconds)
        withUnsafeBytes(of: &header) { storage.copyIn($0, at: t) }
        storage.copyIn(payload, at: t &+ Self.headerLength)
        owner.publish(size, at: tail)
        return true
    }

    /// Owner (the socket's home core): appends an error record. The record header holds it
    /// as a datagram's does: the offender as the source, the datagram's destination as
    /// the destination, type and code in the TOS and TTL bytes, errno, origin and info in
    /// the reserved ones; the quoted payload follows. False when it does not fit.
    public func push(_ error: DatagramError, quoted payload: UnsafeRawBufferPointer, at now: Instant) -> Bool {
        let size = Self.headerLength + payload.count
        guard storage.capacity &- owner.unread(head) >= size else { return false }
        let t = owner.tail
        let offender = error.offender.bits, destination = error.datagram.remote.address.bits
        var header = Header()
        header.length = UInt32(payload.count)
        header.destination_port = error.datagram.remote.port
        header.traffic_class = error.type
        header.hop_limit = error.code
        let info = error.info
        header.reserved = (UInt8(truncatingIfNeeded: error.errorNumber), error.origin, UInt8(truncatingIfNeeded: info),
                           UInt8(truncatingIfNeeded: info >> 8), UInt8(truncatingIfNeeded: info >> 16), UInt8(truncatingIfNeeded: info >> 24))
        header.source = (offender.high, offender.low)
        header.destination = (destination.high, destination.low)
        header.arrival = Int64(bitPattern: now.nanoseconds)
        withUnsafeBytes(of: &header) { storage.copyIn($0, at: t) }
        storage.copyIn(payload, at: t &+ Self.headerLength)
        owner.publish(size, at: tail)
        return true
    }

    /// Reader: the next error record, its payload copied into `buffer` (truncated), and
    /// claimed. Returns the payload's full length and the error (its datagram's source
    /// unknown here: the socket's own).
    public func popError(into buffer: UnsafeMutableRawBufferPointer) -> (length: Int, error: DatagramError)? {
        var reserved: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
        guard let (length, arrival) = pop(into: buffer, peek: false, reserved: &reserved) else { return nil }
        let info = UInt32(reserved.2) | UInt32(reserved.3) << 8 | UInt32(reserved.4) << 16 | UInt32(reserved.5) << 24
        let error = DatagramError(errorNumber: Int32(reserved.0), hard: true, origin: reserved.1, type: arrival.trafficClass,
                                  code: arrival.hopLimit, info: info, offender: arrival.source.address,
                                  datagram: FourTuple(local: Endpoint(IPAddress(IPv6Address.any), 0), remote: arrival.destination))
        return (length, error)
    }

    /// The errno and origin of the error record at the head, if any (what sk_err may
    /// become once the one before it was read: Linux's sock_dequeue_err_skb).
    public var nextError: (errorNumber: Int32, fromICMP: Bool)? {
        let h = head.pointee.load(ordering: .acquiring)
        guard tail.pointee.load(ordering: .acquiring) != h else { return nil }
        var header = Header()
        withUnsafeMutableBytes(of: &header) { storage.copyOut(from: h, count: Self.headerLength, into: $0) }
        return (Int32(header.reserved.0), DatagramError.isICMP(origin: header.reserved.1))
    }

    var nextLength: Int? {
        let h = head.pointee.load(ordering: .acquiring)
        guard tail.pointee.load(ordering: .acquiring) != h else { return nil }
        var length: UInt32 = 0
        withUnsafeMutableBytes(of: &length) { storage.copyOut(from: h, count: 4, into: $0) }
        // A reader may have claimed it meanwhile; the answer is then stale, which FIONREAD allows.
        return Int(length)
    }

    /// Reader: copies the next record's payload (truncated to `buffer`) and claims it
    /// (unless peeking). Returns the datagram's full length and what its record says.
    func pop(into buffer: UnsafeMutableRawBufferPointer, peek: Bool) -> (length: Int, arrival: DatagramArrival)? {
        var reserved: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
        return pop(into: buffer, peek: peek, reserved: &reserved)
    }

    func pop(into buffer: UnsafeMutableRawBufferPointer, peek: Bool,
             reserved: inout (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) -> (length: Int, arrival: DatagramArrival)? {
        while true {
            let h = head.pointee.load(ordering: .acquiring)
            guard tail.pointee.load(ordering: .acquiring) != h else { return nil }
            var header = Header()
            withUnsafeMutableBytes(of: &header) { storage.copyOut(from: h, count: Self.headerLength, into: $0) }
            let length = Int(header.length)
            let copied = min(length, buffer.count)
            storage.copyOut(from: h &+ Self.headerLength, count: copied, into: buffer)
            let claimed = peek ? head.pointee.load(ordering: .acquiring) == h
                : head.pointee.compareExchange(expected: h, desired: h &+ Self.headerLength &+ length, ordering: .acquiringAndReleasing).exchanged
            if claimed {
                reserved = header.reserved
                let source = IPAddress(IPv6Address(high: header.source.0, low: header.source.1))
                let destination = IPAddress(IPv6Address(high: header.destination.0, low: header.destination.1))
                return (length, DatagramArrival(source: Endpoint(source, header.source_port),
                                                destination: Endpoint(destination, header.destination_port),
                                                trafficClass: header.traffic_class, hopLimit: header.hop_limit,
                                                at: Instant(nanoseconds: UInt64(bitPattern: header.arrival))))
            }
        }
    }
}
