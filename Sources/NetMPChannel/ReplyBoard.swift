import CNetMPChannel
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
    package let taken: UnsafeMutablePointer<Atomic<UInt64>>
    package let words: [WaitWord]
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

    package func slot(_ index: Int) -> UnsafeMutableRawPointer { memory + index * Self.slotSize }
    package func state(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        slot(index).atomic(UInt32.self, at: MemoryLayout<netmp_reply>.offset(of: \netmp_reply.state)!)
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
}
