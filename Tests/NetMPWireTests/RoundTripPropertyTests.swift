import NetMPTestSupport
import NetMPWire
import Testing

/// For every format: a random value emitted and parsed back is the same value.
@Suite struct RoundTripPropertyTests {
    static let iterations = 20_000

    func randomAddress(_ rng: inout SeededGenerator) -> IPv4Address { IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)) }

    @Test func arp() throws {
        var rng = SeededGenerator(seed: 826)
        var buffer = [UInt8](repeating: 0, count: ARPPacket.length)
        for _ in 0..<Self.iterations {
            let packet = ARPPacket(operation: Bool.random(using: &rng) ? .request : .reply,
                                   senderMAC: MACAddress(value: rng.next()), senderIP: randomAddress(&rng),
                                   targetMAC: MACAddress(value: rng.next()), targetIP: randomAddress(&rng))
            buffer.withUnsafeMutableBytes { _ = packet.emit(into: $0) }
            #expect(try buffer.withUnsafeBytes { try ARPPacket(parsing: $0) } == packet)
        }
    }

    @Test func ipv4() throws {
        var rng = SeededGenerator(seed: 791)
        var buffer = [UInt8](repeating: 0, count: 1500)
        for _ in 0..<Self.iterations {
            var header = IPv4Header(totalLength: Int.random(in: 20...1500, using: &rng), proto: UInt8.random(in: 0...255, using: &rng),
                                    source: randomAddress(&rng), destination: randomAddress(&rng),
                                    timeToLive: UInt8.random(in: 0...255, using: &rng),
                                    identification: UInt16.random(in: 0...UInt16.max, using: &rng),
                                    dontFragment: Bool.random(using: &rng))
            header.moreFragments = Bool.random(using: &rng)
            header.fragmentOffset = Int.random(in: 0...0x1FFF, using: &rng) * 8
            header.typeOfService = UInt8.random(in: 0...255, using: &rng)
            buffer.withUnsafeMutableBytes { _ = header.emit(into: $0) }
            #expect(try buffer.withUnsafeBytes { try IPv4Header(parsing: $0) } == header)
        }
    }

    @Test func udp() throws {
        var rng = SeededGenerator(seed: 768)
        var buffer = [UInt8](repeating: 0, count: 600)
        for _ in 0..<Self.iterations {
            let length = Int.random(in: 8...600, using: &rng)
            for i in 8..<length { buffer[i] = UInt8.random(in: 0...255, using: &rng) }
            let header = UDPHeader(sourcePort: UInt16.random(in: 0...UInt16.max, using: &rng),
                                   destinationPort: UInt16.random(in: 0...UInt16.max, using: &rng), datagramLength: length)
            let (s, d) = (randomAddress(&rng), randomAddress(&rng))
            buffer.withUnsafeMutableBytes { header.emit(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<length]), source: s, destination: d) }
            let parsed = try buffer[0..<length].withUnsafeBytes { try UDPHeader(parsing: $0, source: s, destination: d) }
            #expect(parsed == header)
        }
    }

    @Test func tcp() throws {
        var rng = SeededGenerator(seed: 9293)
        var buffer = [UInt8](repeating: 0, count: 200)
        for _ in 0..<Self.iterations {
            var options = TCPOptions()
            if Bool.random(using: &rng) { options.maximumSegmentSize = UInt16.random(in: 0...UInt16.max, using: &rng) }
            if Bool.random(using: &rng) { options.windowScale = UInt8.random(in: 0...14, using: &rng) }
            options.sackPermitted = Bool.random(using: &rng)
            if Bool.random(using: &rng) { options.timestamp = (UInt32.random(in: 0...UInt32.max, using: &rng), UInt32.random(in: 0...UInt32.max, using: &rng)) }
            // Options must fit in 40 bytes: at most 4 blocks alone, fewer beside the others.
            let room = (40 - options.encodedLength - 4) / 8
            for _ in 0..<Int.random(in: 0...max(0, min(4, room)), using: &rng) {
                options.appendSACK(SACKBlock(left: UInt32.random(in: 0...UInt32.max, using: &rng), right: UInt32.random(in: 0...UInt32.max, using: &rng)))
            }
            guard options.encodedLength <= 40 else { continue }
            let header = TCPSegmentHeader(sourcePort: UInt16.random(in: 0...UInt16.max, using: &rng),
                                          destinationPort: UInt16.random(in: 0...UInt16.max, using: &rng),
                                          sequenceNumber: UInt32.random(in: 0...UInt32.max, using: &rng),
                                          acknowledgmentNumber: UInt32.random(in: 0...UInt32.max, using: &rng),
                                          flags: TCPFlags(rawValue: UInt8.random(in: 0...255, using: &rng)),
                                          window: UInt16.random(in: 0...UInt16.max, using: &rng), options: options)
            let payload = Int.random(in: 0...100, using: &rng)
            let length = header.headerLength + payload
            let (s, d) = (randomAddress(&rng), randomAddress(&rng))
            buffer.withUnsafeMutableBytes { _ = header.emit(into: $0, segmentLength: length, source: s, destination: d) }
            let parsed = try buffer[0..<length].withUnsafeBytes { try TCPSegmentHeader(parsing: $0, source: s, destination: d) }
            #expect(parsed == header)
        }
    }

    @Test func virtioAndAddresses_textRoundTrip() {
        var rng = SeededGenerator(seed: 48)
        for _ in 0..<1000 {
            let ip = randomAddress(&rng)
            #expect(IPv4Address(ip.description) == ip)
            let mac = MACAddress(value: rng.next())
            #expect(MACAddress(mac.description) == mac)
        }
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "a.b.c.d", "1..2.3", " 1.2.3.4", "01234.1.1.1"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
        for bad in ["", "00:11:22:33:44", "00:11:22:33:44:5g", "001:1:22:33:44:55", "00-11-22-33-44-55"] {
            #expect(MACAddress(bad) == nil, "\(bad)")
        }
    }
}
