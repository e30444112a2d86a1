import CNetMPLinux

/// Runs `body` as a stretch in which this thread holds a place in a shared ring that it has
/// not published yet (a send ring's reservation, a request record, a status bit raised for
/// a request on its way): the program's signal handlers wait for the stretch to end
/// (netmp_defer_signals, docs/SHIM.md's Signals), as the kernel runs them on the way out of
/// a call, never inside its copy. A handler that jumps out (longjmp) then leaves nothing
/// half done that every later writer, or the core, would wait behind. Stretches nest.
@inline(__always)
public func withSignalsDeferred<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
    netmp_defer_signals()
    defer { netmp_deliver_deferred_signals() }
    return try body()
}
