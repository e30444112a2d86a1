import CNetMPChannel
import Synchronization

/// Urgent data (send(MSG_OOB), recv(MSG_OOB), SO_OOBINLINE, SIOCATMARK) as Linux keeps it:
/// the urgent byte stays in the stream at its mark; a read never crosses the mark once it
/// has copied something; unless SO_OOBINLINE the byte is skipped by reads and taken by
/// recv(MSG_OOB) instead. The owner publishes the mark in the slot's `urgent` word before
/// the data it lies in, so no reader passes a mark it has not seen (Linux's tcp_urg runs
/// before tcp_data_queue); readers move it to READ and clear it once they read past it.
public struct UrgentMark: Equatable, Sendable {
    /// The urgent byte's receive ring position.
    public var position: Int
    /// NETMP_URGENT_*.
    public var state: UInt64
    /// The byte, once VALID or READ.
    public var byte: UInt8

    init(position: Int, state: UInt64, byte: UInt8) {
        self.position = position
        self.state = state
        self.byte = byte
    }

    init?(_ word: UInt64) {
        guard word != 0 else { return nil }
        position = Int(word >> 16)
        state = word >> 8 & 0xFF
        byte = UInt8(truncatingIfNeeded: word)
    }

    var word: UInt64 { UInt64(position) << 16 | state << 8 | UInt64(byte) }
}

extension SocketChannel {
    typealias UrgentSlot = netmp_stream_slot

    var urgentWord: UnsafeMutablePointer<Atomic<UInt64>> {
        slot.atomic(UInt64.self, at: MemoryLayout<UrgentSlot>.offset(of: \UrgentSlot.urgent)!)
    }
    var urgentUpWord: UnsafeMutablePointer<Atomic<Int>> {
        slot.atomic(Int.self, at: MemoryLayout<UrgentSlot>.offset(of: \UrgentSlot.urgent_up)!)
    }

    /// The urgent mark readers see now (nil: none).
    public var urgentMark: UrgentMark? { UrgentMark(urgentWord.pointee.load(ordering: .acquiring)) }

    // MARK: Application threads

    /// One read of the stream (`peek`: MSG_PEEK), as Linux's tcp_recvmsg reads around the
    /// urgent mark; `copied`: what the calling receive already has. `atMark`: nothing was
    /// read because the read stands at the mark with data already copied.
    public func readStream(into destination: UnsafeMutableRawBufferPointer, inline: Bool, copied: Int,
                           peek: Bool) -> (count: Int, atMark: Bool) {
        var skip = 0 // a peek's urgent byte to look past
        while true {
            let word = urgentWord.pointee.load(ordering: .acquiring)
            guard let mark = UrgentMark(word) else { break }
            let head = receive.headPosition
            if mark.position < head { // read past by another reader: the mark is over
                _ = urgentWord.pointee.compareExchange(expected: word, desired: 0, ordering: .acquiringAndReleasing)
                continue
            }
            if mark.position > head {
                let limited = UnsafeMutableRawBufferPointer(rebasing: destination[..<min(destination.count, mark.position - head)])
                return (peek ? receive.peek(into: limited) : receive.read(into: limited), false)
            }
            if copied > 0 { return (0, true) }
            if inline || mark.state == NETMP_URGENT_NOT_YET { break }
            // The urgent byte is next and is not data: step over it (a peek looks past it).
            if peek { skip = 1; break }
            if receive.skipOne(at: head) {
                _ = urgentWord.pointee.compareExchange(expected: word, desired: 0, ordering: .acquiringAndReleasing)
            }
        }
        if peek { return (receive.peek(into: destination, skipping: skip), false) }
        let n = receive.read(into: destination)
        // An inline urgent byte read as data: the mark is over (Linux clears urg_data once
        // copied_seq passes it), and POLLPRI with it.
        let word = urgentWord.pointee.load(ordering: .acquiring)
        if n > 0, let mark = UrgentMark(word), mark.position < receive.headPosition {
            _ = urgentWord.pointee.compareExchange(expected: word, desired: 0, ordering: .acquiringAndReleasing)
        }
        return (n, false)
    }

