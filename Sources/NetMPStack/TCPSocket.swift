import NetMPTCP
import NetMPWire

/// One TCP connection with its buffers, as the stack's owner thread holds it: the engine's
/// control block, the send ring (from the first unacknowledged byte) and the receive ring
/// (readable bytes, then out-of-order data stored in place).
public final class TCPSocket {
    public internal(set) var connection: Connection
    let sendBuffer: ByteRing
    let receiveBuffer: ByteRing
    /// What happened since the application last took the events.
    public internal(set) var pendingEvents: ConnectionEvents = []
    /// Set for connections a listener made, until accepted.
    var listenerPort: UInt16?
    /// The deadline this socket is armed for in the owner's timer wheel.
    var scheduledDeadline: Instant?

    /// Rings start small and grow with the connection's needs: an idle connection costs
    /// 2 x 128 KiB, a bulk one up to the configured buffer sizes.
    static let initialSendBuffer = 128 << 10

    init(_ connection: Connection) {
        self.connection = connection
        sendBuffer = ByteRing(capacity: min(connection.configuration.sendBufferSize, Self.initialSendBuffer))
        receiveBuffer = ByteRing(capacity: connection.receiveWindowLimit)
    }

    public var tuple: FourTuple { connection.tuple }
    public var state: TCPState { connection.state }
    public var error: TCPError? { connection.error }
    /// Bytes the application can read now.
    public var readable: Int { receiveBuffer.count }
    /// Bytes the application can write now.
    public var writable: Int { connection.finQueued ? 0 : sendBuffer.free }
    /// The peer finished sending and every byte it sent has been read.
    public var atEndOfStream: Bool {
        receiveBuffer.count == 0 && connection.receivedFin
    }

    /// Appends as much as fits; the stack sends it at the next flush.
    public func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard !connection.finQueued, connection.state != .closed else { return 0 }
        // Send-buffer tuning: grow when full and the congestion window could use more.
        if sendBuffer.free < bytes.count, sendBuffer.capacity < connection.configuration.sendBufferSize,
           connection.congestion.window * 2 > sendBuffer.capacity {
            sendBuffer.grow(to: min(sendBuffer.capacity * 2, connection.configuration.sendBufferSize))
        }
        let n = sendBuffer.append(bytes)
        if n > 0 { connection.queued(n) }
        return n
    }

    /// Moves readable bytes out; the window reopens as the application reads.
    public func read(into destination: UnsafeMutableRawBufferPointer, now: Instant) -> Int {
        let n = receiveBuffer.read(into: destination)
        if n > 0 { connection.consumed(n, now: now) }
        // The window may have grown: the ring must hold it before it is advertised.
        if connection.receiveWindowLimit > receiveBuffer.capacity { receiveBuffer.grow(to: connection.receiveWindowLimit) }
        return n
    }

    /// shutdown(SHUT_WR): a FIN follows what was written.
    public func shutdownWrite(now: Instant) { connection.close(now: now) }

    /// close(): shut down writing and stop reading (FIN-WAIT-2 may then time out).
    public func close(now: Instant) { connection.orphan(now: now) }

    public func takeEvents() -> ConnectionEvents {
        pendingEvents.formUnion(connection.takeEvents())
        defer { pendingEvents = [] }
        return pendingEvents
    }

    /// Carries out what the engine decided about an arriving segment's payload.
    func apply(_ result: InputResult, payload: UnsafeRawBufferPointer) {
        if let store = result.store {
            receiveBuffer.write(UnsafeRawBufferPointer(rebasing: payload[store.range]), at: store.offset)
        }
        receiveBuffer.advanceTail(result.readable)
        sendBuffer.discard(result.acknowledged)
    }
}
