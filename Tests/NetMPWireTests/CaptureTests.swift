import NetMPWire
import Testing

/// pcapng as netmp writes it, read back by the same module's reader (which checks every
/// length as tshark does), and the capture filter against captured frames.
struct PcapNGTests {
    func file(_ frames: [([UInt8], PcapNG.Direction)], snapLength: Int = 262_144) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xEE, count: 4096)
        let length = bytes.withUnsafeMutableBytes { buffer in
            var at = PcapNG.writeSectionHeader(application: "netmp", into: buffer)
            #expect(at == PcapNG.sectionHeaderLength(application: "netmp"))
            for core in 0..<2 {
                let n = PcapNG.writeInterface(name: "netmp-core\(core)", snapLength: UInt32(snapLength),
                                              into: UnsafeMutableRawBufferPointer(rebasing: buffer[at...]))
                #expect(n == PcapNG.interfaceLength(name: "netmp-core\(core)"))
                at += n
            }
            for (i, (frame, direction)) in frames.enumerated() {
                let n = frame.withUnsafeBytes {
                    PcapNG.writePacket($0, interface: UInt32(i % 2), nanoseconds: 1_733_000_000_123_456_789 + UInt64(i),
                                       direction: direction, snapLength: snapLength,
                                       into: UnsafeMutableRawBufferPointer(rebasing: buffer[at...]))
                }
                #expect(n == PcapNG.packetLength(captured: min(frame.count, snapLength)))
                at += n
            }
            return at
        }
        return Array(bytes[0..<length])
    }

    @Test func packetsReadBack_withTimeDirectionAndLengths() throws {
        let written = file([(Captured.tcpSYN, .inbound), (Captured.udp, .outbound), (Captured.arpRequest, .outbound)])
        #expect(written.count % 4 == 0)
        let blocks = try written.withUnsafeBytes { try PcapNG.blocks(in: $0) }
        #expect(blocks.map(\.type) == [PcapNG.BlockType.section, PcapNG.BlockType.interface, PcapNG.BlockType.interface,
                                       PcapNG.BlockType.enhancedPacket, PcapNG.BlockType.enhancedPacket,
                                       PcapNG.BlockType.enhancedPacket])
        let packets = blocks.compactMap(PcapNG.packet)
        #expect(packets.count == 3)
        #expect(packets[0] == PcapNG.Packet(interface: 0, nanoseconds: 1_733_000_000_123_456_789, originalLength: Captured.tcpSYN.count,
                                            data: Captured.tcpSYN, direction: .inbound))
        #expect(packets[1].data == Captured.udp && packets[1].direction == .outbound && packets[1].interface == 1)
        #expect(packets[2].data == Captured.arpRequest) // 42 bytes: padded to 44 in the block
    }

    @Test func snapLength_cutsTheDataButKeepsTheWireLength() throws {
        let written = file([(Captured.tcpData, .inbound)], snapLength: 64)
        let packets = try written.withUnsafeBytes { try PcapNG.blocks(in: $0) }.compactMap(PcapNG.packet)
        #expect(packets.count == 1)
        #expect(packets[0].data == Array(Captured.tcpData.prefix(64)))
        #expect(packets[0].originalLength == Captured.tcpData.count)
    }

    @Test func damagedFiles_areRefusedWhereTheyBreak() {
        let written = file([(Captured.udp, .inbound)])
        let headerEnd = PcapNG.sectionHeaderLength(application: "netmp")
        var badTrailer = written
        badTrailer[written.count - 4] ^= 0xFF // the last block's closing length
        let lastBlock = written.count - PcapNG.packetLength(captured: Captured.udp.count)
        #expect(throws: PcapNG.FormatError(offset: lastBlock)) { try badTrailer.withUnsafeBytes { try PcapNG.blocks(in: $0) } }
        #expect(throws: PcapNG.FormatError(offset: lastBlock)) { try Array(written.dropLast(4)).withUnsafeBytes { try PcapNG.blocks(in: $0) } }
        var notPcapNG = written
        notPcapNG[8] ^= 0xFF // the byte-order magic
        #expect(throws: PcapNG.FormatError(offset: 0)) { try notPcapNG.withUnsafeBytes { try PcapNG.blocks(in: $0) } }
        #expect(headerEnd % 4 == 0)
    }
}

