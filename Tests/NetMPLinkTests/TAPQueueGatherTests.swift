import Glibc
import NetMPLink
import NetMPWire
import Testing

/// A queue's write gathers a payload left in place after the frame's headers, in the one
/// system call that carries one frame (over a SEQPACKET pair standing in for the TAP: one
/// frame per read, as a TAP gives).
@Suite struct TAPQueueGatherTests {
    func pair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    func readFrame(_ fd: Int32) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? Array(buffer[0..<n]) : []
    }

    @Test func transmit_withPayloadInTwoPieces_oneFrameInOrder_withAndWithoutVirtioHeader() throws {
        let headers = (0..<54).map { UInt8($0) }
        let first = [UInt8](repeating: 0xA1, count: 3000), second = [UInt8](repeating: 0xB2, count: 1200)
        let offload = FrameOffload(checksumStart: 34, checksumOffset: 16, segmentSize: 1448, headerLength: 54)
        for virtio in [true, false] {
            let (ours, theirs) = try pair()
            defer { close(ours); close(theirs) }
            let queue = TAPQueue(fd: ours, index: 0, virtioHeader: virtio)
            try headers.withUnsafeBytes { h in
                try first.withUnsafeBytes { a in
                    try second.withUnsafeBytes { b in
                        try queue.transmit(h, offload: offload, payload: PayloadSpans(a, b))
                        try queue.transmit(h, offload: offload, payload: PayloadSpans(a))
                        try queue.transmit(h, offload: .none)
                    }
                }
            }
            let prefix = virtio ? VirtioNetHeader.length : 0
            let both = readFrame(theirs), one = readFrame(theirs), bare = readFrame(theirs)
            #expect(Array(both.dropFirst(prefix)) == headers + first + second)
            #expect(Array(one.dropFirst(prefix)) == headers + first)
            #expect(Array(bare.dropFirst(prefix)) == headers)
            if virtio {
                let header = try both.withUnsafeBytes { try VirtioNetHeader(parsing: $0) }
                #expect(header == VirtioNetHeader(offload), "the offload request rides in front")
            }
        }
    }
}
