import NetMPChannel
import NetMPStack
import NetMPTCP
import NetMPTestSupport
import NetMPWire
import Testing

/// A frame read in two places (ProtocolLoop's landing): the host takes the plain TCP
/// segment whose payload the link put in the connection's receive ring, stored in place,
/// and declines everything else untouched, to be joined and received whole.
@Suite struct SplitFrameTests {
    /// A host with one established connection from the peer's port 40000 to our port 80.
    func connected() throws -> (Host, TCPSocket, UInt32) {
        let host = Lab.host()
        host.tcp = TCPEndpoints(configuration: TCPConfiguration(), secret: (1, 2))
        _ = host.feed(Lab.arp(.request))
        try host.tcp!.listen(port: 80)
        let syn = segment(.syn, seq: 1000, ack: 0, payload: [])
        let synAck = try Sent(host.feed(syn)[0]).tcp()
        _ = host.feed(segment(.ack, seq: 1001, ack: synAck.sequenceNumber &+ 1, payload: []))
        let socket = try #require(host.tcp!.accept(port: 80))
        return (host, socket, synAck.sequenceNumber &+ 1)
    }

    func segment(_ flags: TCPFlags, seq: UInt32, ack: UInt32, payload: [UInt8]) -> [UInt8] {
        let header = TCPSegmentHeader(sourcePort: 40000, destinationPort: 80, sequenceNumber: seq,
                                      acknowledgmentNumber: ack, flags: flags, window: 65535)
        return Lab.ipv4(proto: IPProtocol.tcp, payloadLength: 20 + payload.count) { out in
            for (i, byte) in payload.enumerated() { out[20 + i] = byte }
            header.emit(into: out, segmentLength: 20 + payload.count, source: Lab.peer, destination: Lab.us)
        }
    }

    static let headLength = 14 + 20 + 20
    static let trusted = ArrivalMarks(checksumsTrusted: true)

    /// `frame`'s payload put where the link would land it (the ring's landing zone), its
    /// headers handed over apart.
    func receiveLanded(_ frame: [UInt8], on host: Host, ring: ReceiveRing, marks: ArrivalMarks = trusted,
                       headLength: Int = headLength) throws -> Bool {
        let zone = try #require(ring.landingZone(limit: 1 << 20, minimum: 1))
        let payload = frame[headLength...]
        ring.landed(payload.count)
        UnsafeMutableRawBufferPointer(rebasing: zone[0..<payload.count]).copyBytes(from: payload)
        var sink = CollectingSink()
        return frame.withUnsafeBytes { bytes in
            host.receiveSplit(head: UnsafeRawBufferPointer(rebasing: bytes[0..<headLength]),
                              payload: UnsafeRawBufferPointer(rebasing: zone[0..<payload.count]),
                              marks: marks, now: .zero, sink: &sink)
        }
    }

