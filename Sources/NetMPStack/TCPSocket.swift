import CNetMPChannel
import NetMPTCP
import NetMPWire

/// One TCP connection as its owner core holds it: the engine's control block and the
/// channel it shares with application threads (the send ring, from the first unacknowledged
/// byte; the receive ring, readable bytes then out-of-order data stored in place).
///
/// Application threads append to the send ring and read from the receive ring without the
/// owner; the owner learns of both in `absorbApplication` (a write made bytes held that the
/// engine does not know yet; a read moved the ring's head) and tells the engine.
public final class TCPSocket: TimerWheelEntry {
    // The fields are ordered by size, eight-byte ones first, so that the object packs
    // (one per connection in the stack process).
    public internal(set) var connection: Connection
    public let channel: SocketChannel
    /// The listener that made the connection, until it hands it over.
    var listener: TCPEndpoints.Listener?
    /// Where this socket is armed in the owner's timer wheel, and for when.
    public var timerPlace = TimerWheelPlace()
    /// Bytes acknowledged when the stats page last listed this connection, and when: the
    /// delivery rate `netmp stat` shows is what was acknowledged since.
    public var listedAcknowledged: UInt64 = 0
    public var listedAt = Instant.zero
    /// The receive ring's head when the owner last looked: reads past it are news.
    var consumedSeen = 0
    /// Impossible ring positions (SendRing, ReceiveRing) already counted against the client.
    var positionFaultsSeen = 0
    /// Urgent data: the engine's count of urgent pointers last published, the position of
    /// a published urgent byte not yet arrived, and the application's last send(MSG_OOB)
    /// end taken (SocketChannel+Urgent).
    var urgentUpSeen = 0
    var urgentWaiting: Int?
    var urgentSeen: UInt32 = 0
    /// When a connection its listener defers (TCP_DEFER_ACCEPT) goes to accept() without data.
    var acceptDeferredUntil: Instant?
    /// What happened since the owner last took the events.
    public internal(set) var pendingEvents: ConnectionEvents = []
    /// Waiting in the owner's batch to be settled (TCPEndpoints.endBatch).
    var awaitingSettle = false
    /// Data or send space arrived since the last settle: pollers are owed a ring.
    var doorbellOwed = false
    /// The stack service's client whose socket this is (0: none, a stack's own): `netmp
    /// stat` names the program holding each connection by it.
    public var client: UInt32 = 0
    /// How the socket that made the connection shares its port (its listener's, for an
    /// accepted one): the port table weighs a bind against it while the connection lasts.
    public var reuse = PortReuse()

    /// A socket with new rings sized by the connection's configuration, or with the channel
    /// the application made before connecting (its sizes are SO_SNDBUF/SO_RCVBUF).
    ///
    /// The rings have their final size from the start: they are shared with application
    /// threads, and growing one under a concurrent reader would need a lock or an epoch.
    /// Their pages are untouched until used, so an idle connection costs what it wrote.
    init(_ connection: Connection, channel: SocketChannel? = nil) {
        self.connection = connection
        self.channel = channel ?? SocketChannel(sendCapacity: connection.configuration.sendBufferSize,
                                                receiveCapacity: connection.configuration.receiveBufferSize)
        self.channel.controlBlock = self
        consumedSeen = self.channel.receive.consumedPosition
    }

    public var tuple: FourTuple { connection.tuple }
    public var state: TCPState { connection.state }
    public var error: TCPError? { connection.error }

    // MARK: Any thread (through the channel)

    /// Bytes readable now (a lower bound when other threads read too).
    public var readable: Int { channel.receive.readable }
    /// Appends as much as fits; the owner sends it once it absorbs the write.
    public func write(_ bytes: UnsafeRawBufferPointer) -> Int { channel.send.write(bytes) }
    /// Reads what is published; the owner reopens the window once it absorbs the read.
    public func read(into destination: UnsafeMutableRawBufferPointer) -> Int { channel.receive.read(into: destination) }
    /// The peer finished sending and every byte it sent has been read.
    public var atEndOfStream: Bool { channel.receive.atEnd }

    // MARK: Owner

    /// Tells the engine what application threads did since the last look: bytes written
    /// (unless writing was shut down: bytes that raced a shutdown are never sent, as if the
    /// write had come after it) and bytes read (the window may reopen; with `now` it is
    /// auto-tuned).
    public func absorbApplication(now: Instant) {
        // The output options first: the application set them before it wrote the bytes
        // they govern, which a record about them may reach the owner after.
        let options = channel.outputOptions
        if options & NETMP_OUTPUT_SET != 0 {
            let cork = options & NETMP_OUTPUT_CORK != 0, noDelay = options & NETMP_OUTPUT_NODELAY != 0
            if connection.configuration.cork != cork { connection.setCork(cork) }
            if connection.configuration.noDelay != noDelay { connection.setNoDelay(noDelay) }
        }
        // The bytes before the urgent end: the application marks the end before it commits
        // the bytes, so bytes seen come with their mark. A mark past what is committed is
        // taken at a later look (the output request after the commit brings one).
        let written = channel.send.held - connection.sendQueued
        let urgentUp = channel.urgentUp
        if written > 0 && !connection.finQueued && connection.state != .closed { connection.queued(written) }
        if urgentUp != urgentUpSeen {
            let behind = channel.send.heldEnd &- urgentUp
            if behind >= 0 {
                urgentUpSeen = urgentUp
                if !connection.finQueued && behind <= connection.sendQueued { connection.markUrgent(behindEnd: behind) }
            } else if behind < -channel.send.capacity {
                urgentUpSeen = urgentUp // no writer could have put it there (a scribbled word): ignored
            }
        }
        let position = channel.receive.consumedPosition
        if position != consumedSeen {
            connection.consumed(position &- consumedSeen, now: now)
            consumedSeen = position
        }
    }

