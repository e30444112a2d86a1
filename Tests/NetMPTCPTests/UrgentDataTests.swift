import NetMPTCP
import NetMPWire
import Testing

/// Urgent data in the engine (RFC 9293 3.8.5 with the BSD pointer RFC 6093 describes, as
/// Linux sends and reads it): SND.UP marks the last urgent byte, every segment before it
/// carries URG and the distance to just past that byte, one MSS at a time; an arriving
/// pointer names the byte before it, once.
@Suite struct UrgentDataTests {
    @Test func send_segmentsBeforeTheMarkCarryURG_oneMSSAtATime_untilAcknowledged() {
        var configuration = SegmentationOffloadTests.offloading(noDelay: true)
        configuration.segmentationLimit = TCPConfiguration.superSegmentLimit
        var c = Fixture.established(configuration)
        c.queued(3000)
        c.markUrgent(behindEnd: 0) // send(3000 bytes, MSG_OOB): the last one is urgent
        let out = Fixture.drain(&c)
        #expect(out.map(\.payloadLength) == [1460, 1460, 80], "no super-segment while urgent")
        let start = Fixture.iss.raw + 1
        #expect(out.allSatisfy { $0.header.flags.contains(.urg) })
        #expect(out.map(\.header.urgentPointer) == [3000, 1540, 80]) // just past byte 2999, from each
        // Acknowledged: urgent mode ends; more data goes as usual.
        _ = c.handle(Fixture.segment(.ack, seq: Fixture.peerISS + 1, ack: start + 3000), payloadLength: 0, now: Fixture.t0)
        #expect(c.sendUrgentUp == nil)
        c.queued(4000)
        let after = Fixture.drain(&c)
        #expect(after.count == 1 && after[0].payloadLength == 4000 && !after[0].header.flags.contains(.urg))
    }

    @Test func send_markInTheMiddle_laterSegmentsPlain() {
        var c = Fixture.established(SegmentationOffloadTests.offloading(noDelay: true))
        c.queued(100)
        c.markUrgent(behindEnd: 40) // byte 59 is the last urgent one
        let out = Fixture.drain(&c)
        #expect(out.count == 1 && out[0].header.flags.contains(.urg) && out[0].header.urgentPointer == 60)
        c.markUrgent(behindEnd: 101) // behind the queued data: nothing to mark
        #expect(c.sendUrgentUp == SequenceNumber(Fixture.iss.raw + 1) + 60)
    }

    @Test func receive_pointerNamesTheByteBeforeIt_onceAndNeverBack() {
        var c = Fixture.established()
        let seq = Fixture.peerISS + 1
        var urgent = Fixture.segment([.ack, .urg], seq: seq, ack: Fixture.iss.raw + 1)
        urgent.urgentPointer = 3 // 'abc' with 'c' urgent
        _ = c.handle(urgent, payloadLength: 5, now: Fixture.t0)
        #expect(c.urgentSequence == SequenceNumber(seq + 2) && c.urgentCount == 1)
        // The segment again (a retransmission): its byte is behind RCV.NXT, nothing new.
        _ = c.handle(urgent, payloadLength: 5, now: Fixture.t0)
        #expect(c.urgentCount == 1)
        // A pointer ahead of the data: a byte not yet received becomes the urgent one.
        var ahead = Fixture.segment([.ack, .urg], seq: seq + 5, ack: Fixture.iss.raw + 1)
        ahead.urgentPointer = 500
        _ = c.handle(ahead, payloadLength: 1, now: Fixture.t0)
        #expect(c.urgentSequence == SequenceNumber(seq + 5 + 499) && c.urgentCount == 2)
    }
}