    /// recv(MSG_OOB) on a socket without SO_OOBINLINE: the urgent byte, once (`peek`
    /// leaves it), as Linux's tcp_recv_urg: EINVAL when there is none or it was taken,
    /// EAGAIN while it has not arrived, 0 after the peer's FIN; `into` of no bytes takes
    /// it all the same and returns 0 (MSG_TRUNC).
    public func readUrgent(into destination: UnsafeMutableRawBufferPointer, peek: Bool) -> Result<Int, UrgentError> {
        while true {
            let word = urgentWord.pointee.load(ordering: .acquiring)
            guard var mark = UrgentMark(word), mark.state != NETMP_URGENT_READ else { return .failure(.none) }
            guard mark.state == NETMP_URGENT_VALID else {
                return receive.endOfStreamArrived || !status.isDisjoint(with: [.closed, .readShut]) ? .success(0) : .failure(.notYet)
            }
            if !peek {
                mark.state = NETMP_URGENT_READ
                guard urgentWord.pointee.compareExchange(expected: word, desired: mark.word, ordering: .acquiringAndReleasing).exchanged else { continue }
            }
            guard destination.count > 0 else { return .success(0) }
            destination[0] = mark.byte
            return .success(1)
        }
    }
    public enum UrgentError: Error { case none, notYet }

    /// SIOCATMARK: the next byte to read is the urgent one (or the read stopped at its mark).
    public var atUrgentMark: Bool { urgentMark.map { $0.position == receive.headPosition } ?? false }

    /// POLLPRI: an urgent byte is in, not taken by recv(MSG_OOB) and not read past.
    public var urgentPending: Bool {
        guard let mark = urgentMark else { return false }
        return mark.state == NETMP_URGENT_VALID && mark.position >= receive.headPosition
    }

    /// Whether the only readable byte is an urgent one that reads skip (POLLIN must not say
    /// readable then, as Linux's tcp_stream_is_readable counts it out).
    public func urgentByteIsNext(inline: Bool) -> Bool {
        guard !inline, let mark = urgentMark, mark.state != NETMP_URGENT_NOT_YET else { return false }
        return mark.position == receive.headPosition
    }

    /// send(MSG_OOB) wrote up to send ring position `end`: its last byte is urgent. The
    /// owner takes it at its next look, before the output request that follows.
    public func markUrgentSent(upTo end: Int) { urgentUpWord.pointee.store(end, ordering: .releasing) }

    // MARK: Owner

    /// The send ring position the application last marked urgent (0: none).
    public var urgentUp: Int { urgentUpWord.pointee.load(ordering: .acquiring) }

    /// Publishes a new urgent mark at receive ring `position`: NOT_YET, or VALID with its
    /// byte if the byte is already in the ring's storage (written, published or not).
    public func publishUrgent(at position: Int, arrivedBelow end: Int) {
        let mark = position < end ? UrgentMark(position: position, state: NETMP_URGENT_VALID, byte: receive.byte(at: position))
            : UrgentMark(position: position, state: NETMP_URGENT_NOT_YET, byte: 0)
        urgentWord.pointee.store(mark.word, ordering: .releasing)
    }

    /// The mark published NOT_YET at `position`: its byte is now in; true when it is.
    @discardableResult
    public func completeUrgent(at position: Int, arrivedBelow end: Int) -> Bool {
        guard position < end else { return false }
        let word = urgentWord.pointee.load(ordering: .acquiring)
        if var mark = UrgentMark(word), mark.position == position, mark.state == NETMP_URGENT_NOT_YET {
            mark.state = NETMP_URGENT_VALID
            mark.byte = receive.byte(at: position)
            _ = urgentWord.pointee.compareExchange(expected: word, desired: mark.word, ordering: .acquiringAndReleasing)
        }
        return true
    }
}
