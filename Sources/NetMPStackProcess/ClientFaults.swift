import Synchronization

/// What one client wrote that the stack could not take: records of no known kind or with
/// values out of range, and records naming what is not the client's (another client's
/// port, a reply slot it did not ask for). Every core adds its count; the door thread
/// publishes the sum beside the client in `netmp stat` (docs/STACK-SERVICE.md, Distrust).
public final class ClientFaults: Sendable {
    let count = Atomic<UInt64>(0)
    public init() {}
    public var total: UInt64 { count.load(ordering: .relaxed) }
    func add(_ n: UInt64) { count.wrappingAdd(n, ordering: .relaxed) }
}
