import NetMPTCP
import NetMPWire
import Testing

/// Output through a link that segments (TSO): several MSS in one segment handed to the
/// link, cut at `segmentSize`; Nagle, TCP_CORK and the windows still decide what goes.
@Suite struct SegmentationOffloadTests {
    static func offloading(noDelay: Bool = false, cork: Bool = false) -> TCPConfiguration {
        var c = Fixture.configuration()
        c.segmentationLimit = TCPConfiguration.superSegmentLimit
        c.noDelay = noDelay
        c.cork = cork
        return c
    }

    @Test func established_bulkData_oneSuperSegmentPerCongestionWindow() {
        var c = Fixture.established(Self.offloading())
        c.queued(100_000)
        let out = Fixture.drain(&c)
        // The initial window is ten segments (RFC 6928): one super-segment of ten MSS.
        #expect(out.count == 1)
        #expect(out[0].payloadLength == 10 * 1460 && out[0].segmentSize == 1460)
        #expect(c.flight == 10 * 1460)
    }

    @Test func established_withoutOffload_segmentsStayOneMSS() {
        var c = Fixture.established()
        c.queued(100_000)
        let out = Fixture.drain(&c)
        #expect(out.count == 10 && out.allSatisfy { $0.payloadLength == 1460 && $0.segmentSize == 0 })
    }

    @Test func established_shortTail_ridesAlongOnlyWithNothingInFlight() {
        var c = Fixture.established(Self.offloading())
        c.queued(3 * 1460 + 500)
        let first = Fixture.drain(&c)
        // Nothing was in flight: the short tail may go at once (Nagle), inside the super-segment.
        #expect(first.map(\.payloadLength) == [3 * 1460 + 500])
        #expect(first[0].header.flags.contains(.psh))
        c.queued(2 * 1460 + 700)
        let second = Fixture.drain(&c)
        // Now data is in flight: the whole segments go, the short tail waits (Nagle).
        #expect(second.map(\.payloadLength) == [2 * 1460])
    }

    @Test func established_noDelay_sendsTailInSuperSegment_corkHoldsIt() {
        var c = Fixture.established(Self.offloading(noDelay: true))
        c.queued(1460)
        _ = Fixture.drain(&c)
        c.queued(2 * 1460 + 700)
        #expect(Fixture.drain(&c).map(\.payloadLength) == [2 * 1460 + 700])

        var corked = Fixture.established(Self.offloading(cork: true))
        corked.queued(2 * 1460 + 700)
        #expect(Fixture.drain(&corked).map(\.payloadLength) == [2 * 1460])
    }

    @Test func established_peerWindowLimits_superSegmentStopsAtWholeSegment() {
        var c = Fixture.synSent(Self.offloading())
        _ = c.handle(Fixture.segment([.syn, .ack], seq: Fixture.peerISS, ack: Fixture.iss.raw + 1, window: 5000,
                                     options: Fixture.synAckOptions(scale: 0)),
                     payloadLength: 0, now: Fixture.t0)
        _ = Fixture.drain(&c)
        c.queued(20_000)
        let out = Fixture.drain(&c)
        #expect(out.first?.payloadLength == 3 * 1460 && out.first?.segmentSize == 1460)
    }

    @Test func established_finAfterData_onLastSuperSegment() {
        var c = Fixture.established(Self.offloading())
        c.queued(4 * 1460)
        c.close(now: Fixture.t0)
        let out = Fixture.drain(&c)
        #expect(out.count == 1 && out[0].payloadLength == 4 * 1460 && out[0].header.flags.contains(.fin))
    }

    /// A super-segment that arrives whole (GRO) counts as the segments it carries: it is
    /// acknowledged at once, where one small segment waits for the delayed-ACK timer.
    @Test func established_coalescedArrival_acknowledgedAtOnce() {
        var c = Fixture.established()
        var seq = Fixture.peerISS + 1
        func arrive(_ length: Int) -> [OutgoingSegment] {
            _ = c.handle(Fixture.segment([.ack], seq: seq, ack: Fixture.iss.raw + 1), payloadLength: length, now: Fixture.t0)
            seq &+= UInt32(length)
            c.consumed(length)
            return Fixture.drain(&c)
        }
        for _ in 0..<20 { _ = arrive(10) } // past the quick ACKs of the connection's start
        if arrive(10).isEmpty { _ = arrive(10) } // end on an ACK: the next segment starts a pair
        #expect(arrive(10).isEmpty, "one small segment: the ACK is delayed")
        let acks = arrive(20 * 1460)
        #expect(acks.count == 1 && acks.first?.header.acknowledgmentNumber == seq)
    }
}
