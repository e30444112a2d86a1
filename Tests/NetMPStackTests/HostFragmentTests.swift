import NetMPStack
import NetMPTCP
import NetMPTestSupport
import NetMPWire
import Testing

/// Fragments of both families: a UDP datagram larger than the MTU leaves in fragments and
/// is put back together whole, out of order, past duplicates; overlaps, bad lengths and
/// old packets are dropped by reason; memory per source and in all is bounded.
@Suite struct HostFragmentTests {
    /// The kernel's side of the lab as a netmp host of its own, which fragments what it sends.
    func peer(ipv6: Bool) -> Host {
        var configuration = StackConfiguration(tapName: "p", address: Lab.peer, prefixLength: 24, mac: Lab.peerMAC)
        if ipv6 { configuration.ipv6Addresses = [IPv6InterfaceAddress(Lab6.peer, prefixLength: 64)] }
        let peer = Host(configuration: configuration)
        var sink = CollectingSink()
        peer.startDuplicateAddressDetection(now: .zero, probes: false, sink: &sink)
        peer.tick(now: .zero + .seconds(1), sink: &sink)
        _ = peer.feed(Lab.arp(.request, from: Lab.ourMAC, ip: Lab.us, asking: Lab.peer)) // it knows us
        if ipv6 { _ = peer.feed(Lab6.solicitation(for: Lab6.peer, from: Lab6.us, mac: Lab.ourMAC)) }
        return peer
    }

    /// Our host, knowing the peer, with a UDP receiver on port 9 that keeps what arrives.
    func us(ipv6: Bool, delivered: @escaping ([UInt8], Endpoint) -> Void) -> Host {
        let host = ipv6 ? Lab6.host() : Lab.host()
        _ = host.feed(Lab.arp(.request))
        if ipv6 { _ = host.feed(Lab6.solicitation(for: Lab6.us)) }
        host.udpReceiver = { payload, arrival in
            guard arrival.destination.port == 9 else { return .noSocket }
            delivered(Array(payload), arrival.source)
            return .delivered
        }
        return host
    }

    /// The frames the peer sends for one UDP datagram of `length` bytes to our port 9.
    func fragments(ipv6: Bool, length: Int) -> [[UInt8]] {
        let peer = peer(ipv6: ipv6)
        var sink = CollectingSink()
        let destination = ipv6 ? Endpoint(Lab6.us, 9) : Endpoint(Lab.us, 9)
        _ = peer.sendUDP(from: 4000, to: destination, length: length, now: .zero, sink: &sink) { out in
            for i in 0..<out.count { out[i] = UInt8(truncatingIfNeeded: i &* 7) }
        }
        return sink.frames
    }