struct CaptureFilterTests {
    /// An IPv6 UDP datagram fd77::1:5353 -> fd77::2:53 behind a hop-by-hop options header,
    /// in an 802.1Q-tagged frame.
    static let taggedIPv6UDP: [UInt8] = {
        var frame: [UInt8] = [0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x07, 0x86, 0xDD]
        let source = IPv6Address("fd77::1")!, destination = IPv6Address("fd77::2")!
        var ip: [UInt8] = [0x60, 0, 0, 0, 0, 8 + 12, IPv6NextHeader.hopByHop, 64]
        for address in [source, destination] {
            for word in [address.high, address.low] { ip += (0..<8).map { UInt8(truncatingIfNeeded: word >> (56 - 8 * $0)) } }
        }
        ip += [IPProtocol.udp, 0, 1, 4, 0, 0, 0, 0] // hop-by-hop: PadN
        ip += [0x14, 0xE9, 0x00, 0x35, 0x00, 0x0C, 0, 0, 0x61, 0x62, 0x63, 0x64]
        return frame + ip
    }()

    func matches(_ text: String, _ frame: [UInt8]) throws -> Bool {
        let filter = try CaptureFilter(text)
        return frame.withUnsafeBytes { filter.matches($0) }
    }

    @Test func primitives_matchWhatTcpdumpWould() throws {
        // tcpSYN: 10.88.0.1:37058 -> 10.88.0.2:5001; udp: 10.88.0.1:56894 -> 10.88.0.2:5002.
        #expect(try matches("", Captured.arpRequest))
        #expect(try matches("tcp", Captured.tcpSYN) && !matches("tcp", Captured.udp))
        #expect(try matches("udp", Captured.udp) && matches("ip", Captured.udp) && !matches("ip6", Captured.udp))
        #expect(try matches("icmp", Captured.echoRequest) && !matches("icmp6", Captured.echoRequest))
        #expect(try matches("arp", Captured.arpRequest) && !matches("ip", Captured.arpRequest))
        #expect(try matches("port 5001", Captured.tcpSYN) && matches("dst port 5001", Captured.tcpSYN))
        #expect(try !matches("src port 5001", Captured.tcpSYN) && matches("src port 37058", Captured.tcpSYN))
        #expect(try matches("tcp port 5001", Captured.tcpSYN) && !matches("udp port 5001", Captured.tcpSYN))
        #expect(try matches("portrange 5000-5002", Captured.udp) && !matches("portrange 5003-6000", Captured.udp))
        #expect(try matches("host 10.88.0.2", Captured.tcpSYN) && matches("src host 10.88.0.1", Captured.tcpSYN))
        #expect(try !matches("dst host 10.88.0.1", Captured.tcpSYN))
        #expect(try matches("host 10.88.0.2", Captured.arpRequest)) // ARP's target address
        #expect(try matches("net 10.88.0.0/16", Captured.udp) && !matches("net 10.89.0.0/16", Captured.udp))
        #expect(try !matches("port 5001", Captured.echoRequest))
    }

    @Test func ipv6_behindTagsAndExtensionHeaders() throws {
        let frame = Self.taggedIPv6UDP
        #expect(try matches("ip6 and udp port 53", frame))
        #expect(try matches("src port 5353 and dst host fd77::2", frame))
        #expect(try matches("net fd77::/16", frame) && !matches("net fd78::/16", frame))
        #expect(try !matches("tcp", frame) && !matches("ip", frame) && !matches("host 10.88.0.1", frame))
    }

    @Test func combinations_withPrecedenceAndParentheses() throws {
        #expect(try matches("tcp or udp", Captured.udp))
        #expect(try matches("not arp", Captured.tcpSYN) && !matches("! tcp", Captured.tcpSYN))
        #expect(try matches("udp or tcp and port 9", Captured.udp)) // and binds tighter
        #expect(try !matches("(udp or tcp) and port 9", Captured.udp))
        #expect(try matches("tcp && (port 1 || port 5001)", Captured.tcpSYN))
    }

    @Test func badFilters_sayWhichWord() {
        #expect(throws: CaptureFilter.ParseError(description: "'prot' is not a filter primitive (host, net, port, portrange, ip, ip6, arp, tcp, udp, icmp, icmp6)")) {
            try CaptureFilter("prot 80")
        }
        #expect(throws: CaptureFilter.ParseError(description: "'99999' is not a port number")) { try CaptureFilter("port 99999") }
        #expect(throws: CaptureFilter.ParseError(description: "'10.1.2' is not an IPv4 or IPv6 address")) { try CaptureFilter("host 10.1.2") }
        #expect(throws: CaptureFilter.ParseError(description: "the filter ends too soon")) { try CaptureFilter("tcp and") }
        #expect(throws: CaptureFilter.ParseError(description: "expected ')'")) { try CaptureFilter("(tcp udp") }
        #expect(throws: CaptureFilter.ParseError(description: "unexpected ')'")) { try CaptureFilter("tcp )") }
        #expect(throws: CaptureFilter.ParseError(description: "'10.0.0.0/33' is not a network (ADDRESS/LENGTH)")) { try CaptureFilter("net 10.0.0.0/33") }
    }
}