    func readAll(_ ring: ReceiveRing) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ring.readable)
        let n = out.withUnsafeMutableBytes { ring.read(into: $0) }
        return Array(out[0..<n])
    }

    @Test func inOrderSegment_takenInPlace_readableAndNamedAsTheNextGuess() throws {
        let (host, socket, ack) = try connected()
        let ring = socket.channel.receive
        let data = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let zoneStart = try #require(ring.landingZone(limit: 1 << 20, minimum: 1)?.baseAddress)
        let before = host.counters.framesIn
        #expect(try receiveLanded(segment([.ack, .psh], seq: 1001, ack: ack, payload: data), on: host, ring: ring))
        #expect(host.counters.framesIn == before + 1)
        #expect(host.counters.bytesIn > 0)
        let arrival = try #require(host.tcp!.inOrderArrival)
        #expect(arrival.socket === socket && arrival.payload.baseAddress == UnsafeRawPointer(zoneStart)
                && arrival.payload.count == data.count)
        #expect(readAll(ring) == data)
        // The next one lands behind it, as the reader left it.
        let more = [UInt8](repeating: 0x5A, count: 500)
        #expect(try receiveLanded(segment(.ack, seq: 1001 + 3000, ack: ack, payload: more), on: host, ring: ring))
        #expect(readAll(ring) == more)
    }

    /// The same over IPv6 (no extension header): its payload length adds up to the parts.
    @Test func inOrderIPv6Segment_takenInPlace() throws {
        let v6 = HostTCPv6Tests()
        let host = v6.host()
        _ = host.feed(Lab6.solicitation(for: Lab6.us))
        try host.tcp!.listen(port: 81, families: .ipv6)
        func segment(_ flags: TCPFlags, seq: UInt32, ack: UInt32, payload: [UInt8]) -> [UInt8] {
            let header = TCPSegmentHeader(sourcePort: 40001, destinationPort: 81, sequenceNumber: seq,
                                          acknowledgmentNumber: ack, flags: flags, window: 65535)
            var bytes = [UInt8](repeating: 0, count: 20) + payload
            bytes.withUnsafeMutableBytes { _ = header.emit(into: $0, segmentLength: $0.count,
                                                           addresses: .v6(source: Lab6.peer, destination: Lab6.us)) }
            return Lab6.frame(ipv6Packet(upper: IPProtocol.tcp, payload: bytes, source: Lab6.peer, destination: Lab6.us))
        }
        let synAck = try v6.segment(try #require(host.feed(v6.syn(to: 81)).first)).1
        _ = host.feed(segment(.ack, seq: 1001, ack: synAck.sequenceNumber &+ 1, payload: []))
        let socket = try #require(host.tcp!.accept(port: 81))
        let data = (0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 3) }
        let frame = segment(.ack, seq: 1001, ack: synAck.sequenceNumber &+ 1, payload: data)
        #expect(try receiveLanded(frame, on: host, ring: socket.channel.receive, headLength: 14 + 40 + 20))
        #expect(readAll(socket.channel.receive) == data)
        // One byte more in the IPv6 header's payload length: the parts do not add up.
        var longer = segment(.ack, seq: 1001 + 2000, ack: synAck.sequenceNumber &+ 1, payload: data)
        longer[19] &+= 1
        #expect(try !receiveLanded(longer, on: host, ring: socket.channel.receive, headLength: 14 + 40 + 20))
    }

    /// A segment ahead of a hole lands at the readable end but belongs further on: it is
    /// moved there, and the hole's segment, received whole, makes both readable in order.
    @Test func outOfOrderSegment_movedToItsPlace_thenTheHoleFills() throws {
        let (host, socket, ack) = try connected()
        let ring = socket.channel.receive
        let first = [UInt8](repeating: 0x11, count: 1000), second = (0..<1400).map { UInt8(truncatingIfNeeded: $0) }
        #expect(try receiveLanded(segment(.ack, seq: 1001 + 1000, ack: ack, payload: second), on: host, ring: ring))
        #expect(ring.readable == 0)
        #expect(socket.connection.holdsOutOfOrderData)
        _ = host.feed(segment(.ack, seq: 1001, ack: ack, payload: first))
        #expect(!socket.connection.holdsOutOfOrderData)
        #expect(readAll(ring) == first + second)
    }

    @Test func otherFrames_declinedUntouched() throws {
        let (host, socket, ack) = try connected()
        let ring = socket.channel.receive
        let data = [UInt8](repeating: 0x33, count: 800)
        let plain = segment(.ack, seq: 1001, ack: ack, payload: data)
        let counted = host.counters.framesIn
        // Checksums the link did not vouch for are summed over the payload, on the whole frame.
        #expect(try !receiveLanded(plain, on: host, ring: ring, marks: .none))
        // Not to our MAC.
        var otherMAC = plain
        otherMAC[0] ^= 0x02
        #expect(try !receiveLanded(otherMAC, on: host, ring: ring))
        // Lengths that do not add up to the two parts (the IP header says one byte more).
        var longer = plain
        longer[17] &+= 1
        Lab.fixIPChecksum(&longer)
        #expect(try !receiveLanded(longer, on: host, ring: ring))
        // A fragment.
        var fragment = plain
        fragment[20] |= 0x20
        Lab.fixIPChecksum(&fragment)
        #expect(try !receiveLanded(fragment, on: host, ring: ring))
        // Not TCP (a UDP datagram whose header happens to be as long).
        let udp = Lab.udp(port: 80, payload: [UInt8](repeating: 0, count: 812))
        #expect(try !receiveLanded(udp, on: host, ring: ring))
        #expect(host.counters.framesIn == counted, "a declined frame is counted when it is received whole")
        #expect(ring.readable == 0 && !socket.connection.holdsOutOfOrderData)
        // The same segment whole: received as before.
        _ = host.feed(plain)
        #expect(readAll(ring) == data)
    }

    /// Where the ring's free space wraps, a payload that landed at the readable end and is
    /// stored further on is copied piece by piece so that none of it is overwritten before
    /// it is read.
    @Test func storeFromTheLandingZone_acrossTheWrap_intact() throws {
        let ring = ReceiveRing(capacity: 1024)
        // Move the readable end to 900: 124 bytes before the wrap.
        let filler = [UInt8](repeating: 0xEE, count: 900)
        filler.withUnsafeBytes { ring.write($0, at: 0) }
        ring.publish(900)
        #expect(readAll(ring) == filler)
        let zone = try #require(ring.landingZone(limit: 1 << 20, minimum: 1))
        #expect(zone.count == 124, "the landing zone ends where the ring's memory does")
        let payload = (0..<100).map { UInt8($0) }
        UnsafeMutableRawBufferPointer(rebasing: zone[0..<100]).copyBytes(from: payload)
        // Stored 60 bytes on: positions 960..<1060, wrapping after 64 of them.
        ring.write(UnsafeRawBufferPointer(rebasing: zone[0..<100]), at: 60)
        let hole = [UInt8](repeating: 0x77, count: 60)
        hole.withUnsafeBytes { ring.write($0, at: 0) }
        ring.publish(160)
        #expect(readAll(ring) == hole + payload)
        #expect(ring.landingZone(limit: 1 << 20, minimum: 1000) == nil, "less than the minimum free")
    }
}
