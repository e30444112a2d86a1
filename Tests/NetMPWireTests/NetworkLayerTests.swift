import NetMPWire
import Testing

@Suite struct IPv4Tests {
    @Test func captured_parsesEveryField() throws {
        let header = try Array(Captured.tcpSYN[14...]).withUnsafeBytes { try IPv4Header(parsing: $0) }
        #expect(header.totalLength == 60 && header.headerLength == 20)
        #expect(header.identification == 0x7BA2 && header.dontFragment && !header.moreFragments)
        #expect(header.timeToLive == 64 && header.proto == IPProtocol.tcp)
        #expect(header.source == Captured.hostA && header.destination == Captured.hostB)
        #expect(!header.isFragment)
    }

    @Test func emit_reproducesCapturedHeader() throws {
        let captured = Array(Captured.tcpSYN[14..<34])
        let header = try captured.withUnsafeBytes { try IPv4Header(parsing: $0, allowTruncatedPayload: true) }
        var out = [UInt8](repeating: 0, count: 20)
        out.withUnsafeMutableBytes { _ = header.emit(into: $0) }
        #expect(out == captured)
    }

    /// RFC 791: options are skipped by honouring IHL, whatever they hold.
    @Test func options_skippedByHeaderLength() throws {
        var bytes = Array(Captured.echoRequest[14...])
        // Insert a 4-byte option block (NOP NOP NOP EOL) and fix lengths and checksum.
        bytes.insert(contentsOf: [1, 1, 1, 0], at: 20)
        bytes[0] = 0x46
        bytes[3] += 4
        bytes[10] = 0; bytes[11] = 0
        let sum = bytes[0..<24].withUnsafeBytes(InternetChecksum.of)
        bytes[10] = UInt8(sum >> 8); bytes[11] = UInt8(sum & 0xFF)
        let header = try bytes.withUnsafeBytes { try IPv4Header(parsing: $0) }
        #expect(header.headerLength == 24)
        #expect(header.payloadLength == 32)
        #expect(bytes[header.headerLength] == 8) // the ICMP type follows the options
    }

    @Test func malformed_rejectedByReason() {
        let good = Array(Captured.echoRequest[14...])
        func check(_ error: WireError, fixChecksum: Bool = true, _ change: (inout [UInt8]) -> Void) {
            var bytes = good
            change(&bytes)
            if fixChecksum && bytes.count >= 20 {
                bytes[10] = 0; bytes[11] = 0
                let sum = bytes[0..<20].withUnsafeBytes(InternetChecksum.of)
                bytes[10] = UInt8(sum >> 8); bytes[11] = UInt8(sum & 0xFF)
            }
            _ = bytes.withUnsafeBytes { b in #expect(throws: error) { try IPv4Header(parsing: b) } }
        }
        check(.ipv4Truncated, fixChecksum: false) { $0 = Array($0[0..<19]) }
        check(.ipv4BadVersion) { $0[0] = 0x65 }
        check(.ipv4BadHeaderLength) { $0[0] = 0x44 }                    // IHL 4 < 5
        check(.ipv4BadHeaderLength) { $0 = Array($0[0..<20]); $0[0] = 0x46 } // IHL beyond the bytes
        check(.ipv4BadTotalLength) { $0[2] = 0x01 }                     // 0x0134 > 52 bytes
        check(.ipv4BadTotalLength) { $0[2] = 0; $0[3] = 12 }            // shorter than the header
        check(.ipv4BadChecksum, fixChecksum: false) { $0[8] = 1 }
    }

    @Test func fragments_recognised() throws {
        for (flags, offset, fragment) in [(UInt16(0x2000), 0, true), (0x0000, 185, true), (0x4000, 0, false)] {
            var bytes = Array(Captured.echoRequest[14...])
            let field = flags | UInt16(offset)
            bytes[6] = UInt8(field >> 8); bytes[7] = UInt8(field & 0xFF)
            bytes[10] = 0; bytes[11] = 0
            let sum = bytes[0..<20].withUnsafeBytes(InternetChecksum.of)
            bytes[10] = UInt8(sum >> 8); bytes[11] = UInt8(sum & 0xFF)
            let header = try bytes.withUnsafeBytes { try IPv4Header(parsing: $0) }
            #expect(header.isFragment == fragment)
            #expect(header.fragmentOffset == offset * 8)
        }
    }
}

@Suite struct ICMPv4Tests {
    @Test func capturedEcho_parses() throws {
        let message = try ipPayload(Captured.echoRequest).withUnsafeBytes { try ICMPv4Message(parsing: $0) }
        #expect(message == .echoRequest(identifier: 0x0DEC, sequence: 1))
        let reply = try ipPayload(Captured.echoReply).withUnsafeBytes { try ICMPv4Message(parsing: $0) }
        #expect(reply == .echoReply(identifier: 0x0DEC, sequence: 1))
    }

