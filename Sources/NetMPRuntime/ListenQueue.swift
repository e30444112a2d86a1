import NetMPStack
import NetMPTCP

/// A connection a listener's core established, waiting for accept().
public struct AcceptedConnection: @unchecked Sendable {
    public let channel: SocketChannel
    public let tuple: FourTuple
    public let core: Int
}

/// The accept side of one listening socket. Every core listens on the port with its own
/// copy of the listener (DragonFly's per-CPU listen sockets), so an accept storm spreads
/// over the cores; each core queues what it established in its own queue, and accept()
/// takes from the queues in turn, starting after the one it took from last.
///
/// Each queue has its own lock, held for an append or a removal: a core and the accepting
/// threads meet there, never two cores.
public final class ListenQueue: @unchecked Sendable {
    public let port: UInt16
    public let backlog: Int
    let locks: [PthreadLock]
    nonisolated(unsafe) var queues: [[AcceptedConnection]]
    /// Connections queued on all cores (an upper bound while a push or pop is under way).
    let queued = AtomicCounter()
    let turn = AtomicCounter()
    /// accept() blocks here; a core wakes it after queueing.
    public let arrivals = WaitWord()

    init(port: UInt16, backlog: Int, cores: Int) {
        self.port = port
        self.backlog = max(1, backlog)
        locks = (0..<cores).map { _ in PthreadLock() }
        queues = Array(repeating: [], count: cores)
    }

    /// Core `core` queues an established connection; false when the backlog is full.
    func push(_ connection: AcceptedConnection) -> Bool {
        guard queued.increment() <= backlog else { queued.decrement(); return false }
        locks[connection.core].locked { queues[connection.core].append(connection) }
        arrivals.wakeAll()
        return true
    }

    /// The next connection, taking from the cores in turn; nil when none waits.
    public func pop() -> AcceptedConnection? {
        let cores = queues.count
        let start = turn.increment()
        for i in 0..<cores {
            let core = (start + i) % cores
            let taken: AcceptedConnection? = locks[core].locked {
                queues[core].isEmpty ? nil : queues[core].removeFirst()
            }
            if let taken {
                queued.decrement()
                return taken
            }
        }
        return nil
    }

    /// Connections waiting to be accepted (a bound: pushes and pops may be under way).
    public var pending: Int { max(0, queued.value) }
}
