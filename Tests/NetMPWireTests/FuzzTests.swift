import NetMPTestSupport
import NetMPWire
import Testing

/// Mutation fuzzing of every parser: a million frames derived from real captures by random
/// bit flips, byte sets, truncations and extensions. A parser may reject a frame, never crash;
/// when it accepts one, its view stays inside the bytes (checked by reading every field).
@Suite struct WireFuzzTests {
    static let frames = 1_000_000

    @Test func millionMutatedFrames_neverCrashAParser() {
        var rng = SeededGenerator(seed: 0xF022)
        let seeds = [Captured.arpRequest, Captured.arpReply, Captured.echoRequest, Captured.echoReply, Captured.tcpSYN,
                     Captured.tcpSYNACK, Captured.tcpData, Captured.tcpRST, Captured.udp, Captured.portUnreachable]
            + Built.ipv6Frames
        var accepted = 0
        var buffer = [UInt8](repeating: 0, count: 256)
        for _ in 0..<Self.frames {
            let seed = seeds[Int(rng.next() % UInt64(seeds.count))]
            let count = mutate(seed, into: &buffer, rng: &rng)
            buffer.withUnsafeBytes { all in
                let bytes = UnsafeRawBufferPointer(rebasing: all[0..<count])
                if parseAll(bytes) { accepted += 1 }
            }
        }
        // Mutations are small, so a good share of frames still parse end to end.
        #expect(accepted > Self.frames / 20)
        #expect(accepted < Self.frames)
    }

    /// Parses the frame as far as it goes; true if every layer accepted it.
    func parseAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let ethernet = try? EthernetFrameView(validating: bytes) else { return false }
        let payload = ethernet.payload
        switch ethernet.etherType {
        case EtherType.arp: return (try? ARPPacket(parsing: payload)) != nil
        case EtherType.ipv4:
            guard let ip = try? IPv4Header(parsing: payload) else { return false }
            let body = UnsafeRawBufferPointer(rebasing: payload[ip.headerLength..<ip.totalLength])
            switch ip.proto {
            case IPProtocol.icmp: return (try? ICMPv4Message(parsing: body)) != nil
            case IPProtocol.udp: return (try? UDPHeader(parsing: body, source: ip.source, destination: ip.destination)) != nil
            case IPProtocol.tcp:
                // Parse twice: with the checksum (mostly rejected) and without, to reach the options.
                _ = try? TCPSegmentHeader(parsing: body, source: ip.source, destination: ip.destination, verifyChecksum: false)
                return (try? TCPSegmentHeader(parsing: body, source: ip.source, destination: ip.destination)) != nil
            default: return true
            }
        case EtherType.ipv6:
            guard let ip = try? IPv6Header(parsing: payload) else { return false }
            let packet = UnsafeRawBufferPointer(rebasing: payload[0..<(IPv6Header.length + ip.payloadLength)])
            guard let chain = try? IPv6ExtensionHeaders(walking: packet), chain.upperLayerOffset <= packet.count else { return false }
            let body = UnsafeRawBufferPointer(rebasing: packet[chain.upperLayerOffset...])
            switch chain.upperLayer {
            case IPv6NextHeader.icmpv6:
                // Once without the checksum, to reach neighbour discovery's option walk.
                if case .destinationUnreachable(_, let quoted)? = try? ICMPv6Message(
                    parsing: body, source: ip.source, destination: ip.destination, hopLimit: ip.hopLimit,
                    verifyChecksum: false) { _ = quoted.ports }
                guard let message = try? ICMPv6Message(parsing: body, source: ip.source, destination: ip.destination,
                                                       hopLimit: ip.hopLimit) else { return false }
                if case .destinationUnreachable(_, let quoted) = message { _ = quoted.ports }
                return true
            case IPProtocol.tcp:
                return (try? TCPSegmentHeader(parsing: body, addresses: .v6(source: ip.source, destination: ip.destination))) != nil
            default: return true
            }
        default: return true
        }
    }
}

