import CNetMPChannel
import NetMPTCP
import NetMPWire
import Synchronization

/// The accept side of one listening socket. Every core listens on the port with its own
/// copy of the listener (DragonFly's per-CPU listen sockets), so an accept storm spreads
/// over the cores; each core queues what it established in its own `AcceptQueue` (records
/// of handles, no lock), and accept() takes from the queues in turn, starting after the one
/// it took from last.
///
/// The queues and the shared words (`netmp_listen_slot`) lie in a slot of the socket table
/// of their own, named as a listener: the application leases it at listen(), and each core
/// makes its own view of it from the handle (`init(adopting:)`), on a hold the application
/// took for it, so no object crosses to the cores.
public final class ListenQueue: @unchecked Sendable {
    public let port: UInt16
    public let backlog: Int
    let queues: [AcceptQueue]
    /// Connections queued on all cores (an upper bound while a push or pop is under way).
    let queued: UnsafeMutablePointer<Atomic<Int>>
    let turn: UnsafeMutablePointer<Atomic<Int>>
    /// TCP_DEFER_ACCEPT in seconds: the application writes it (at listen, or later), each
    /// core reads it as a connection establishes.
    let deferAccept: UnsafeMutablePointer<Atomic<UInt32>>
    /// accept() blocks here; a core wakes it after queueing.
    public let arrivals: WaitWord
    /// The listening socket's doorbell (poll and epoll wait for connections through it).
    public let doorbell: Doorbell
    /// This view's hold on the slot.
    public let lease: SlotLease

    typealias Slot = netmp_listen_slot
    /// A core's view: the configurations it built from the published options, and their
    /// version (ListenQueue+Options).
    var cachedOptions: (version: UInt32, own: TCPConfiguration?, mapped: TCPConfiguration?) = (0, nil, nil)
    static func offset(_ field: PartialKeyPath<Slot>) -> Int { MemoryLayout<Slot>.offset(of: field)! }

    /// The application at listen(): a slot leased for `cores` queues holding `backlog`
    /// connections in all (each as many as fit the slot's stride); nil when the table is full.
    public convenience init?(in table: SocketTable, port: UInt16, backlog: Int, cores: Int, doorbell: Doorbell) {
        let backlog = max(1, backlog)
        var perCore = backlog
        while perCore > 1 && cores * AcceptQueue.bytes(capacity: perCore) > table.memory.stride { perCore /= 2 }
        guard cores * AcceptQueue.bytes(capacity: perCore) <= table.memory.stride, let lease = table.lease() else { return nil }
        lease.words.storeBytes(of: UInt32(backlog), toByteOffset: Self.offset(\Slot.backlog), as: UInt32.self)
        lease.words.storeBytes(of: UInt32(cores), toByteOffset: Self.offset(\Slot.cores), as: UInt32.self)
        lease.words.storeBytes(of: UInt32(perCore), toByteOffset: Self.offset(\Slot.queue_capacity), as: UInt32.self)
        doorbell.name(in: lease.words, at: Self.offset(\Slot.doorbell_slot))
        if lease.wasWarm { // the last socket's control blocks
            for core in 0..<cores {
                (lease.base + core * AcceptQueue.bytes(capacity: perCore))
                    .initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<netmp_accept_queue>.size)
            }
        }
        self.init(lease: lease, port: port, doorbell: doorbell)
    }

    /// A core's view of the listener in `slot`, on the hold the application took for it,
    /// ringing the listening socket's doorbell; nil if the slot is not held or its sizes do
    /// not fit its stride.
    public convenience init?(adopting slot: UInt32, in table: SocketTable, port: UInt16) {
        guard let lease = table.adopt(slot),
              let doorbell = Doorbell(namedBy: lease.words, at: Self.offset(\Slot.doorbell_slot), in: table) else { return nil }
        // Read once, and bounded before they are multiplied: the application writes these
        // words and may change them after this look.
        let cores = Int(lease.words.load(fromByteOffset: Self.offset(\Slot.cores), as: UInt32.self))
        let perCore = Int(lease.words.load(fromByteOffset: Self.offset(\Slot.queue_capacity), as: UInt32.self))
        let stride = table.memory.stride
        guard cores > 0, cores <= 4096, perCore > 0, perCore <= stride,
              cores * AcceptQueue.bytes(capacity: perCore) <= stride else { return nil }
        self.init(lease: lease, port: port, doorbell: doorbell, cores: cores, perCore: perCore)
    }

    private convenience init(lease: SlotLease, port: UInt16, doorbell: Doorbell) {
        let words = lease.words
        self.init(lease: lease, port: port, doorbell: doorbell,
                  cores: Int(words.load(fromByteOffset: Self.offset(\Slot.cores), as: UInt32.self)),
                  perCore: Int(words.load(fromByteOffset: Self.offset(\Slot.queue_capacity), as: UInt32.self)))
    }

    private init(lease: SlotLease, port: UInt16, doorbell: Doorbell, cores: Int, perCore: Int) {
        let words = lease.words
        self.lease = lease
        self.port = port
        self.doorbell = doorbell
        backlog = Int(words.load(fromByteOffset: Self.offset(\Slot.backlog), as: UInt32.self))
        queues = (0..<cores).map { core in
            AcceptQueue(placedAt: lease.base + core * AcceptQueue.bytes(capacity: perCore), capacity: perCore, core: core)
        }
        queued = words.atomic(Int.self, at: Self.offset(\Slot.queued))
        turn = words.atomic(Int.self, at: Self.offset(\Slot.turn))
        deferAccept = words.atomic(UInt32.self, at: Self.offset(\Slot.defer_accept))
        arrivals = WaitWord(zeroedAt: words + Self.offset(\Slot.arrivals))
    }

    /// Core `connection.core` queues an established connection; false when the backlog is full.
    public func push(_ connection: AcceptedConnection) -> Bool {
        guard queued.pointee.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue <= backlog else {
            queued.pointee.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            return false
        }
        guard queues.indices.contains(connection.core), queues[connection.core].push(connection) else {
            queued.pointee.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            return false
        }
        arrivals.wakeAll()
        doorbell.ring()
        return true
    }

    /// The next connection, taking from the cores in turn; nil when none waits.
    public func pop() -> AcceptedConnection? {
        let cores = queues.count
        let start = turn.pointee.wrappingAdd(1, ordering: .relaxed).newValue
        for i in 0..<cores {
            if let taken = queues[RingStorage.index(start &+ i, cores)].pop() {
                queued.pointee.wrappingSubtract(1, ordering: .acquiringAndReleasing)
                return taken
            }
        }
        return nil
    }

    /// The application: TCP_DEFER_ACCEPT's time in seconds (0: off).
    public func setDeferAccept(seconds: Int) {
        deferAccept.pointee.store(UInt32(clamping: seconds), ordering: .relaxed)
    }
    /// A core: how long an established connection that brought no data waits before it is
    /// handed to accept() anyway; nil when the listener does not defer. Bounded by what 255
    /// retransmissions add up to (Linux's largest), whatever the application wrote.
    public var acceptDeferral: Interval? {
        let seconds = deferAccept.pointee.load(ordering: .relaxed)
        return seconds == 0 ? nil : .seconds(UInt64(min(seconds, 29_887)))
    }

    /// Connections waiting to be accepted (a bound: pushes and pops may be under way).
    public var pending: Int { max(0, queued.pointee.load(ordering: .acquiring)) }

    /// Records the queues can hold in all: the most a drain of them can take.
    public var capacity: Int { queues.reduce(0) { $0 + $1.capacity } }
}
