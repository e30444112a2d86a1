import CNetMPLinux
import Glibc
import NetMPChannel

/// A wait word's sleeping side: the futex wait, and the looks before it. The channel keeps
/// the word and the wake (ChannelCalls); the sleep is a system call, so it lives here.
extension WaitWord {
    /// Blocks until `ready()` holds or `timeout` (nanoseconds, nil: forever) passes.
    /// Returns `ready()`'s last answer.
    public func wait(timeout: Int? = nil, until ready: () -> Bool) -> Bool {
        wait(timeout: timeout, interruptible: false, until: ready) == .ready
    }

    /// One sleep that also tells why it ended: `interrupted` when `interruptible` and a
    /// signal whose handler asked not to restart calls (no SA_RESTART) ran on this thread
    /// meanwhile (the shim counts those, netmp_interrupting_signals).
    public func wait(timeout: Int?, interruptible: Bool, until ready: () -> Bool) -> Outcome {
        _ = LinuxChannelCalls.installed
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
        let address = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        // Joins the count of sleepers (sequentially consistent) through the C side, which
        // notes the sleep for the signal trampoline: a handler that jumps out of this sleep
        // then leaves the count as it found it (netmp_handler_begins).
        netmp_sleep_announce(UnsafeMutableRawPointer(waiters).assumingMemoryBound(to: UInt32.self), address)
        defer { netmp_sleep_withdraw() }
        if ready() { return .ready }
        let result = netmp_futex_wait(address, generation, timeout ?? -1)
        if ready() { return .ready }
        if interruptible && result == -EINTR && netmp_interrupting_signals() != signals { return .interrupted }
        return .notYet
    }

    /// Looks before sleeping (each after a sched_yield: some microseconds in all).
    static let spins = 16
}
