import CNetMPChannel
import NetMPTCP
import NetMPWire
import Synchronization

/// A connection a listener's core established, as accept() finds it: its handle in the
/// socket table, its 4-tuple and the core that owns it.
public struct AcceptedConnection: Equatable, Sendable {
    public var handle: SocketHandle
    public var tuple: FourTuple
    public var core: Int
    public init(handle: SocketHandle, tuple: FourTuple, core: Int) {
        self.handle = handle
        self.tuple = tuple
        self.core = core
    }
}

/// One core's queue of established connections for one listening socket, in the C layout
/// of `netmp_accept_queue` and `netmp_accepted` records: one producer (the core), any
/// number of accepting threads. The core never waits and takes no lock: it writes a record
/// at the tail only into room the readers freed, and publishes the tail. A reader copies
/// the record at the head (atomically, word by word) and claims it by moving the head; if
/// another reader moved it first, the copy is discarded and it looks again.
public final class AcceptQueue: @unchecked Sendable {
    public let capacity: Int
    let memory: UnsafeMutableRawPointer
    let tail: UnsafeMutablePointer<Atomic<Int>>
    let head: UnsafeMutablePointer<Atomic<Int>>
    static let blockSize = MemoryLayout<netmp_accept_queue>.size
    static let recordSize = MemoryLayout<netmp_accepted>.size
    public let core: Int

    /// The memory is this object's (else a listener's slot's, which its view holds).
    let owned: Bool
    /// The producing core's own view of the positions (a client can write the block).
    var owner: ProducerPositions

    /// A queue in memory of its own.
    public convenience init(capacity: Int, core: Int) {
        self.init(placedAt: .zeroed(bytes: AcceptQueue.bytes(capacity: capacity)), capacity: capacity, core: core, owned: true)
    }

    /// Bytes of a queue of `capacity` records, its control block included, rounded to cache lines.
    public static func bytes(capacity: Int) -> Int {
        (blockSize + max(1, capacity) * recordSize + 63) / 64 * 64
    }

    /// A queue at `memory` (zero, or a queue's the same core had), `bytes(capacity:)` long.
    public init(placedAt memory: UnsafeMutableRawPointer, capacity: Int, core: Int, owned: Bool = false) {
        self.capacity = max(1, capacity)
        self.core = core
        self.memory = memory
        self.owned = owned
        typealias Block = netmp_accept_queue
        tail = memory.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.tail)!)
        head = memory.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.head)!)
        owner = ProducerPositions(tail: tail, head: head, capacity: self.capacity)
    }
    deinit { if owned { memory.deallocate() } }

    /// The record's six words, read and written atomically (a reader may read a record
    /// the core is overwriting; its claim then fails).
    func words(_ position: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (memory + Self.blockSize + RingStorage.index(position, capacity) * Self.recordSize)
            .bindMemory(to: Atomic<UInt64>.self, capacity: 6)
    }

    /// The core: appends `connection`; false when the queue is full.
    public func push(_ connection: AcceptedConnection) -> Bool {
        guard owner.unread(head) < capacity else { return false }
        let position = owner.tail
        let tuple = connection.tuple
        let w = words(position)
        // netmp_accepted: slot, generation | local address (two halves) | remote address |
        // ports, reserved.
        w[0].store(connection.handle.word, ordering: .relaxed)
        w[1].store(tuple.local.address.bits.high, ordering: .relaxed)
        w[2].store(tuple.local.address.bits.low, ordering: .relaxed)
        w[3].store(tuple.remote.address.bits.high, ordering: .relaxed)
        w[4].store(tuple.remote.address.bits.low, ordering: .relaxed)
        w[5].store(UInt64(tuple.local.port) | UInt64(tuple.remote.port) << 16, ordering: .relaxed)
        owner.publish(1, at: tail)
        return true
    }

    /// Any thread: takes the oldest connection, if one waits.
    public func pop() -> AcceptedConnection? {
        var position = head.pointee.load(ordering: .acquiring)
        while tail.pointee.load(ordering: .acquiring) &- position > 0 {
            let w = words(position)
            let handle = w[0].load(ordering: .relaxed)
            let local = IPv6Address(high: w[1].load(ordering: .relaxed), low: w[2].load(ordering: .relaxed))
            let remote = IPv6Address(high: w[3].load(ordering: .relaxed), low: w[4].load(ordering: .relaxed))
            let ports = w[5].load(ordering: .relaxed)
            let (claimed, current) = head.pointee.compareExchange(expected: position, desired: position &+ 1,
                                                                  ordering: .acquiringAndReleasing)
            if claimed {
                let tuple = FourTuple(local: Endpoint(IPAddress(local), UInt16(truncatingIfNeeded: ports)),
                                      remote: Endpoint(IPAddress(remote), UInt16(truncatingIfNeeded: ports >> 16)))
                return AcceptedConnection(handle: SocketHandle(word: handle), tuple: tuple, core: core)
            }
            position = current
        }
        return nil
    }

    /// Connections waiting (a bound while pushes and pops are under way).
    public var count: Int { max(0, tail.pointee.load(ordering: .acquiring) - head.pointee.load(ordering: .acquiring)) }
}
