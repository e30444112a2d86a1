import Foundation
import Testing

/// netmp's TCP against the kernel through loss, duplication, reordering, delay and
/// corruption; every byte checked. Loss and duplication come from nftables on the lab's side
/// of the TAP, the rest from netmp's fault injector (this kernel has no netem). Beside each
/// result: kernel-to-kernel over a veth with the same nftables impairment, measured in the
/// same run (where nftables can express the impairment).
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "python3", "nft"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "python3", "nft"]) ?? "")))
struct TCPImpairmentTests {
    struct Case {
        var name: String
        var bytes: Int
        /// nftables rules for the netdev hooks: (ingress statement, egress statement).
        var nft: (ingress: String?, egress: String?)
        /// netmp's fault injector plan, if any.
        var faults: String?
        /// Whether the kernel-to-kernel comparison can carry the same impairment.
        var kernelComparable: Bool
    }

    static let cases = [
        Case(name: "1% loss each way", bytes: 32 << 20,
             nft: ("numgen random mod 100 < 1 drop", "numgen random mod 100 < 1 drop"), faults: nil, kernelComparable: true),
        // Ingress `dup` would send the copy back out of the TAP, so netmp duplicates its own
        // outbound frames and nftables duplicates the kernel's.
        Case(name: "1% duplication each way", bytes: 32 << 20,
             nft: (nil, "numgen random mod 100 < 1 dup to %DEV%"), faults: "dup=0.01,dir=out,seed=3", kernelComparable: true),
        Case(name: "5% reordering, 10 ms delay", bytes: 4 << 20,
             nft: (nil, nil), faults: "reorder=0.05,reorder-delay=10ms,delay=5ms,seed=5", kernelComparable: false),
        Case(name: "50 ms RTT, 0.5% loss each way", bytes: 4 << 20,
             nft: ("numgen random mod 1000 < 5 drop", "numgen random mod 1000 < 5 drop"), faults: "delay=25ms,seed=7", kernelComparable: false),
        Case(name: "a few corrupted frames", bytes: 32 << 20,
             nft: (nil, nil), faults: "corrupt=0.0005,seed=11", kernelComparable: false),
    ]

    struct Report: Decodable {
        var sent: Int, sent_crc: UInt32, received: Int, received_crc: UInt32, seconds: Double
        var source: String? // the driver's: its end of the connection
    }

    func report(_ text: String) throws -> Report {
        let line = try #require(text.split(separator: "\n").last { $0.hasPrefix("{") }, "no report in: \(text)")
        return try JSONDecoder().decode(Report.self, from: Data(line.utf8))
    }

