import Foundation
import Glibc
import NetMPStackProcess
import NetMPWire
import Testing

/// Captures: the per-core ring and its writer (order, wrap, drops, limits) and a capture
/// of a stack's real traffic, read back as pcapng.
struct CaptureTests {
    /// A file under /tmp for one test, and its bytes once the capture is done.
    final class CaptureFile {
        let path = NSTemporaryDirectory() + "/netmp-capture-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).pcapng"
        func open() -> Int32 { Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600) }
        func packets() throws -> [PcapNG.Packet] {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            return try bytes.withUnsafeBytes { try PcapNG.blocks(in: $0) }.compactMap(PcapNG.packet)
        }
        deinit { unlink(path) }
    }

    /// Frame `n`: an Ethernet frame of 60 to 317 bytes whose bytes after the header say n.
    static func frame(_ n: Int) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: 60 + n % 258)
        frame[12] = 0x88; frame[13] = 0xB5 // an experimental EtherType
        for i in 14..<frame.count { frame[i] = UInt8(truncatingIfNeeded: n >> (8 * ((i - 14) % 4))) }
        return frame
    }

    /// A ring far smaller than the traffic: it wraps many times, the writer keeps up or the
    /// core drops (counted), and the file holds exactly the frames not dropped, in order.
    @Test func smallRing_wrapsAndDropsWithoutTearingABlock() throws {
        let file = CaptureFile()
        let session = try CaptureSession(fd: file.open(), cores: 1, options: .init(snapLength: 200), ringCapacity: 4096)
        let total = 5_000
        var dropped: UInt64 = 0
        for n in 0..<total {
            // The writer starts only once the ring has overflowed: the drop does not depend
            // on how fast this loop runs against it (a loaded or sanitized run is slow).
            if n == 100 {
                #expect(session.summary.dropped > 0, "100 frames fit a 4 KiB ring")
                try session.start()
            }
            Self.frame(n).withUnsafeBytes { session.rings[0].record($0, n % 3 == 0 ? .inbound : .outbound) }
            // Once the ring is full, give the writer (which sleeps 1 ms when idle) time to empty it.
            if session.summary.dropped > dropped { dropped = session.summary.dropped; usleep(2_000) }
        }
        let summary = session.finish()
        #expect(summary.written + summary.dropped == UInt64(total))
        #expect(summary.written > UInt64(total / 2) && summary.dropped > 0, "\(summary)") // it wrapped, and it dropped
        let packets = try file.packets()
        #expect(packets.count == Int(summary.written))
        var last = -1
        for packet in packets {
            let n = Int(packet.data[14]) | Int(packet.data[15]) << 8 | Int(packet.data[16]) << 16
            #expect(n > last, "out of order: \(n) after \(last)")
            last = n
            let expected = Self.frame(n)
            #expect(packet.data == Array(expected.prefix(200)) && packet.originalLength == expected.count)
            #expect(packet.direction == (n % 3 == 0 ? .inbound : .outbound))
        }
    }

    @Test func packetLimit_endsTheCaptureWithExactlyThatMany() throws {
        let file = CaptureFile()
        let session = try CaptureSession(fd: file.open(), cores: 2, options: .init(packetLimit: 5))
        try session.start()
        for n in 0..<20 { Self.frame(n).withUnsafeBytes { session.rings[n % 2].record($0, .outbound) } }
        for _ in 0..<500 where !session.hasEnded { usleep(2_000) }
        #expect(session.hasEnded)
        let summary = session.finish()
        #expect(summary.written == 5 && summary.limitReached)
        #expect(try file.packets().count == 5)
    }

    @Test func filter_keepsOnlyWhatPasses() throws {
        let file = CaptureFile()
        let session = try CaptureSession(fd: file.open(), cores: 1, options: .init(filter: try CaptureFilter("arp")))
        try session.start()
        for n in 0..<10 { Self.frame(n).withUnsafeBytes { session.rings[0].record($0, .outbound) } }
        var arp = Self.frame(0)
        arp[12] = 0x08; arp[13] = 0x06
        arp.withUnsafeBytes { session.rings[0].record($0, .inbound) }
        let summary = session.finish()
        #expect(summary.written == 1)
        #expect(try file.packets().map(\.data) == [arp])
    }

    /// A stack's capture of a TCP transfer: the handshake and every byte of the stream in
    /// the frames the stack wrote, the ACKs in the frames it read, each on its core's
    /// interface.
    @Test func stackCapture_holdsTheWholeConnection() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let file = CaptureFile()
        let session = try pair.a.startCapture(into: file.open(), options: .init(filter: try CaptureFilter("tcp port 7300")))
        let listener = try pair.listenOnB(port: 7300)
        defer { listener.close() }
        let client = try pair.connectFromA(port: 7300)
        let server = try listener.accept()
        let count = 1 << 20
        let join = spawnBounded { _ = try? server.receiveStream(seed: 3) }
        #expect(try client.sendStream(seed: 3, count: count) == count)
        client.close()
        #expect(join(30))
        server.close()
        usleep(100_000)
        let summary = pair.a.stopCapture(session)
        #expect(summary.dropped == 0 && summary.writeError == 0)
        let packets = try file.packets()
        #expect(packets.count == Int(summary.written))
        // Outbound segments: IPv4 header at 14, TCP header after it; the SYN comes first.
        // The stream's bytes are the union of the data segments' ranges (a loaded machine
        // may make the pair drop a frame, and a retransmission covers bytes again).
        var ranges: [(start: UInt32, end: UInt32)] = []
        var flags: [UInt8] = []
        var initial: UInt32?
        for packet in packets where packet.direction == .outbound {
            let ihl = Int(packet.data[14] & 0x0F) * 4
            let tcp = 14 + ihl
            let totalLength = Int(packet.data[16]) << 8 | Int(packet.data[17])
            let length = totalLength - ihl - Int(packet.data[tcp + 12] >> 4) * 4
            let sequence = packet.data[(tcp + 4)..<(tcp + 8)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let flag = packet.data[tcp + 13]
            if flag & 0x02 != 0 { initial = sequence }
            if length > 0 { ranges.append((sequence, sequence &+ UInt32(length))) }
            flags.append(flag)
        }
        #expect(flags.first == 0x02) // SYN
        #expect(flags.contains { $0 & 0x01 != 0 }) // FIN
        let first = try #require(initial) &+ 1
        var covered = first
        for range in ranges.map({ ($0.start &- first, $0.end &- first) }).sorted(by: { $0.0 < $1.0 }) where range.0 <= covered &- first {
            covered = max(covered &- first, range.1) &+ first
        }
        #expect(covered &- first == UInt32(count), "the captured segments cover \(covered &- first) of \(count) bytes")
        #expect(packets.contains { $0.direction == .inbound })
        #expect(Set(packets.map(\.interface)).isSubset(of: [0, 1]))
    }
}