    /// Ring positions the application side left where no reader or writer could have put
    /// them (its region scribbled), since the last look: counted against its client.
    func takePositionFaults() -> Int {
        let faults = channel.send.impossiblePositions &+ channel.receive.impossiblePositions
        defer { positionFaultsSeen = faults }
        return faults &- positionFaultsSeen
    }

    /// shutdown(SHUT_WR): a FIN follows what was written.
    public func shutdownWrite(now: Instant) {
        absorbApplication(now: now)
        connection.close(now: now)
    }

    /// close(): shut down writing and stop reading (FIN-WAIT-2 may then time out).
    public func close(now: Instant) {
        absorbApplication(now: now)
        connection.orphan(now: now)
    }

    /// Changes the control block (socket options after connect); the caller settles after.
    public func updateConnection(_ body: (inout Connection) -> Void) { body(&connection) }

    public func takeEvents() -> ConnectionEvents {
        pendingEvents.formUnion(connection.takeEvents())
        defer { pendingEvents = [] }
        return pendingEvents
    }

    /// Carries out what the engine decided about an arriving segment's payload.
    func apply(_ result: InputResult, payload: UnsafeRawBufferPointer) {
        if let store = result.store {
            channel.receive.write(UnsafeRawBufferPointer(rebasing: payload[store.range]), at: store.offset)
        }
        if connection.urgentCount != urgentSeen || urgentWaiting != nil { publishUrgent(readable: result.readable) }
        if result.readable > 0 { channel.receive.publish(result.readable) }
        if result.acknowledged > 0 { channel.send.release(result.acknowledged) }
        // Pollers hear of it when the connection is settled: once per batch, not per segment.
        if result.readable > 0 || result.acknowledged > 0 { doorbellOwed = true }
    }

    /// The engine's urgent pointer for readers, before the data it lies in is published
    /// (readers must not pass a mark they have not seen): a new mark at its byte's ring
    /// position, or the byte of a published one that has now arrived.
    func publishUrgent(readable: Int) {
        let end = channel.receive.ownerTail &+ readable // published once this segment is
        if connection.urgentCount != urgentSeen, let sequence = connection.urgentSequence {
            urgentSeen = connection.urgentCount
            // RCV.NXT (less a FIN, which takes no place in the ring) is at `end`.
            let anchor = connection.receivedFin ? connection.receiveNext - 1 : connection.receiveNext
            let position = end &+ (sequence - anchor)
            channel.publishUrgent(at: position, arrivedBelow: end)
            urgentWaiting = position < end ? nil : position
            doorbellOwed = true
        } else if let position = urgentWaiting, channel.completeUrgent(at: position, arrivedBelow: end) {
            urgentWaiting = nil
            doorbellOwed = true
        }
    }

    /// Publishes to the channel what the engine's events mean for application threads.
    func publish(_ events: ConnectionEvents) {
        var status: SocketChannel.Status = []
        if events.contains(.connected) && connection.state != .synReceived { status.insert(.established) }
        var errorNumber: Int32 = 0
        if events.contains(.failed), let error = connection.error {
            status.insert(.failed)
            errorNumber = error.errorNumber
        }
        if connection.state == .closed { status.insert(.closed) }
        if connection.everythingAcknowledged && connection.finQueued { status.insert(.drained) }
        let news = status.subtracting(channel.status)
        if !news.isEmpty { channel.publish(news, error: errorNumber) }
        // After any failure in the same events (see SocketChannel.publish).
        if events.contains(.peerClosed) {
            channel.receive.publishEndOfStream()
            channel.doorbell.ring()
        }
    }
}

extension TCPError {
    /// The errno Linux reports for this failure.
    public var errorNumber: Int32 {
        switch self {
        case .connectionRefused: 111 // ECONNREFUSED
        case .connectionReset: 104   // ECONNRESET
        case .timedOut: 110          // ETIMEDOUT
        case .unreachable(let code): ICMPErrorReport.errorNumber(unreachableCode: code).errno
        }
    }
}

extension SocketChannel {
    /// Owner only: the control block this channel belongs to (nil once it ended).
    public var socket: TCPSocket? {
        get { controlBlock.map { unsafeDowncast($0, to: TCPSocket.self) } }
        set { controlBlock = newValue }
    }
}
