import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire

/// What a protocol thread's port carries: what the stack's own threads say to each other
/// (frames another core received for this core's connections, listeners and UDP bindings
/// set up on every core, diagnostics, stop). A socket's own usrreqs (connect, send, close,
/// options) are records in the core's request ring instead (`Request`), in one order per
/// socket. Payloads are references or small values, so a message is a few words.
public enum CoreMessage {
    /// A frame for a connection this core owns that arrived on another core's queue.
    case frame(ForwardedFrame)
    /// An ARP frame another core received: learn the neighbour, do not answer.
    case neighbour(ForwardedFrame)
    /// Start or stop this core's copy of a listening socket: the listener's slot (its
    /// accept queues), on a hold taken for this core's view of it.
    /// `reuse.port`: SO_REUSEPORT (the port's listeners take connections by their hash);
    /// the connections it makes hold the port as `reuse` says.
    case listen(client: UInt32, SocketHandle, port: UInt16, families: AddressFamilies, reuse: PortReuse, Completion)
    case stopListening(client: UInt32, SocketHandle, port: UInt16, families: AddressFamilies, Completion)
    /// Start or stop delivering a UDP port's datagrams to a socket (every core holds the
    /// binding): the socket's slot, on a hold taken for this core's view of it.
    case bindDatagram(client: UInt32, SocketHandle, Completion)
    case unbindDatagram(client: UInt32, SocketHandle, port: UInt16, families: AddressFamilies, Completion)
    /// An error about a datagram of the UDP socket `identity` (client and slot), heard by
    /// another core, for this one, its home, to queue (IP_RECVERR); the quoted payload in
    /// memory this core frees.
    case datagramError(identity: UInt64, DatagramError, ForwardedFrame)
    /// A bound UDP socket joins (or leaves) a multicast group: every core takes the
    /// group's datagrams for it from then on.
    case joinGroup(client: UInt32, SocketHandle, group: IPAddress, join: Bool, Completion)
    /// Start or stop serving a client: its region's request ring for this core, its socket
    /// table and reply slots, and in the stack process the stack's copies of its doorbell
    /// eventfds, core 0 its names socket, the client's bell for this core (the core owns
    /// it from then on), and the lowest port it may bind without privilege (0: any).
    /// `closing`: the client is gone (its process ended), and what it held is closed as
    /// Linux closes a dead process's sockets.
    case attach(client: UInt32, ClientRegion, DoorbellDescriptors?, Int32?, bell: Int32?, UInt16, UInt32, ClientFaults, Completion)
    case detach(client: UInt32, closing: Bool, Completion)
    /// Sockets of a client whose last holding process ended while the client goes on:
    /// each core closes its part of them (ProtocolLoop.close(_:of:)). `reset`: reset the
    /// connections whatever they hold (they waited in a closed listener's queue).
    case closeSockets(client: UInt32, [SocketHandle], reset: Bool, Completion)
    /// Start (a ring) or stop (nil) writing every frame the core sends and reads into a
    /// capture (`CaptureSession`).
    case capture(CaptureRing?, Completion)
    /// Runs `body` on the core with its loop (diagnostics and tests: memory placement).
    case inspect(@Sendable (ProtocolLoop) -> Void, Completion)
    /// The stack is shutting down: the thread leaves its loop.
    case stop(Completion)
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

/// A reply for operations that wait for one or more cores: each core calls `done` once;
/// the last runs `finally` (a core answering a record's reply slot) and wakes waiters.
public final class Completion: @unchecked Sendable {
    let remaining: AtomicCounter
    let storage = OwnedWaitWord()
    var word: WaitWord { storage.word }
    let finally: (@Sendable () -> Void)?

    public init(count: Int, finally: (@Sendable () -> Void)? = nil) {
        remaining = AtomicCounter(count)
        self.finally = finally
    }

    public func done() {
        if remaining.decrement() == 0 {
            finally?()
            word.wakeAll()
        }
    }

    public func wait() { while !word.wait(until: { remaining.value == 0 }) {} }
}
