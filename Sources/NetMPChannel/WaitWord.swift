import CNetMPChannel
import CNetMPLinux
import Glibc
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
/// block's address); `OwnedWaitWord` gives one memory of its own.
public struct WaitWord: @unchecked Sendable {
    let memory: UnsafeMutableRawPointer
    var word: UnsafeMutablePointer<Atomic<UInt32>> { memory.atomic(UInt32.self, at: Self.generationAt) }
    var waiters: UnsafeMutablePointer<Atomic<UInt32>> { memory.atomic(UInt32.self, at: Self.waitersAt) }
    // The offsets once (SharedWords.swift's `atomic(_:at:)` says why).
    static let generationAt = MemoryLayout<netmp_wait_word>.offset(of: \netmp_wait_word.generation)!
    static let waitersAt = MemoryLayout<netmp_wait_word>.offset(of: \netmp_wait_word.waiters)!

    /// The wait word at `memory`, whose bytes are zero (a fresh word: zero bytes are
    /// Atomic(0), and not writing them leaves an untouched page untouched), inside a control
    /// block that outlives this value.
    init(zeroedAt memory: UnsafeMutableRawPointer) { self.memory = memory }

    /// Blocks until `ready()` holds or `timeout` (nanoseconds, nil: forever) passes.
    /// Returns `ready()`'s last answer.
    public func wait(timeout: Int? = nil, until ready: () -> Bool) -> Bool {
        wait(timeout: timeout, interruptible: false, until: ready) == .ready
    }

    public enum Outcome { case ready, notYet, interrupted }

    /// One sleep that also tells why it ended: `interrupted` when `interruptible` and a
    /// signal whose handler asked not to restart calls (no SA_RESTART) ran on this thread
    /// meanwhile (the shim counts those, netmp_interrupting_signals).
    public func wait(timeout: Int?, interruptible: Bool, until ready: () -> Bool) -> Outcome {
        if ready() { return .ready }
        let signals = interruptible ? netmp_interrupting_signals() : 0
        // What a caller waits for (a connect's attachment, a reply's bytes) is most often a
        // protocol thread's next few microseconds away: look a few times, yielding the CPU
        // between looks, before paying for a sleep and a wakeup.
        for _ in 0..<Self.spins {
            sched_yield()
            if ready() { return .ready }
        }
        if interruptible && netmp_interrupting_signals() != signals { return .interrupted }
        let generation = word.pointee.load(ordering: .sequentiallyConsistent)
        waiters.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { waiters.pointee.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
        if ready() { return .ready }
        let address = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        let result = netmp_futex_wait(address, generation, timeout ?? -1)
        if ready() { return .ready }
        if interruptible && result == -EINTR && netmp_interrupting_signals() != signals { return .interrupted }
        return .notYet
    }

    /// Looks before sleeping (each after a sched_yield: some microseconds in all).
    static let spins = 16

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
        let address = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        _ = netmp_futex_wake(address, Int32.max)
    }
}

/// A wait word in memory of its own (a reply the cores give one waiting thread).
public final class OwnedWaitWord: @unchecked Sendable {
    let memory: UnsafeMutableRawPointer = .zeroed(netmp_wait_word.self)
    public var word: WaitWord { WaitWord(zeroedAt: memory) }
    public init() {}
    deinit { memory.deallocate() }
}
