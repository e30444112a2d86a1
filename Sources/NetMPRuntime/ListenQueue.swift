import NetMPStack
import NetMPTCP

/// The accept side of one listening socket. Every core listens on the port with its own
/// copy of the listener (DragonFly's per-CPU listen sockets), so an accept storm spreads
/// over the cores; each core queues what it established in its own `AcceptQueue` (records
/// of handles, no lock), and accept() takes from the queues in turn, starting after the one
/// it took from last.
public final class ListenQueue: @unchecked Sendable {
    public let port: UInt16
    public let backlog: Int
    let queues: [AcceptQueue]
    /// Connections queued on all cores (an upper bound while a push or pop is under way).
    let queued = AtomicCounter()
    let turn = AtomicCounter()
    /// accept() blocks here; a core wakes it after queueing.
    public let arrivals = WaitWord()
    /// The listening socket's doorbell (poll and epoll wait for connections through it).
    let doorbell: Doorbell

    init(port: UInt16, backlog: Int, cores: Int, doorbell: Doorbell) {
        self.doorbell = doorbell
        self.port = port
        self.backlog = max(1, backlog)
        queues = (0..<cores).map { AcceptQueue(capacity: max(1, backlog), core: $0) }
    }

    /// Core `connection.core` queues an established connection; false when the backlog is full.
    func push(_ connection: AcceptedConnection) -> Bool {
        guard queued.increment() <= backlog else { queued.decrement(); return false }
        guard queues[connection.core].push(connection) else { queued.decrement(); return false }
        arrivals.wakeAll()
        doorbell.ring()
        return true
    }

    /// The next connection, taking from the cores in turn; nil when none waits.
    public func pop() -> AcceptedConnection? {
        let cores = queues.count
        let start = turn.increment()
        for i in 0..<cores {
            if let taken = queues[(start + i) % cores].pop() {
                queued.decrement()
                return taken
            }
        }
        return nil
    }

    /// Connections waiting to be accepted (a bound: pushes and pops may be under way).
    public var pending: Int { max(0, queued.value) }
}
