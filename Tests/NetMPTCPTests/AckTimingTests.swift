import Testing
import NetMPTCP
import NetMPWire

/// When a connection acknowledges: a request's ACK waits briefly to ride on the answer, and
/// a bare window update goes only for room the reader made.
@Suite struct AckTimingTests {
    static let hold = TCPConfiguration().answerAckHold

    /// A passive connection whose buffer is larger than the 64 KiB its SYN-ACK could offer
    /// (a SYN's window is never scaled), right after the handshake's last ACK.
    static func accepted() -> Connection {
        let syn = TCPSegmentHeader(sourcePort: Fixture.client.port, destinationPort: Fixture.server.port,
                                   sequenceNumber: 5000, acknowledgmentNumber: 0, flags: .syn, window: 65_535,
                                   options: Fixture.synAckOptions(scale: 7))
        var config = Fixture.configuration()
        config.receiveBufferSize = 131_072
        var c = Connection.accept(syn, tuple: FourTuple(local: Fixture.server, remote: Fixture.client),
                                  iss: SequenceNumber(9000), now: Fixture.t0, configuration: config)
        _ = c.nextSegment(now: Fixture.t0) // the SYN-ACK
        _ = c.handle(fromClient(.ack, seq: 5001), payloadLength: 0, now: Fixture.t0)
        _ = c.takeEvents()
        return c
    }

    static func fromClient(_ flags: TCPFlags, seq: UInt32) -> TCPSegmentHeader {
        TCPSegmentHeader(sourcePort: Fixture.client.port, destinationPort: Fixture.server.port, sequenceNumber: seq,
                         acknowledgmentNumber: 9001, flags: flags, window: 1000)
    }

    /// The window the SYN-ACK could not offer is no reason for a frame of its own: the
    /// peer still has 64 KiB, and the next ACK or answer carries the full window.
    @Test func handshakeEnd_sendsNoWindowUpdate() {
        var c = Self.accepted()
        #expect(c.state == .established)
        #expect(Fixture.drain(&c).isEmpty)
        #expect(c.nextDeadline == nil)
    }

    /// A request (one segment that ends with PSH) is not acknowledged at once in the
    /// quick-ACK start: the answer, queued within the hold, carries the ACK and the window.
    @Test func request_ackRidesOnTheAnswer() throws {
        var c = Self.accepted()
        _ = c.handle(Self.fromClient([.ack, .psh], seq: 5001), payloadLength: 100, now: Fixture.t0)
        #expect(c.unread == 100)
        #expect(Fixture.drain(&c).isEmpty)
        #expect(c.nextDeadline == Fixture.t0 + Self.hold)
        let later = Fixture.t0 + .microseconds(200)
        c.consumed(100, now: later) // a small read alone sends no window update
        #expect(Fixture.drain(&c, now: later).isEmpty)
        c.queued(50)
        let answer = Fixture.drain(&c, now: later)
        #expect(answer.count == 1)
        let header = try #require(answer.first).header
        #expect(header.acknowledgmentNumber == 5101 && answer[0].payloadLength == 50)
        #expect(Int(header.window) << Int(c.info.receiveWindowScale) == 131_072)
        #expect(c.nextDeadline != Fixture.t0 + Self.hold) // only the retransmission timer is left
        // Only the connection's first data is held: the next request is acknowledged at once.
        _ = c.handle(Self.fromClient([.ack, .psh], seq: 5101), payloadLength: 100, now: later)
        #expect(Fixture.drain(&c, now: later).count == 1)
    }

    /// Without an answer, the hold's end sends the ACK.
    @Test func request_unanswered_ackAtTheHoldsEnd() throws {
        var c = Self.accepted()
        _ = c.handle(Self.fromClient([.ack, .psh], seq: 5001), payloadLength: 100, now: Fixture.t0)
        c.fireTimers(now: Fixture.t0 + Interval(nanoseconds: Self.hold.nanoseconds - 1_000))
        #expect(Fixture.drain(&c).isEmpty)
        c.fireTimers(now: Fixture.t0 + Self.hold)
        let ack = Fixture.drain(&c, now: Fixture.t0 + Self.hold)
        #expect(ack.count == 1 && ack[0].header.flags == .ack && ack[0].header.acknowledgmentNumber == 5101)
    }

    /// What still goes at once: a second segment, a segment without PSH (more is coming:
    /// the quick-ACK start answers it as Linux does), and TCP_QUICKACK on a held ACK.
    @Test func ackAtOnce_secondSegment_noPush_quickAck() {
        var two = Self.accepted()
        _ = two.handle(Self.fromClient([.ack, .psh], seq: 5001), payloadLength: 100, now: Fixture.t0)
        _ = two.handle(Self.fromClient([.ack, .psh], seq: 5101), payloadLength: 100, now: Fixture.t0)
        let both = Fixture.drain(&two)
        #expect(both.count == 1 && both[0].header.acknowledgmentNumber == 5201)

        var noPush = Self.accepted()
        _ = noPush.handle(Self.fromClient(.ack, seq: 5001), payloadLength: 1000, now: Fixture.t0)
        #expect(Fixture.drain(&noPush).count == 1)

        var asked = Self.accepted()
        _ = asked.handle(Self.fromClient([.ack, .psh], seq: 5001), payloadLength: 100, now: Fixture.t0)
        #expect(Fixture.drain(&asked).isEmpty)
        asked.setQuickAck(true)
        let flushed = Fixture.drain(&asked)
        #expect(flushed.count == 1 && flushed[0].header.acknowledgmentNumber == 5101)
    }

    /// Room the reader made goes out as a window update once it is worth a frame (two
    /// segments, RFC 1122 4.2.3.3's sender-side rule), not before.
    @Test func readerMakesRoom_windowUpdate() throws {
        var c = Self.accepted()
        var seq: UInt32 = 5001
        for _ in 0..<2 {
            _ = c.handle(Self.fromClient(.ack, seq: seq), payloadLength: 1460, now: Fixture.t0)
            seq += 1460
        }
        let ack = Fixture.drain(&c)
        let shift = Int(c.info.receiveWindowScale)
        #expect(ack.count == 1 && Int(ack[0].header.window) == (131_072 - 2 * 1460) >> shift)
        c.consumed(1000)
        #expect(Fixture.drain(&c).isEmpty)
        c.consumed(1920)
        let update = Fixture.drain(&c)
        #expect(update.count == 1)
        let header = try #require(update.first).header
        #expect(header.flags == .ack && header.acknowledgmentNumber == seq && Int(header.window) << shift == 131_072)
    }
}
