import Glibc
import NetMPLink
import Testing

/// A queue's read in two places (ProtocolLoop's landing): the frame's first bytes into
/// the receive buffer, the next into a landing zone, any beyond it into the buffer where
/// joining puts them (over a SEQPACKET pair standing in for the TAP: one frame per read).
@Suite struct TAPQueueSplitReadTests {
    @Test func splitRead_headLandingAndOverflow_joinGivesTheFrame_withAndWithoutVirtioHeader() throws {
        let frame = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        let split = 54
        for virtio in [true, false] {
            var fds: [Int32] = [-1, -1]
            try #require(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
            defer { close(fds[0]); close(fds[1]) }
            let queue = TAPQueue(fd: fds[0], index: 0, virtioHeader: virtio)
            let peer = TAPQueue(fd: fds[1], index: 0, virtioHeader: virtio)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 64)
            let landing = UnsafeMutableRawBufferPointer.allocate(byteCount: 3000, alignment: 64)
            defer { buffer.deallocate(); landing.deallocate() }
            let front = queue.headroom + split
            for length in [5000, 2000, 40] {
                try frame[0..<length].withUnsafeBytes { try peer.transmit($0) }
                let read = try #require(try queue.receive(into: buffer, split: split, landing: landing))
                #expect(read.length == length)
                #expect(read.header == .none)
                let landed = min(max(length - split, 0), landing.count)
                #expect(Array(buffer[queue.headroom..<min(front, queue.headroom + length)]) == Array(frame[0..<min(split, length)]))
                #expect(Array(landing[0..<landed]) == Array(frame[min(split, length)..<(min(split, length) + landed)]))
                // Joined: what landed goes behind the head, and the overflow was already behind that.
                UnsafeMutableRawBufferPointer(rebasing: buffer[front..<(front + landed)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: landing[0..<landed]))
                #expect(Array(buffer[queue.headroom..<(queue.headroom + length)]) == Array(frame[0..<length]), "length \(length)")
            }
            #expect(try queue.receive(into: buffer, split: split, landing: landing) == nil, "nothing waiting")
        }
    }
}
