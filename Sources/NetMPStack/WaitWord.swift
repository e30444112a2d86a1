import CNetMPLinux
import Glibc
import Synchronization

/// A futex word for blocking without lost wakeups: a waiter reads the generation, announces
/// itself, checks its condition, and sleeps only if the generation is unchanged; a waker bumps
/// the generation and makes the wake system call only when someone announced a wait. Both
/// sides use sequentially consistent operations, so either the waiter sees the change or
/// the waker sees the waiter.
public final class WaitWord: @unchecked Sendable {
    let word: UnsafeMutablePointer<Atomic<UInt32>>
    let waiters = Atomic<Int>(0)

    public init() {
        word = .allocate(capacity: 1)
        word.initialize(to: Atomic(0))
    }
    deinit {
        word.deinitialize(count: 1)
        word.deallocate()
    }

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
        waiters.add(1, ordering: .sequentiallyConsistent)
        defer { waiters.subtract(1, ordering: .sequentiallyConsistent) }
        if ready() { return .ready }
        let address = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        let result = netmp_futex_wait(address, generation, timeout ?? -1)
        if ready() { return .ready }
        if interruptible && result == -EINTR && netmp_interrupting_signals() != signals { return .interrupted }
        return .notYet
    }

    /// Looks before sleeping (each after a sched_yield: some microseconds in all).
    static let spins = 16

    /// Wakes every waiter (after the caller published what they wait for).
    public func wakeAll() {
        word.pointee.add(1, ordering: .sequentiallyConsistent)
        guard waiters.load(ordering: .sequentiallyConsistent) > 0 else { return }
        let address = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        _ = netmp_futex_wake(address, Int32.max)
    }
}
