import CNetMPChannel
import Glibc
import Synchronization

/// Where the cores answer queries (TCP_INFO) for the application threads that asked: a
/// fixed set of `netmp_reply` slots of netmp_channel.h. An asker takes a free slot, names
/// it in its query record and waits on the slot's word; the owner core writes the answer
/// (Linux's struct tcp_info) and marks it answered; the asker copies it out and frees the
/// slot. Answers are bytes in a C layout, never references, so the slots can sit in memory
/// a client process shares with the stack (docs/STACK-SERVICE.md, the reply ring).
public final class ReplyBoard: @unchecked Sendable {
    /// Queries outstanding at once; an asker finding none free yields until one is.
    public static let capacity = Int(NETMP_REPLY_SLOTS)
    static let slotSize = MemoryLayout<netmp_reply>.size
    let memory: UnsafeMutableRawPointer
    /// Bit i set: slot i is taken (the region head's `replies_taken`, or this object's).
    let taken: UnsafeMutablePointer<Atomic<UInt64>>
    let words: [WaitWord]
    /// Keeps the memory: nil when it is this object's, else the region it lies in.
    let region: ClientRegion?

    /// Slots in memory of their own.
    public convenience init() {
        let memory = UnsafeMutableRawPointer.zeroed(bytes: Self.capacity * Self.slotSize + 64)
        self.init(memory: memory, taken: (memory + Self.capacity * Self.slotSize).atomic(UInt64.self, at: 0), region: nil)
    }

    /// The reply slots of `region`.
    public convenience init(in region: ClientRegion) {
        self.init(memory: region.replySlots,
                  taken: region.head.atomic(UInt64.self, at: MemoryLayout<netmp_region>.offset(of: \netmp_region.replies_taken)!),
                  region: region)
    }

    init(memory: UnsafeMutableRawPointer, taken: UnsafeMutablePointer<Atomic<UInt64>>, region: ClientRegion?) {
        self.memory = memory
        self.taken = taken
        self.region = region
        words = (0..<Self.capacity).map {
            WaitWord(zeroedAt: memory + $0 * Self.slotSize + MemoryLayout<netmp_reply>.offset(of: \netmp_reply.answered)!)
        }
    }
    deinit { if region == nil { memory.deallocate() } }

    func slot(_ index: Int) -> UnsafeMutableRawPointer { memory + index * Self.slotSize }
    func state(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        slot(index).atomic(UInt32.self, at: MemoryLayout<netmp_reply>.offset(of: \netmp_reply.state)!)
    }

    /// An application thread: a free slot, marked asked.
    public func take() -> UInt32 {
        while true {
            let bits = taken.pointee.load(ordering: .relaxed)
            if bits == .max { sched_yield(); continue }
            let index = (~bits).trailingZeroBitCount
            if taken.pointee.compareExchange(expected: bits, desired: bits | 1 << index, ordering: .acquiringAndReleasing).exchanged {
                state(index).pointee.store(NETMP_REPLY_ASKED, ordering: .relaxed)
                return UInt32(index)
            }
        }
    }

    /// The owner core: answers the query that named `index`, writing at most 256 bytes
    /// with `write` (which returns how many it wrote). False, and nothing written, for a
    /// slot that does not exist or was not asked.
    @discardableResult
    public func answer(_ index: UInt32, _ write: (UnsafeMutableRawBufferPointer) -> Int) -> Bool {
        let i = Int(index)
        guard i < Self.capacity, state(i).pointee.load(ordering: .acquiring) == NETMP_REPLY_ASKED else { return false }
        let payload = UnsafeMutableRawBufferPointer(start: slot(i) + MemoryLayout<netmp_reply>.offset(of: \netmp_reply.payload)!,
                                                    count: 256)
        let length = min(max(write(payload), 0), 256)
        slot(i).storeBytes(of: UInt32(length), toByteOffset: MemoryLayout<netmp_reply>.offset(of: \netmp_reply.length)!,
                           as: UInt32.self)
        state(i).pointee.store(NETMP_REPLY_ANSWERED, ordering: .releasing)
        words[i].wakeAll()
        return true
    }

    /// Every question asked and not answered gets an empty answer (the stack that would
    /// have answered is gone): its askers wake.
    public func answerEveryQuestion() {
        for index in 0..<UInt32(Self.capacity) { answer(index) { _ in 0 } }
    }

    /// The asker: waits for the answer in `index`, hands its bytes to `read`, frees the slot.
    public func awaitAnswer<T>(_ index: UInt32, _ read: (UnsafeRawBufferPointer) -> T) -> T {
        let i = Int(index)
        while !words[i].wait(until: { state(i).pointee.load(ordering: .acquiring) == NETMP_REPLY_ANSWERED }) {}
        let length = Int(slot(i).load(fromByteOffset: MemoryLayout<netmp_reply>.offset(of: \netmp_reply.length)!, as: UInt32.self))
        let result = read(UnsafeRawBufferPointer(start: slot(i) + MemoryLayout<netmp_reply>.offset(of: \netmp_reply.payload)!,
                                                 count: length))
        state(i).pointee.store(0, ordering: .relaxed)
        taken.pointee.bitwiseAnd(~(1 << UInt64(index)), ordering: .releasing)
        return result
    }
}
