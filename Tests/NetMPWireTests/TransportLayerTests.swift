import NetMPWire
import Testing

@Suite struct UDPTests {
    @Test func captured_parsesAndVerifies() throws {
        let datagram = ipPayload(Captured.udp)
        let header = try datagram.withUnsafeBytes { try UDPHeader(parsing: $0, source: Captured.hostA, destination: Captured.hostB) }
        #expect(header == UDPHeader(sourcePort: 56894, destinationPort: 5002, datagramLength: 16))
    }

    @Test func emit_reproducesLinuxChecksum() {
        let datagram = ipPayload(Captured.udp)
        var out = datagram
        out[4] = 0; out[5] = 0; out[6] = 0; out[7] = 0
        out.withUnsafeMutableBytes {
            UDPHeader(sourcePort: 56894, destinationPort: 5002, datagramLength: 16).emit(into: $0, source: Captured.hostA, destination: Captured.hostB)
        }
        #expect(out == datagram)
    }

    @Test func malformed_rejectedByReason() {
        let datagram = ipPayload(Captured.udp)
        func check(_ error: WireError, _ change: (inout [UInt8]) -> Void) {
            var bytes = datagram
            change(&bytes)
            _ = bytes.withUnsafeBytes { b in
                #expect(throws: error) { try UDPHeader(parsing: b, source: Captured.hostA, destination: Captured.hostB) }
            }
        }
        check(.udpTruncated) { $0 = Array($0[0..<7]) }
        check(.udpBadLength) { $0[5] = 7 }
        check(.udpBadLength) { $0[5] = 17 }
        check(.udpBadChecksum) { $0[9] ^= 1 }
    }

    @Test func zeroChecksum_meansNone() throws {
        var datagram = ipPayload(Captured.udp)
        datagram[6] = 0; datagram[7] = 0
        datagram[9] ^= 1
        _ = try datagram.withUnsafeBytes { try UDPHeader(parsing: $0, source: Captured.hostA, destination: Captured.hostB) }
    }
}

@Suite struct TCPHeaderTests {
    func parse(_ frame: [UInt8], from: IPv4Address = Captured.hostA, to: IPv4Address = Captured.hostB) throws -> TCPSegmentHeader {
        try ipPayload(frame).withUnsafeBytes { try TCPSegmentHeader(parsing: $0, source: from, destination: to) }
    }

    @Test func capturedSYN_parsesEveryOption() throws {
        let syn = try parse(Captured.tcpSYN)
        #expect(syn.sourcePort == 37058 && syn.destinationPort == 5001)
        #expect(syn.sequenceNumber == 269_983_112 && syn.flags == .syn && syn.window == 64240)
        #expect(syn.options.maximumSegmentSize == 1460)
        #expect(syn.options.sackPermitted)
        #expect(syn.options.windowScale == 10)
        #expect(syn.options.timestamp?.value == 3_470_411_861 && syn.options.timestamp?.echoReply == 0)
        #expect(syn.headerLength == 40)
    }

    @Test func capturedSYNACK_dataAndRST_parse() throws {
        let synack = try parse(Captured.tcpSYNACK, from: Captured.hostB, to: Captured.hostA)
        #expect(synack.flags == [.syn, .ack] && synack.acknowledgmentNumber == 269_983_113)
        let data = try parse(Captured.tcpData)
        #expect(data.flags == [.psh, .ack] && data.headerLength == 32)
        #expect(data.options.timestamp?.echoReply == 577_910_826 && data.options.maximumSegmentSize == nil)
        let rst = try parse(Captured.tcpRST, from: Captured.hostB, to: Captured.hostA)
        #expect(rst.flags == [.rst, .ack] && rst.window == 0 && rst.acknowledgmentNumber == 809_586_018)
    }

    /// netmp lays out SYN options as Linux does: the emitted SYN is Linux's, byte for byte.
    @Test func emitSYN_reproducesLinuxBytes() throws {
        let syn = try parse(Captured.tcpSYN)
        let original = ipPayload(Captured.tcpSYN)
        var out = [UInt8](repeating: 0, count: original.count)
        out.withUnsafeMutableBytes {
            _ = syn.emit(into: $0, segmentLength: original.count, source: Captured.hostA, destination: Captured.hostB)
        }
        #expect(out == original)
    }

    @Test func emitData_reproducesLinuxBytes() throws {
        let data = try parse(Captured.tcpData)
        let original = ipPayload(Captured.tcpData)
        var out = original
        for i in 0..<data.headerLength { out[i] = 0 }
        out.withUnsafeMutableBytes {
            _ = data.emit(into: $0, segmentLength: original.count, source: Captured.hostA, destination: Captured.hostB)
        }
        #expect(out == original)
    }

    func options(_ bytes: [UInt8]) throws -> TCPOptions {
        try bytes.withUnsafeBytes { try TCPOptions(parsing: $0) }
    }

    @Test func sackBlocks_parsed() throws {
        let parsed = try options([1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 1, 0, 0, 0, 2, 0])
        #expect(parsed.sackBlocks == [SACKBlock(left: 10, right: 20), SACKBlock(left: 256, right: 512)])
    }

    @Test func unknownOptions_skipped_andEOLStops() throws {
        let parsed = try options([254, 4, 0xAB, 0xCD, 2, 4, 0x05, 0xB4, 0, 3, 3, 7])
        #expect(parsed.maximumSegmentSize == 1460)
        #expect(parsed.windowScale == nil) // after EOL: padding, not an option
    }

    @Test func malformedOptions_rejected() {
        let cases: [[UInt8]] = [
            [2, 3, 5],                   // MSS of length 3
            [2, 4, 5],                   // MSS running off the end
            [3, 2],                      // window scale of length 2
            [4, 3, 0],                   // SACK-permitted of length 3
            [5, 2],                      // SACK with no block
            [5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0], // SACK not a multiple of 8
            [5, 42] + [UInt8](repeating: 0, count: 40), // five SACK blocks
            [8, 8, 0, 0, 0, 0, 0, 0],    // timestamps of length 8
            [254, 0],                    // length 0 would loop forever
            [254, 1],                    // length 1 likewise
            [1, 1, 254],                 // kind with no length byte
        ]
        for bytes in cases {
            #expect(throws: WireError.tcpBadOption, "\(bytes)") { try options(bytes) }
        }
    }

    @Test func malformedHeaders_rejectedByReason() {
        let segment = ipPayload(Captured.tcpSYN)
        func check(_ error: WireError, _ change: (inout [UInt8]) -> Void) {
            var bytes = segment
            change(&bytes)
            _ = bytes.withUnsafeBytes { b in
                #expect(throws: error) { try TCPSegmentHeader(parsing: b, source: Captured.hostA, destination: Captured.hostB) }
            }
        }
        check(.tcpTruncated) { $0 = Array($0[0..<19]) }
        check(.tcpBadDataOffset) { $0[12] = 0x40 }   // 16 bytes < 20
        check(.tcpBadDataOffset) { $0[12] = 0xF0 }   // 60 bytes > 40 present
        check(.tcpBadChecksum) { $0[4] ^= 0x80 }
    }
}
