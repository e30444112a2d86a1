import Foundation
import Testing

/// netmp's TCP against the Linux kernel over a TAP in a lab namespace: 256 MiB each way at
/// once, both as client and as server, every byte checked by CRC-32 on both sides.
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "python3"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "python3"]) ?? "")))
struct TCPInteropTests {
    static let bytes = 256 << 20
    static var driver: String { Package.binDirectory + "/netmp-tcp-driver" }
    static var peer: String { Package.root + "/Tests/Fixtures/tcp_peer.py" }

    struct Report: Decodable {
        var sent: Int, sent_crc: UInt32, received: Int, received_crc: UInt32, seconds: Double
        /// The driver's own count of heap allocations from the handshake on, and the frames
        /// moved meanwhile (absent in the kernel peer's report).
        var allocations: UInt64?, frames: UInt64?
    }

    func parse(_ output: String) throws -> Report {
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "no report in: \(output)")
        return try JSONDecoder().decode(Report.self, from: Data(line.utf8))
    }

    func verify(netmp: Report, kernel: Report, _ label: String) {
        #expect(netmp.sent == Self.bytes && kernel.sent == Self.bytes, "\(label): sent \(netmp.sent) / \(kernel.sent)")
        #expect(kernel.received == netmp.sent && kernel.received_crc == netmp.sent_crc, "\(label): netmp -> kernel corrupted or short")
        #expect(netmp.received == kernel.sent && netmp.received_crc == kernel.sent_crc, "\(label): kernel -> netmp corrupted or short")
        // No allocation per packet: what the whole process allocates during the transfer
        // (its start-up and bookkeeping) stays below one per thousand frames moved.
        let allocations = netmp.allocations ?? .max, frames = netmp.frames ?? 0
        #expect(frames > 10_000 && allocations * 1000 < frames, "\(label): \(allocations) allocations for \(frames) frames")
        let mbit = Double(Self.bytes) * 8 / 1e6
        print("\(label): 256 MiB each way at once in \(String(format: "%.2f", netmp.seconds)) s "
              + "(\(String(format: "%.0f", mbit / netmp.seconds)) Mbit/s each way); "
              + "\(allocations) heap allocations for \(frames) frames")
    }

    @Test func netmpClient_kernelServer_256MiBEachWay() throws {
        let lab = try LabNamespace()
        let server = try Shell.start(["ip", "netns", "exec", lab.name, "python3", Self.peer, "server", "5001", "\(Self.bytes)", "11", "120"],
                                     stderrTo: NSTemporaryDirectory() + "/\(lab.name)-peer.err", stdoutTo: NSTemporaryDirectory() + "/\(lab.name)-peer.out")
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        waitFor("listening", in: NSTemporaryDirectory() + "/\(lab.name)-peer.err")
        let driver = lab.run([Self.driver, "--tap", lab.tap, "--addr", "10.77.0.2/24", "--connect", "10.77.0.1:5001",
                              "--send", "\(Self.bytes)", "--seed", "5", "--timeout", "120"], timeout: 150)
        #expect(driver.status == 0, "driver: \(driver.stdout) \(driver.stderr)")
        server.waitUntilExit()
        let kernel = try parse(try String(contentsOfFile: NSTemporaryDirectory() + "/\(lab.name)-peer.out", encoding: .utf8))
        verify(netmp: try parse(driver.stdout), kernel: kernel, "netmp client")
    }

    @Test func kernelClient_netmpServer_256MiBEachWay() throws {
        let lab = try LabNamespace()
        let out = NSTemporaryDirectory() + "/\(lab.name)-driver.out"
        let driver = try Shell.start([Self.driver, "--tap", lab.tap, "--addr", "10.77.0.2/24", "--listen", "5002",
                                      "--send", "\(Self.bytes)", "--seed", "9", "--timeout", "120"].withNamespace(lab.name),
                                     stderrTo: NSTemporaryDirectory() + "/\(lab.name)-driver.err", stdoutTo: out)
        defer { kill(driver.processIdentifier, SIGKILL); driver.waitUntilExit() }
        usleep(300_000)
        let client = lab.run(["python3", Self.peer, "client", "10.77.0.2", "5002", "\(Self.bytes)", "13", "120"], timeout: 150)
        #expect(client.status == 0, "kernel client: \(client.stderr)")
        driver.waitUntilExit()
        #expect(driver.terminationStatus == 0)
        verify(netmp: try parse(try String(contentsOfFile: out, encoding: .utf8)), kernel: try parse(client.stdout), "netmp server")
    }
}

extension Array where Element == String {
    func withNamespace(_ name: String) -> [String] { ["ip", "netns", "exec", name] + self }
}
