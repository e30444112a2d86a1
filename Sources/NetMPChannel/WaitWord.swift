import CNetMPChannel
import Synchronization

/// A futex word for blocking without lost wakeups: a waiter reads the generation, announces
/// itself, checks its condition, and sleeps only if the generation is unchanged; a waker
/// that finds someone announced bumps the generation and makes the wake system call. Both
/// sides order their write before their read with sequentially consistent operations, so
/// either the waiter sees the change or the waker sees the waiter.
///
/// The word and the count are a `netmp_wait_word` (netmp_channel.h), in the control block or
/// slot words that hold it, which outlive every copy of this value (one pointer, no
/// object: each socket's channel has three, on each side, made when used from the control
/// block's address); `OwnedWaitWord` gives one memory of its own. The wake's system call
/// goes through `ChannelCalls`; the sleep is NetMPSystem's (WaitWord+Sleep).
public struct WaitWord: @unchecked Sendable {
    let memory: UnsafeMutableRawPointer
    package var word: UnsafeMutablePointer<Atomic<UInt32>> { memory.atomic(UInt32.self, at: Self.generationAt) }
    package var waiters: UnsafeMutablePointer<Atomic<UInt32>> { memory.atomic(UInt32.self, at: Self.waitersAt) }
    // The offsets, constants from netmp_channel.h (SharedWords.swift's `atomic(_:at:)` says why).
    static var generationAt: Int { NETMP_WAIT_WORD_GENERATION_AT }
    static var waitersAt: Int { NETMP_WAIT_WORD_WAITERS_AT }

    /// The wait word at `memory`, whose bytes are zero (a fresh word: zero bytes are
    /// Atomic(0), and not writing them leaves an untouched page untouched), inside a control
    /// block that outlives this value.
    init(zeroedAt memory: UnsafeMutableRawPointer) { self.memory = memory }

    /// Why a sleep (NetMPSystem's `wait`) ended.
    public enum Outcome { case ready, notYet, interrupted }

    /// Wakes every waiter (after the caller published what they wait for). With nobody
    /// waiting it writes nothing: a waiter that announces itself later sees what was
    /// published when it checks, so the generation only has to move for one already counted
    /// (and a ring's idle wait word keeps its page untouched). The fence orders the caller's
    /// publishing store before the look at the count, as the waiter's increment orders its
    /// count before its check.
    public func wakeAll() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard waiters.pointee.load(ordering: .sequentiallyConsistent) > 0 else { return }
        word.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        ChannelCalls.current.pointee.wakeSleepers(UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self))
    }
}

/// A wait word in memory of its own (a reply the cores give one waiting thread).
public final class OwnedWaitWord: @unchecked Sendable {
    let memory: UnsafeMutableRawPointer = .zeroed(netmp_wait_word.self)
    public var word: WaitWord { WaitWord(zeroedAt: memory) }
    public init() {}
    deinit { memory.deallocate() }
}
