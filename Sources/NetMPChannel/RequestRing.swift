import CNetMPChannel
import NetMPTCP
import NetMPWire
import Synchronization

/// A core's request ring: many application threads produce, the core alone consumes. The
/// same algorithm as `MessagePort` (Vyukov's bounded queue with one consumer), over C
/// records instead of Swift values, so that in the stack service the ring can sit in memory
/// a client process shares with the stack (docs/STACK-SERVICE.md). A record's `turn` says
/// whose it is: 2r while free for round r of the ring, 2r + 1 once published in that round;
/// zeros are an empty ring.
///
/// The ring does not wake its core: the sender rings the core's port doorbell after it
/// published (`MessagePort.wakeIfSleeping`), and the core looks at both before it sleeps.
public final class RequestRing: SingleConsumerQueue, @unchecked Sendable {
    public let capacity: Int
    /// log2 of `capacity`: a record's round is its position shifted, not divided (a divide
    /// by a value known only at run time costs tens of cycles, on each side of every record).
    let roundShift: Int
    let memory: UnsafeMutableRawPointer
    let tail: UnsafeMutablePointer<Atomic<Int>>
    let head: UnsafeMutablePointer<Atomic<Int>>
    /// The core's own count of the records it took. It is published in `head` (senders
    /// read it for nothing; it says how far the core got), but never read back from there:
    /// in the stack service the ring is memory the client can write. Only the core's
    /// thread touches it, one access at a time: no dynamic exclusivity check per record.
    @exclusivity(unchecked) var consumed = 0
    /// Records the core dropped because their kind, or a set-option's option, was unknown
    /// (never from this process's own threads; a scribbling client's, once clients are
    /// other processes).
    @exclusivity(unchecked) public private(set) var malformed: UInt64 = 0

    static let recordSize = MemoryLayout<netmp_request>.size
    static let blockSize = MemoryLayout<netmp_request_ring>.size

    /// Keeps the memory: nil when it is this object's, else the region it lies in.
    let region: ClientRegion?

    /// A ring in memory of its own; `capacity` is rounded up to a power of two.
    public convenience init(capacity: Int) {
        var size = 1
        while size < capacity { size <<= 1 }
        self.init(memory: .zeroed(bytes: Self.blockSize + size * Self.recordSize), capacity: size, region: nil)
    }

    /// Core `core`'s ring in `region`.
    public convenience init(in region: ClientRegion, core: Int) {
        self.init(memory: region.requestRing(core), capacity: region.requestCapacity, region: region)
    }

    init(memory: UnsafeMutableRawPointer, capacity: Int, region: ClientRegion?) {
        precondition(capacity > 0 && capacity.nonzeroBitCount == 1)
        self.capacity = capacity
        roundShift = capacity.trailingZeroBitCount
        self.memory = memory
        self.region = region
        typealias Block = netmp_request_ring
        tail = memory.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.tail)!)
        head = memory.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.head)!)
    }
    deinit { if region == nil { memory.deallocate() } }

    /// The record at `position`, for tests that write into a ring as a faulty client would.
    public func recordForTesting(_ position: Int) -> UnsafeMutableRawPointer { record(position) }

    func record(_ position: Int) -> UnsafeMutableRawPointer {
        memory + Self.blockSize + (position & (capacity - 1)) * Self.recordSize
    }
    func turn(_ record: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        record.atomic(UInt64.self, at: MemoryLayout<netmp_request>.offset(of: \netmp_request.turn)!)
    }
    /// Wrapping, so that a position the client wrote (the tail) cannot trap.
    func round(_ position: Int) -> UInt64 { UInt64(bitPattern: Int64(position)) &>> UInt64(roundShift) }

    /// Any thread: queues `request`; false when the ring is full (the core is far behind).
    /// The record is published with a sequentially consistent store, so a sender that then
    /// finds the core not sleeping knows the core will see the record before it sleeps.
    @discardableResult
    public func send(_ request: Request) -> Bool {
        var position = tail.pointee.load(ordering: .relaxed)
        var slot: UnsafeMutableRawPointer
        while true {
            slot = record(position)
            let turn = turn(slot).pointee.load(ordering: .acquiring)
            let free = 2 &* round(position)
            if turn == free {
                if tail.pointee.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed).exchanged { break }
                position = tail.pointee.load(ordering: .relaxed)
            } else if turn < free {
                return false // last round's record is still unread
            } else {
                position = tail.pointee.load(ordering: .relaxed)
            }
        }
        // The record is this thread's alone until its turn says published.
        request.encode(into: slot)
        turn(slot).pointee.store(2 &* round(position) &+ 1, ordering: .sequentiallyConsistent)
        return true
    }

    /// The core only: a record is published and waiting (no system call: for spinning, and
    /// sequentially consistent for the look before sleeping).
    public var hasRequest: Bool {
        turn(record(consumed)).pointee.load(ordering: .sequentiallyConsistent) == 2 &* round(consumed) &+ 1
    }

    /// The most records of unknown kind `receive` skips in one call: a client that fills
    /// its ring with them as fast as the core takes them holds the core only that long.
    static let malformedPerCall = 64

    /// The core only: takes the next record, if one is published. A record of an unknown
    /// kind (or option) is consumed, counted in `malformed`, and skipped.
    public func receive() -> Request? {
        for _ in 0...Self.malformedPerCall {
            let position = consumed
            let slot = record(position)
            guard turn(slot).pointee.load(ordering: .acquiring) == 2 &* round(position) &+ 1 else { return nil }
            let request = Request(decoding: slot)
            if request == nil { malformed &+= 1 }
            turn(slot).pointee.store(2 &* (round(position) &+ 1), ordering: .releasing)
            consumed = position &+ 1
            head.pointee.store(consumed, ordering: .relaxed)
            if let request { return request }
        }
        return nil
    }

    /// The core only: a record that decoded but could not be applied (a set-option value
    /// out of range) counts as malformed too.
    public func countMalformed(_ count: Int = 1) { malformed &+= UInt64(clamping: count) }
}
