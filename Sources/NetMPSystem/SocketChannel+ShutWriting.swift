import Glibc
import NetMPChannel
import Synchronization

/// Closing's side of a stream socket's writers: it waits for them, which takes a clock and
/// the scheduler, so it lives with the process's calls rather than in the channel.
extension SocketChannel {
    /// Shuts writing (once; false if it was already shut) and waits for writes under way,
    /// a second at most: a write takes microseconds, and no signal handler runs inside one
    /// (withSignalsDeferred), but a thread that never finishes one (cancelled, or a raw
    /// clone's child that died in it) must not hang close() or the exit that follows.
    public func shutWriting() -> Bool {
        let first = raise(.writeShut)
        var started = timespec(), now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &started)
        while activeWriters.pointee.load(ordering: .sequentiallyConsistent) > 0 {
            sched_yield()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if now.tv_sec - started.tv_sec > 1 { break }
        }
        return first
    }
}
