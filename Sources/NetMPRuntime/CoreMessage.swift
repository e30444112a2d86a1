import NetMPStack
import NetMPTCP
import NetMPWire

/// What a protocol thread's port carries: frames another core received for this core's
/// connections, and the usrreq operations of application threads. Payloads are references
/// or small values, so a message is a few words and the port's slots stay small.
public enum CoreMessage {
    /// A frame for a connection this core owns that arrived on another core's queue.
    case frame(ForwardedFrame)
    /// An ARP frame another core received: learn the neighbour, do not answer.
    case neighbour(ForwardedFrame)
    /// Open a connection (connect).
    case connect(ConnectRequest)
    /// The application wrote: send what the window allows.
    case output(SocketChannel)
    /// The application read: the receive window may reopen.
    case windowUpdate(SocketChannel)
    /// shutdown(SHUT_WR).
    case shutdownWrite(SocketChannel)
    /// close(): a FIN after the data, or a RST (SO_LINGER 0, unread data, never accepted).
    case close(SocketChannel, abort: Bool)
    /// Start or stop this core's copy of a listening socket.
    case listen(ListenQueue, Completion)
    case stopListening(port: UInt16, Completion)
    /// Any other operation on a connection, run by its owner: socket options, TCP_INFO,
    /// addresses. The body sees the control block (nil once the connection is gone).
    case control(SocketChannel, ControlRequest)
    /// Start or stop delivering a UDP port's datagrams to a socket (every core holds the binding).
    case bindDatagram(DatagramChannel, Completion)
    case unbindDatagram(port: UInt16, Completion)
    /// A UDP socket's application threads queued datagrams: its home core sends them.
    case datagramOutput(DatagramChannel)
    /// Runs `body` on the core with its loop (diagnostics and tests: memory placement).
    case inspect(@Sendable (ProtocolLoop) -> Void, Completion)
    /// The stack is shutting down: the thread leaves its loop.
    case stop(Completion)
    /// fork() is under way: the thread says it arrived and waits, holding no lock, until
    /// the gate opens (see NetworkStack.parkForFork).
    case park(ParkGate)
    /// The process attached its TAP queues again (NetworkStack.stepBack): the core reads
    /// and writes its queue again.
    case rejoinWire
}

/// A copy of a frame, in memory the receiving core frees. Forwarding is the exception (the
/// kernel learns to deliver a flow on its owner's queue), so its one allocation is too.
public struct ForwardedFrame: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    /// What the link said of the frame on the core that read it.
    let marks: ArrivalMarks

    init(copying frame: UnsafeRawBufferPointer, marks: ArrivalMarks = .none) {
        bytes = .allocate(byteCount: frame.count, alignment: 16)
        bytes.copyMemory(from: frame)
        self.marks = marks
    }
    func free() { bytes.deallocate() }
}

public final class ConnectRequest: @unchecked Sendable {
    let channel: SocketChannel
    let remote: Endpoint
    let localPort: UInt16?
    let configuration: TCPConfiguration
    init(channel: SocketChannel, remote: Endpoint, localPort: UInt16?, configuration: TCPConfiguration) {
        self.channel = channel; self.remote = remote; self.localPort = localPort; self.configuration = configuration
    }
}

public final class ControlRequest: @unchecked Sendable {
    let body: (TCPSocket?, Instant) -> Void
    let completion = Completion(count: 1)
    init(_ body: @escaping (TCPSocket?, Instant) -> Void) { self.body = body }
}

/// A reply for operations that wait for one or more cores: each core calls `done` once.
public final class Completion: @unchecked Sendable {
    let remaining: AtomicCounter
    let word = WaitWord()

    public init(count: Int) { remaining = AtomicCounter(count) }

    public func done() {
        if remaining.decrement() == 0 { word.wakeAll() }
    }

    public func wait() { while !word.wait(until: { remaining.value == 0 }) {} }
}

/// Where protocol threads wait while the process forks. A thread parked here holds no lock
/// (not the Swift runtime's either), so a forked child can run Swift code, start threads and
/// bring up a stack of its own without meeting a lock that its parent's threads held.
public final class ParkGate: @unchecked Sendable {
    let arrived: Completion
    let gate = WaitWord()
    let open = AtomicCounter(0)

    init(cores: Int) { arrived = Completion(count: cores) }

    /// A protocol thread: says it is parked, then waits for the gate.
    func park() {
        arrived.done()
        while !gate.wait(until: { open.value != 0 }) {}
    }

    public func release() {
        _ = open.increment()
        gate.wakeAll()
    }
}