/// IPv6 frames built by netmp's own emitters (the wire tests check them against the RFCs):
/// seeds for the fuzzer until captures of Linux's are added beside them.
enum Built {
    static let ipv6Frames: [[UInt8]] = {
        let peer = IPv6Address("fd77::1")!, us = IPv6Address("fd77::2")!
        func frame(_ packet: [UInt8]) -> [UInt8] {
            hex("0200 0a4d 0002 5222 312c 141b 86dd") + packet
        }
        func icmp(_ length: Int, _ emit: (UnsafeMutableRawBufferPointer) -> Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: length)
            let used = bytes.withUnsafeMutableBytes(emit)
            return Array(bytes[0..<used])
        }
        let echo = icmp(24) { out in
            [UInt8](repeating: 0xAB, count: 16).withUnsafeBytes {
                ICMPv6Message.emitEcho(reply: false, identifier: 1, sequence: 2, data: $0, source: peer, destination: us, into: out)
            }
        }
        let group = us.solicitedNodeMulticast
        let solicitation = icmp(32) { out in
            ICMPv6Message.emitNeighbourSolicitation(target: us, sourceLinkLayer: MACAddress("52:22:31:2c:14:1b"),
                                                    source: peer, destination: group, into: out)
        }
        let original = ipv6Packet(upper: IPProtocol.udp, payload: [0x9C, 0x40, 0, 53, 0, 8, 0, 0], source: us, destination: peer)
        let unreachable = icmp(8 + original.count) { out in
            original.withUnsafeBytes { ICMPv6Message.emitError(type: 1, code: 4, original: $0, source: peer, destination: us, into: out) }
        }
        return [
            frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: echo, source: peer, destination: us)),
            frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: solicitation, source: peer, destination: group, hopLimit: 255)),
            frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: unreachable, source: peer, destination: us)),
            frame(ipv6Packet([(IPv6NextHeader.hopByHop, optionsHeader([5, 2, 0, 0])),
                              (IPv6NextHeader.destinationOptions, optionsHeader([0x1E, 3, 0, 0, 0]))],
                             upper: IPv6NextHeader.icmpv6, payload: echo, source: peer, destination: us)),
            frame(ipv6Packet([(IPv6NextHeader.fragment, [0, 0, 0, 1, 0, 0, 0, 7])], upper: IPProtocol.udp,
                             payload: [0x9C, 0x40, 0, 53, 0, 8, 0, 0], source: peer, destination: us)),
        ]
    }()
}

/// Copies `seed` into `buffer` with 1 to 4 random mutations; returns the new length.
func mutate(_ seed: [UInt8], into buffer: inout [UInt8], rng: inout SeededGenerator) -> Int {
    var count = seed.count
    for i in 0..<count { buffer[i] = seed[i] }
    for _ in 0..<(1 + Int(rng.next() % 4)) {
        switch rng.next() % 6 {
        case 0: if count > 0 { buffer[Int(rng.next() % UInt64(count))] ^= UInt8(1) << (rng.next() % 8) }
        case 1: if count > 0 { buffer[Int(rng.next() % UInt64(count))] = UInt8(truncatingIfNeeded: rng.next()) }
        case 2: count = Int(rng.next() % UInt64(count + 1))
        case 3:
            let extra = Int(rng.next() % 40)
            for i in count..<min(buffer.count, count + extra) { buffer[i] = UInt8(truncatingIfNeeded: rng.next()) }
            count = min(buffer.count, count + extra)
        case 4: // lengths and offsets are where parsers go wrong: hit the interesting bytes
            let hot = [12, 13, 14, 16, 17, 18, 19, 20, 21, 38, 39, 46, 47, 54, 55]
            let at = hot[Int(rng.next() % UInt64(hot.count))]
            if at < count { buffer[at] = UInt8(truncatingIfNeeded: rng.next()) }
        default:
            if count > 0 { buffer[Int(rng.next() % UInt64(count))] = [0, 1, 0x7F, 0x80, 0xFF][Int(rng.next() % 5)] }
        }
    }
    return count
}