    /// Our echo reply to Linux's request is the reply Linux itself sent, byte for byte.
    @Test func emitEcho_reproducesLinuxReply() {
        let request = ipPayload(Captured.echoRequest)
        var out = [UInt8](repeating: 0, count: request.count)
        let n = Array(request[8...]).withUnsafeBytes { data in
            out.withUnsafeMutableBytes { ICMPv4Message.emitEcho(reply: true, identifier: 0x0DEC, sequence: 1, data: data, into: $0) }
        }
        #expect(n == request.count)
        #expect(out == ipPayload(Captured.echoReply))
    }

    @Test func capturedPortUnreachable_quotesTheUDPDatagram() throws {
        let message = try ipPayload(Captured.portUnreachable).withUnsafeBytes { try ICMPv4Message(parsing: $0) }
        guard case .destinationUnreachable(let code, let mtu, let quoted) = message else {
            Issue.record("parsed as \(message)"); return
        }
        #expect(code == ICMPv4Message.UnreachableCode.port && mtu == 0)
        #expect(quoted.header.source == Captured.hostA && quoted.header.destination == Captured.hostB)
        #expect(quoted.header.proto == IPProtocol.udp)
        #expect(quoted.sourcePort == 41454 && quoted.destinationPort == 5998)
    }

    @Test func emitError_reproducesLinuxPortUnreachable() {
        let message = ipPayload(Captured.portUnreachable)
        let original = Array(message[8...])
        var out = [UInt8](repeating: 0, count: message.count)
        let n = original.withUnsafeBytes { o in
            out.withUnsafeMutableBytes {
                ICMPv4Message.emitError(type: 3, code: 3, original: o, into: $0)
            }
        }
        #expect(n == message.count && out == message)
    }

    @Test func fragmentationNeeded_carriesNextHopMTU() throws {
        var message = ipPayload(Captured.portUnreachable)
        message[1] = 4
        message[6] = 0x05; message[7] = 0x00 // MTU 1280
        message[2] = 0; message[3] = 0
        let sum = message.withUnsafeBytes(InternetChecksum.of)
        message[2] = UInt8(sum >> 8); message[3] = UInt8(sum & 0xFF)
        let parsed = try message.withUnsafeBytes { try ICMPv4Message(parsing: $0) }
        guard case .destinationUnreachable(4, 1280, _) = parsed else { Issue.record("parsed as \(parsed)"); return }
    }