    static func payload(_ length: Int) -> [UInt8] { (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) } }

    /// The ICMP or ICMPv6 time-exceeded messages (code 1) among `frames` (the rest are
    /// neighbour discovery's probes).
    static func timeExceeded(_ frames: [[UInt8]], ipv6: Bool) -> Int {
        frames.filter { frame in
            if ipv6, let sent = try? Sent6(frame), case .timeExceeded(1, _)? = try? sent.icmp() { return true }
            if !ipv6, let sent = try? Sent(frame), case .timeExceeded(1, _)? = try? sent.icmp() { return true }
            return false
        }.count
    }

    @Test(arguments: [false, true])
    func largeDatagram_leavesInFragments_arrivesWholeOutOfOrder(ipv6: Bool) throws {
        let frames = fragments(ipv6: ipv6, length: 5000)
        #expect(frames.count == 4 && frames.allSatisfy { $0.count <= 1514 }, "\(frames.map(\.count))")
        for (index, frame) in frames.enumerated() {
            if ipv6 {
                let sent = try Sent6(frame)
                #expect(sent.header.nextHeader == IPv6NextHeader.fragment && sent.payload[0] == IPProtocol.udp)
                let word = UInt16(sent.payload[2]) << 8 | UInt16(sent.payload[3])
                #expect(Int(word & ~7) == index * 1448 && (word & 1 == 1) == (index < 3))
            } else {
                let ip = try Sent(frame).ip()
                #expect(!ip.dontFragment && ip.fragmentOffset == index * 1480 && ip.moreFragments == (index < 3))
            }
        }
        var got: [([UInt8], Endpoint)] = []
        let host = us(ipv6: ipv6) { got.append(($0, $1)) }
        for frame in frames.reversed() + [frames[1]] { #expect(host.feed(frame).isEmpty) } // a late repeat starts nothing whole
        #expect(got.count == 1 && got.first?.0 == Self.payload(5000))
        #expect(got.first?.1 == (ipv6 ? Endpoint(Lab6.peer, 4000) : Endpoint(Lab.peer, 4000)))
        #expect(host.counters.reassembled == 1 && host.reassembly.packetsWaiting == 1, "the repeat waits, then times out")
        var sink = CollectingSink()
        host.tick(now: .zero + .seconds(61), sink: &sink)
        #expect(host.reassembly.packetsWaiting == 0 && host.counters.drops[.fragmentTimeout] == 1)
        #expect(Self.timeExceeded(sink.frames, ipv6: ipv6) == 0, "no first fragment came: no time exceeded")
    }

    @Test func duplicatesDropAlone_overlapsAbandonThePacket() throws {
        let frames = fragments(ipv6: false, length: 5000)
        var got: [[UInt8]] = []
        let host = us(ipv6: false) { payload, _ in got.append(payload) }
        for frame in [frames[0], frames[0], frames[1], frames[2], frames[3]] { _ = host.feed(frame) }
        #expect(got == [Self.payload(5000)] && host.counters.drops[.fragmentDuplicate] == 1)
        // The second fragment moved 8 bytes back overlaps the first: the packet is abandoned.
        var overlapping = frames[1]
        let word = (UInt16(overlapping[20]) << 8 | UInt16(overlapping[21])) - 1
        overlapping[20] = UInt8(word >> 8); overlapping[21] = UInt8(word & 0xFF)
        Lab.fixIPChecksum(&overlapping)
        for frame in [frames[0], overlapping, frames[2], frames[3]] { _ = host.feed(frame) }
        #expect(got.count == 1 && host.counters.drops[.fragmentOverlap] == 1)
    }

    /// A packet whose first fragment came and whose rest did not: abandoned after 30 s
    /// (IPv4) or 60 s (IPv6), and its sender told with a time exceeded (code 1) quoting it.
    @Test(arguments: [false, true])
    func incompletePacket_timesOut_senderTold(ipv6: Bool) throws {
        let frames = fragments(ipv6: ipv6, length: 5000)
        let host = us(ipv6: ipv6) { _, _ in Issue.record("nothing is whole") }
        _ = host.feed(frames[0])
        var sink = CollectingSink()
        host.tick(now: .zero + .seconds(ipv6 ? 59 : 29), sink: &sink)
        #expect(Self.timeExceeded(sink.frames, ipv6: ipv6) == 0 && host.reassembly.packetsWaiting == 1)
        host.tick(now: .zero + .seconds(ipv6 ? 61 : 31), sink: &sink)
        #expect(host.counters.drops[.fragmentTimeout] == 1 && host.reassembly.packetsWaiting == 0)
        #expect(Self.timeExceeded(sink.frames, ipv6: ipv6) == 1)
    }

    /// One source's flood of first fragments holds at most its share of the buffers (its
    /// own oldest go first) and evicts nobody else's; another source's packet completes.
    @Test func floodFromOneSource_cannotStarveAnother() throws {
        let frames = fragments(ipv6: false, length: 3000)
        var got: [[UInt8]] = []
        let host = us(ipv6: false) { payload, _ in got.append(payload) }
        _ = host.feed(frames[0]) // the peer's packet, begun before the flood
        let flooder = IPv4Address(10, 77, 0, 66)
        for id in 0..<200 {
            var frame = Lab.ipv4(proto: IPProtocol.udp, payloadLength: 1480, from: flooder) { _ in }
            frame[18] = UInt8(id >> 8); frame[19] = UInt8(id & 0xFF) // its own identification
            frame[20] = 0x20                                       // more fragments
            Lab.fixIPChecksum(&frame)
            _ = host.feed(frame)
        }
        #expect(host.reassembly.packetsWaiting == FragmentReassembly.perSource + 1)
        #expect(host.counters.drops[.fragmentEvicted] == UInt64(200 - FragmentReassembly.perSource))
        for frame in frames[1...] { _ = host.feed(frame) }
        #expect(got == [Self.payload(3000)])
    }

    /// RFC 8200 4.5: a middle fragment whose length is not a multiple of 8 is answered with
    /// a parameter problem pointing at the payload length.
    @Test func ipv6MiddleFragmentOfOddLength_parameterProblem() throws {
        var frame = fragments(ipv6: true, length: 5000)[0]
        frame.removeLast()
        let length = (UInt16(frame[18]) << 8 | UInt16(frame[19])) - 1
        frame[18] = UInt8(length >> 8); frame[19] = UInt8(length & 0xFF)
        let host = us(ipv6: true) { _, _ in Issue.record("nothing is whole") }
        let answer = try Sent6(try #require(host.feed(frame).first))
        guard case .parameterProblem(0, 4, _) = try answer.icmp() else { Issue.record("no parameter problem"); return }
        #expect(host.counters.drops[.fragmentBadLength] == 1)
    }

    /// A datagram to our own address is not fragmented: it is looped whole.
    @Test func largeDatagramToOwnAddress_loopedWhole() {
        var got: [[UInt8]] = []
        let host = us(ipv6: false) { payload, _ in got.append(payload) }
        var sink = CollectingSink()
        _ = host.sendUDP(from: 4000, to: Endpoint(Lab.us, 9), length: 20_000, now: .zero, sink: &sink) { out in
            for i in 0..<out.count { out[i] = UInt8(truncatingIfNeeded: i &* 7) }
        }
        host.receiveLoopedFrames(now: .zero, sink: &sink)
        #expect(got == [Self.payload(20_000)] && sink.frames.isEmpty && host.counters.fragmentsOut == 0)
    }
}