    /// Installs the case's rules on `device` in namespace `ns`.
    func impair(_ ns: String, device: String, _ c: Case) -> Bool {
        var rules = "table netdev nmimpair {\n"
        if let ingress = c.nft.ingress {
            rules += "  chain in { type filter hook ingress device \"\(device)\" priority 0; \(ingress.replacingOccurrences(of: "%DEV%", with: "\"\(device)\"")); }\n"
        }
        if let egress = c.nft.egress {
            rules += "  chain out { type filter hook egress device \"\(device)\" priority 0; \(egress.replacingOccurrences(of: "%DEV%", with: "\"\(device)\"")); }\n"
        }
        rules += "}\n"
        guard c.nft.ingress != nil || c.nft.egress != nil else { return true }
        let file = NSTemporaryDirectory() + "/\(ns)-\(device).nft"
        try? rules.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = Shell.run(["ip", "netns", "exec", ns, "nft", "-f", file])
        if r.status != 0 { Issue.record("nft: \(r.stderr)\n\(rules)") }
        return r.status == 0
    }

    /// netmp (the driver, client) against a kernel server in the lab, over IPv4 or IPv6;
    /// returns Mbit/s each way.
    func netmpRun(_ c: Case, ipv6: Bool = false) throws -> Double {
        let lab = try LabNamespace(addr6: ipv6 ? "fd77::1/64" : nil)
        guard impair(lab.name, device: lab.tap, c) else { return 0 }
        let peerOut = NSTemporaryDirectory() + "/\(lab.name)-peer.out"
        let server = try Shell.start(["ip", "netns", "exec", lab.name, "python3", TCPInteropTests.peer, "server", "5001", "\(c.bytes)", "21", "300"],
                                     stderrTo: NSTemporaryDirectory() + "/\(lab.name)-peer.err", stdoutTo: peerOut)
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        waitFor("listening", in: NSTemporaryDirectory() + "/\(lab.name)-peer.err")
        var command = [TCPInteropTests.driver, "--tap", lab.tap, "--addr", ipv6 ? "10.77.0.2/24,fd77::2/64" : "10.77.0.2/24",
                       "--connect", ipv6 ? "[fd77::1]:5001" : "10.77.0.1:5001",
                       "--send", "\(c.bytes)", "--seed", "17", "--timeout", "300"]
        if let faults = c.faults { command += ["--fault", faults] }
        let driver = lab.run(command, timeout: 330)
        #expect(driver.status == 0, "\(c.name): driver \(driver.stdout) \(driver.stderr)")
        server.waitUntilExit()
        let netmp = try report(driver.stdout)
        let kernel = try report(try String(contentsOfFile: peerOut, encoding: .utf8))
        #expect(netmp.source?.hasPrefix(ipv6 ? "[fd77::2]:" : "10.77.0.2:") == true, "\(c.name): from \(netmp.source ?? "?")")
        #expect(netmp.sent == c.bytes && kernel.received == c.bytes && kernel.received_crc == netmp.sent_crc,
                "\(c.name): netmp -> kernel lost or corrupted data")
        #expect(netmp.received == c.bytes && kernel.sent_crc == netmp.received_crc,
                "\(c.name): kernel -> netmp lost or corrupted data")
        return Double(c.bytes) * 8 / 1e6 / netmp.seconds
    }

    /// The same transfer between two kernels over a veth carrying the same nftables rules.
    func kernelRun(_ c: Case) throws -> Double {
        let a = "nmik-\(getpid())-a", b = "nmik-\(getpid())-b"
        defer { Shell.run(["ip", "netns", "del", a]); Shell.run(["ip", "netns", "del", b]) }
        for command in [["ip", "netns", "add", a], ["ip", "netns", "add", b],
                        ["ip", "link", "add", "nmik-va", "netns", a, "type", "veth", "peer", "name", "nmik-vb", "netns", b],
                        ["ip", "-n", a, "addr", "add", "10.79.0.1/24", "dev", "nmik-va"], ["ip", "-n", b, "addr", "add", "10.79.0.2/24", "dev", "nmik-vb"],
                        ["ip", "-n", a, "link", "set", "nmik-va", "up"], ["ip", "-n", b, "link", "set", "nmik-vb", "up"],
                        ["ip", "-n", a, "link", "set", "lo", "up"], ["ip", "-n", b, "link", "set", "lo", "up"]] {
            let r = Shell.run(command)
            try #require(r.status == 0, "\(command): \(r.stderr)")
        }
        // Egress on each end impairs each direction once, as ingress+egress on the TAP does.
        let egressOnly = Case(name: c.name, bytes: c.bytes, nft: (nil, c.nft.egress ?? c.nft.ingress), faults: nil, kernelComparable: true)
        guard impair(a, device: "nmik-va", egressOnly), impair(b, device: "nmik-vb", egressOnly) else { return 0 }
        let server = try Shell.start(["ip", "netns", "exec", a, "python3", TCPInteropTests.peer, "server", "5001", "\(c.bytes)", "21", "300"],
                                     stderrTo: NSTemporaryDirectory() + "/\(a)-kernel-peer.err")
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        waitFor("listening", in: NSTemporaryDirectory() + "/\(a)-kernel-peer.err")
        let client = Shell.run(["ip", "netns", "exec", b, "python3", TCPInteropTests.peer, "client", "10.79.0.1", "5001", "\(c.bytes)", "23", "300"],
                               timeout: 330)
        let r = try report(client.stdout)
        #expect(r.received == c.bytes)
        return Double(c.bytes) * 8 / 1e6 / r.seconds
    }

    @Test func impairedPaths_everyByteArrives_throughputBesideKernel() throws {
        var lines = ["impairment                      bytes each way   netmp Mbit/s   kernel Mbit/s   ratio"]
        for c in Self.cases {
            let netmp = try netmpRun(c)
            let kernel = c.kernelComparable ? try kernelRun(c) : nil
            let ratio = kernel.map { String(format: "%.2f", netmp / $0) } ?? "n/a (no netem)"
            lines.append(c.name.padding(toLength: 32, withPad: " ", startingAt: 0)
                         + "\(c.bytes >> 20) MiB".padding(toLength: 17, withPad: " ", startingAt: 0)
                         + String(format: "%12.1f", netmp) + "   "
                         + (kernel.map { String(format: "%13.1f", $0) } ?? "          n/a") + "   " + ratio)
        }
        print(lines.joined(separator: "\n"))
    }

    /// The same transfers over IPv6 (the engine is the same; the checksums, MSS, TSO type and
    /// steering are IPv6's), every byte checked; the rates are printed, not compared.
    @Test func impairedPathsOverIPv6_everyByteArrives() throws {
        var lines = ["impairment over IPv6            bytes each way   netmp Mbit/s"]
        for c in Self.cases {
            let netmp = try netmpRun(c, ipv6: true)
            lines.append(c.name.padding(toLength: 32, withPad: " ", startingAt: 0)
                         + "\(c.bytes >> 20) MiB".padding(toLength: 17, withPad: " ", startingAt: 0) + String(format: "%12.1f", netmp))
        }
        print(lines.joined(separator: "\n"))
    }
}
