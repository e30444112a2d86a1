import NetMPLink
import Testing

@Suite struct VirtioNetHeaderTests {
    @Test func emitThenParse_roundTrips_littleEndian() throws {
        var header = VirtioNetHeader()
        header.flags = VirtioNetHeader.needsChecksum
        header.gsoType = .tcpV4
        header.headerLength = 66
        header.gsoSize = 1448
        header.checksumStart = 34
        header.checksumOffset = 16
        var bytes = [UInt8](repeating: 0xAA, count: VirtioNetHeader.length)
        bytes.withUnsafeMutableBytes { header.emit(into: $0) }
        #expect(bytes == [1, 1, 66, 0, 0xA8, 0x05, 34, 0, 16, 0])
        #expect(try bytes.withUnsafeBytes { try VirtioNetHeader(parsing: $0) } == header)
        #expect(header.checksumsTrusted)
    }

    @Test func ecnBit_accepted_unknownTypeAndShortRejected() throws {
        let ecn: [UInt8] = [0, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]
        #expect(try ecn.withUnsafeBytes { try VirtioNetHeader(parsing: $0) }.gsoType == .tcpV4)
        let unknown: [UInt8] = [0, 9, 0, 0, 0, 0, 0, 0, 0, 0]
        _ = unknown.withUnsafeBytes { b in #expect(throws: LinkError.unknownGSOType(9)) { try VirtioNetHeader(parsing: b) } }
        _ = [UInt8](repeating: 0, count: 9).withUnsafeBytes { b in
            #expect(throws: LinkError.truncatedVirtioHeader) { try VirtioNetHeader(parsing: b) }
        }
    }
}
