import NetMPTestSupport
import NetMPWire
import Testing

@Suite struct ChecksumTests {
    @Test func rfc1071_numericalExample_sumsToDDF2() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        var sum = InternetChecksum()
        bytes.withUnsafeBytes { sum.add(bytes: $0) }
        #expect(sum.partial == 0xDDF2)
        #expect(sum.value == 0x220D)
    }

    @Test func oddLength_padsWithZeroByte() {
        let odd: [UInt8] = [0x12, 0x34, 0x56]
        let padded: [UInt8] = [0x12, 0x34, 0x56, 0x00]
        #expect(odd.withUnsafeBytes(InternetChecksum.of) == padded.withUnsafeBytes(InternetChecksum.of))
    }

    /// The word-at-a-time sum equals the plain RFC 1071 definition at every length and offset.
    @Test func wordAtATime_matchesReference_forRandomBuffers() {
        var rng = SeededGenerator(seed: 1071)
        for _ in 0..<2000 {
            let count = Int.random(in: 0...300, using: &rng)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var reference: UInt32 = 0
            var i = 0
            while i < count {
                reference += UInt32(bytes[i]) << 8 | (i + 1 < count ? UInt32(bytes[i + 1]) : 0)
                i += 2
            }
            while reference >> 16 != 0 { reference = (reference & 0xFFFF) + (reference >> 16) }
            #expect(bytes.withUnsafeBytes(InternetChecksum.of) == ~UInt16(reference))
        }
    }

    @Test func capturedIPv4Header_verifies() {
        let header = Array(Captured.echoRequest[14..<34])
        var sum = InternetChecksum()
        header.withUnsafeBytes { sum.add(bytes: $0) }
        #expect(sum.isValid)
    }

    /// RFC 1624: updating a field incrementally gives the checksum a full recomputation gives.
    @Test func incrementalUpdate_matchesRecompute() {
        var rng = SeededGenerator(seed: 1624)
        for _ in 0..<1000 {
            var header = Array(Captured.echoRequest[14..<34])
            let old16 = UInt16(header[8]) << 8 | UInt16(header[9]) // TTL and protocol
            let new16 = UInt16.random(in: 0...UInt16.max, using: &rng)
            let before = UInt16(header[10]) << 8 | UInt16(header[11])
            header[8] = UInt8(new16 >> 8); header[9] = UInt8(new16 & 0xFF)
            let newAddress = UInt32.random(in: 0...UInt32.max, using: &rng)
            let oldAddress = UInt32(header[16]) << 24 | UInt32(header[17]) << 16 | UInt32(header[18]) << 8 | UInt32(header[19])
            header[16] = UInt8(newAddress >> 24); header[17] = UInt8(newAddress >> 16 & 0xFF)
            header[18] = UInt8(newAddress >> 8 & 0xFF); header[19] = UInt8(newAddress & 0xFF)
            var updated = InternetChecksum.update(before, old: old16, new: new16)
            updated = InternetChecksum.update(updated, old: oldAddress, new: newAddress)
            header[10] = 0; header[11] = 0
            let recomputed = header.withUnsafeBytes(InternetChecksum.of)
            // 0x0000 and 0xFFFF are the same number in ones' complement.
            #expect(updated == recomputed || (updated ^ recomputed) == 0xFFFF && (updated == 0 || recomputed == 0))
        }
    }

    @Test func pseudoHeader_verifiesCapturedUDP() {
        let datagram = ipPayload(Captured.udp)
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: Captured.hostA, destination: Captured.hostB, protocol: IPProtocol.udp, length: datagram.count)
        datagram.withUnsafeBytes { sum.add(bytes: $0) }
        #expect(sum.isValid)
    }
}