    @Test func malformed_rejectedByReason() {
        var bad = ipPayload(Captured.echoRequest)
        bad[10] ^= 0xFF
        _ = bad.withUnsafeBytes { b in #expect(throws: WireError.icmpBadChecksum) { try ICMPv4Message(parsing: b) } }
        _ = Array(ipPayload(Captured.echoRequest)[0..<7]).withUnsafeBytes { b in
            #expect(throws: WireError.icmpTruncated) { try ICMPv4Message(parsing: b) }
        }
        // An error whose quoted datagram is cut inside the transport ports.
        var short = Array(ipPayload(Captured.portUnreachable)[0..<(8 + 20 + 4)])
        short[2] = 0; short[3] = 0
        let sum = short.withUnsafeBytes(InternetChecksum.of)
        short[2] = UInt8(sum >> 8); short[3] = UInt8(sum & 0xFF)
        _ = short.withUnsafeBytes { b in #expect(throws: WireError.icmpBadQuotedDatagram) { try ICMPv4Message(parsing: b) } }
    }
}

/// IGMP's wire format (RFC 3376) and the Router Alert option its messages carry.
@Suite struct IGMPWireTests {
    func parse(_ bytes: [UInt8]) throws -> IGMPMessage {
        var bytes = bytes
        bytes[2] = 0; bytes[3] = 0
        let sum = bytes.withUnsafeBytes(InternetChecksum.of)
        bytes[2] = UInt8(sum >> 8); bytes[3] = UInt8(sum & 0xFF)
        return try bytes.withUnsafeBytes { try IGMPMessage(parsing: $0) }
    }

    /// A version 2 query's code is plain tenths of a second; a version 3 query's is
    /// floating point from 128 on (RFC 3376 4.1.1: mantissa 0x0F, exponent 3 bits).
    @Test func queries_decodeTheirResponseTime() throws {
        #expect(try parse([0x11, 100, 0, 0, 239, 1, 2, 3]) == .query(group: IPv4Address(239, 1, 2, 3), maximumResponse: 100, version: 2))
        #expect(try parse([0x11, 0x8A, 0, 0, 0, 0, 0, 0, 0, 125, 0, 0]) == .query(group: .any, maximumResponse: (0x0A | 0x10) << 3, version: 3))
        #expect(try parse([0x11, 0x8A, 0, 0, 0, 0, 0, 0]) == .query(group: .any, maximumResponse: 0x8A, version: 2)) // version 2: tenths
        #expect(try parse([0x11, 0, 0, 0, 0, 0, 0, 0]) == .query(group: .any, maximumResponse: 0, version: 1))
        #expect(try parse([0x16, 0, 0, 0, 239, 1, 2, 3]) == .other(type: 0x16))
        #expect(throws: WireError.igmpTruncated) { try [UInt8](repeating: 0, count: 7).withUnsafeBytes { try IGMPMessage(parsing: $0) } }
        #expect(throws: WireError.igmpBadChecksum) { try [0x11, 0, 0, 1, 0, 0, 0, 0].withUnsafeBytes { try IGMPMessage(parsing: $0) } }
    }

    @Test func report_carriesOneRecordPerGroup() throws {
        var out = [UInt8](repeating: 0xEE, count: IGMPMessage.reportLength(groups: 2))
        let length = out.withUnsafeMutableBytes {
            IGMPMessage.emitReport(.changeToExclude, groups: [IPv4Address(239, 1, 2, 3), IPv4Address(224, 0, 0, 251)], into: $0)
        }
        #expect(length == 24)
        #expect(out == [0x22, 0] + out[2...3] + [0, 0, 0, 2, 4, 0, 0, 0, 239, 1, 2, 3, 4, 0, 0, 0, 224, 0, 0, 251])
        #expect(out.withUnsafeBytes(InternetChecksum.of) == 0)
        #expect(MACAddress(ipv4Group: IPv4Address(239, 129, 2, 3)) == MACAddress(value: 0x0100_5E01_0203))
    }

    @Test func routerAlert_makesA24ByteHeader() throws {
        var header = IPv4Header(totalLength: 32, proto: IPProtocol.igmp, source: IPv4Address(10, 0, 0, 1),
                                destination: IGMPMessage.reportDestination, timeToLive: 1)
        header.routerAlert = true
        var bytes = [UInt8](repeating: 0, count: 32)
        #expect(bytes.withUnsafeMutableBytes { header.emit(into: $0) } == 24)
        #expect(Array(bytes[20..<24]) == [0x94, 0x04, 0, 0])
        let parsed = try bytes.withUnsafeBytes { try IPv4Header(parsing: $0) }
        #expect(parsed.headerLength == 24 && parsed.destination == IGMPMessage.reportDestination)
    }
}
