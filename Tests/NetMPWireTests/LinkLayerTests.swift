import NetMPWire
import Testing

@Suite struct EthernetTests {
    @Test func captured_parsesAddressesAndType() throws {
        try Captured.echoRequest.withUnsafeBytes { bytes in
            let frame = try EthernetFrameView(validating: bytes)
            #expect(frame.destination == Captured.macB)
            #expect(frame.source == Captured.macA)
            #expect(frame.etherType == EtherType.ipv4)
            #expect(frame.vlanIdentifier == nil)
            #expect(frame.payloadOffset == 14)
        }
    }

    @Test func vlanTag_isParsedAndReported() throws {
        var tagged = Array(Captured.echoRequest[0..<12]) + [0x81, 0x00, 0x20, 0x2A] + Array(Captured.echoRequest[12...])
        try tagged.withUnsafeBytes { bytes in
            let frame = try EthernetFrameView(validating: bytes)
            #expect(frame.vlanIdentifier == 42)
            #expect(frame.etherType == EtherType.ipv4)
            #expect(frame.payloadOffset == 18)
        }
        tagged = Array(tagged[0..<16])
        _ = tagged.withUnsafeBytes { bytes in
            #expect(throws: WireError.vlanTruncated) { try EthernetFrameView(validating: bytes) }
        }
    }

    @Test func qinq_twoTagsParsed_threeRejected() throws {
        let inner: [UInt8] = [0x81, 0x00, 0x00, 0x07]
        let outer: [UInt8] = [0x88, 0xA8, 0x00, 0x05]
        let two = Array(Captured.arpRequest[0..<12]) + outer + inner + Array(Captured.arpRequest[12...])
        try two.withUnsafeBytes { bytes in
            let frame = try EthernetFrameView(validating: bytes)
            #expect(frame.vlanIdentifier == 7)
            #expect(frame.etherType == EtherType.arp)
            #expect(frame.payloadOffset == 22)
        }
        let three = Array(Captured.arpRequest[0..<12]) + outer + inner + inner + Array(Captured.arpRequest[12...])
        _ = three.withUnsafeBytes { bytes in
            #expect(throws: WireError.vlanTruncated) { try EthernetFrameView(validating: bytes) }
        }
    }

    @Test func shortFrames_rejected() {
        for n in 0..<14 {
            _ = Array(Captured.arpRequest[0..<n]).withUnsafeBytes { bytes in
                #expect(throws: WireError.ethernetTruncated) { try EthernetFrameView(validating: bytes) }
            }
        }
    }

    @Test func emit_reproducesCapturedHeader() {
        var out = [UInt8](repeating: 0, count: 14)
        _ = out.withUnsafeMutableBytes {
            EthernetHeader(destination: Captured.macB, source: Captured.macA, etherType: EtherType.ipv4).emit(into: $0)
        }
        #expect(out == Array(Captured.echoRequest[0..<14]))
    }
}

@Suite struct ARPTests {
    @Test func capturedRequestAndReply_parseAndReemitIdentically() throws {
        for (frame, op) in [(Captured.arpRequest, ARPPacket.Operation.request), (Captured.arpReply, .reply)] {
            let payload = Array(frame[14...])
            let packet = try payload.withUnsafeBytes { try ARPPacket(parsing: $0) }
            #expect(packet.operation == op)
            var out = [UInt8](repeating: 0, count: ARPPacket.length)
            out.withUnsafeMutableBytes { _ = packet.emit(into: $0) }
            #expect(out == payload)
        }
        let request = try Array(Captured.arpRequest[14...]).withUnsafeBytes { try ARPPacket(parsing: $0) }
        #expect(request.senderIP == Captured.hostA && request.targetIP == Captured.hostB)
        #expect(request.senderMAC == Captured.macA && request.targetMAC == .zero)
    }

    @Test func malformed_rejectedByReason() {
        let good = Array(Captured.arpRequest[14...])
        func check(_ error: WireError, _ change: (inout [UInt8]) -> Void) {
            var bytes = good
            change(&bytes)
            _ = bytes.withUnsafeBytes { b in #expect(throws: error) { try ARPPacket(parsing: b) } }
        }
        check(.arpTruncated) { $0.removeLast() }
        check(.arpUnsupportedHardware) { $0[1] = 6 }       // IEEE 802 hardware type
        check(.arpUnsupportedHardware) { $0[4] = 8 }       // 8-byte hardware address
        check(.arpUnsupportedProtocol) { $0[2] = 0x86; $0[3] = 0xDD }
        check(.arpUnsupportedProtocol) { $0[5] = 16 }
        check(.arpBadOperation) { $0[7] = 3 }               // RARP request
    }
}
