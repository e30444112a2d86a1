import CNetMPChannel
import Glibc
import NetMPChannel

/// The asking side of the reply slots: taking a slot (yielding while all are taken) and
/// sleeping until the core's answer. The cores' side, which answers and wakes, is the
/// channel's.
extension ReplyBoard {
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
