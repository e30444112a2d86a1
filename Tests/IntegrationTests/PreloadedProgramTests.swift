import Foundation
import Testing

/// Unmodified programs on netmp through LD_PRELOAD (`netmp run`), against kernel peers in a
/// lab namespace: iperf3 as client both ways and as server, nc moving a file each way with
/// its SHA-256 checked.
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "iperf3", "nc", "sha256sum"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "iperf3", "nc", "sha256sum"]) ?? "")))
struct PreloadedProgramTests {
    func netmp(_ lab: LabNamespace, _ program: [String]) -> [String] {
        ["ip", "netns", "exec", lab.name, Package.netmp, "run", "--tap", lab.tap, "--addr", "10.77.0.2/24", "--"] + program
    }

    struct IperfReport: Decodable {
        struct End: Decodable {
            struct Sum: Decodable { var bytes: Int; var bits_per_second: Double }
            var sum_sent: Sum, sum_received: Sum
        }
        var end: End
    }

    func report(_ output: String) throws -> IperfReport {
        try JSONDecoder().decode(IperfReport.self, from: Data(output.utf8))
    }

    /// iperf3 -c through netmp to a kernel iperf3 -s, sending and (-R) receiving.
    @Test(arguments: [false, true])
    func iperf3Client_toKernelServer(reverse: Bool) throws {
        let lab = try LabNamespace()
        let server = try Shell.start(["ip", "netns", "exec", lab.name, "iperf3", "-s", "-1", "-B", "10.77.0.1"],
                                     stderrTo: NSTemporaryDirectory() + "/\(lab.name)-iperf-s.err")
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        usleep(400_000)
        let client = Shell.run(netmp(lab, ["iperf3", "-c", "10.77.0.1", "-t", "2", "-J"] + (reverse ? ["-R"] : [])), timeout: 30)
        #expect(client.status == 0, "iperf3: \(client.stderr) \(client.stdout.suffix(500))")
        let end = try report(client.stdout).end
        #expect(end.sum_sent.bytes > 10 << 20 && end.sum_received.bytes > 10 << 20)
        // The receiver's count lags the sender's only by what was in flight when the test stopped.
        #expect(end.sum_received.bytes <= end.sum_sent.bytes && end.sum_sent.bytes - end.sum_received.bytes < 16 << 20)
        print("iperf3 through netmp, \(reverse ? "receiving (-R)" : "sending"): "
              + "\(String(format: "%.2f", end.sum_received.bits_per_second / 1e9)) Gbit/s")
    }

    /// iperf3 -s on netmp, a kernel iperf3 -c.
    @Test func iperf3Server_kernelClient() throws {
        let lab = try LabNamespace()
        let server = try Shell.start(netmp(lab, ["iperf3", "-s", "-1", "-B", "10.77.0.2"]),
                                     stderrTo: NSTemporaryDirectory() + "/\(lab.name)-iperf-s.err")
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        usleep(800_000)
        let client = lab.run(["iperf3", "-c", "10.77.0.2", "-t", "2", "-J"], timeout: 30)
        #expect(client.status == 0, "iperf3: \(client.stderr) \(client.stdout.suffix(500))")
        let end = try report(client.stdout).end
        #expect(end.sum_received.bytes > 10 << 20)
        print("iperf3 server on netmp: \(String(format: "%.2f", end.sum_received.bits_per_second / 1e9)) Gbit/s")
        server.waitUntilExit()
        #expect(server.terminationStatus == 0)
    }

    /// nc moves a 32 MiB file each way; the bytes that arrive hash like the file.
    @Test(arguments: [false, true])
    func nc_fileTransfer_checksumMatches(netmpSends: Bool) throws {
        let lab = try LabNamespace()
        let file = NSTemporaryDirectory() + "/\(lab.name)-payload"
        let received = file + ".received"
        defer { try? FileManager.default.removeItem(atPath: file); try? FileManager.default.removeItem(atPath: received) }
        #expect(Shell.run(["sh", "-c", "head -c 33554432 /dev/urandom > \(file)"]).status == 0)
        let listenOn = netmpSends ? "10.77.0.1" : "10.77.0.2"
        let listener = ["sh", "-c", "exec nc -l \(listenOn) 7777 > \(received)"]
        let sender = ["sh", "-c", "exec nc -N \(listenOn) 7777 < \(file)"]
        let receiving = try Shell.start(netmpSends ? ["ip", "netns", "exec", lab.name] + listener : netmp(lab, listener),
                                        stderrTo: NSTemporaryDirectory() + "/\(lab.name)-nc-l.err")
        defer { kill(receiving.processIdentifier, SIGKILL); receiving.waitUntilExit() }
        usleep(800_000)
        let send = netmpSends ? Shell.run(netmp(lab, sender), timeout: 60) : lab.run(sender, timeout: 60)
        #expect(send.status == 0, "nc sender: \(send.stderr)")
        let deadline = Date().addingTimeInterval(30)
        while receiving.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!receiving.isRunning, "the receiving nc did not see the end of the stream")
        let sums = Shell.run(["sha256sum", file, received]).stdout.split(separator: "\n").map { $0.prefix(64) }
        #expect(sums.count == 2 && sums[0] == sums[1], "\(netmpSends ? "netmp -> kernel" : "kernel -> netmp"): checksums differ")
    }
}
