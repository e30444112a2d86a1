import Foundation
import Testing

/// The differential suite: each small C program in Tests/Differential/cases exercises one
/// area of the socket API and prints a trace of every call (result and errno name). It runs
/// twice against the same kernel peer (Tests/Differential/peer.py): once on kernel sockets
/// from a namespace joined by a veth, once on netmp through the TAP. The traces must be
/// identical, line for line. The suite runs once over IPv4 and once over IPv6 (every case
/// takes the family of the peer's address; netmp then has an IPv6 address too).
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "gcc", "python3"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "gcc", "python3"]) ?? "")))
struct DifferentialTests {
    static let directory = Package.root + "/Tests/Differential"

    /// Every case, or only those NETMP_DIFFERENTIAL_CASES names (comma-separated), for a
    /// developer chasing one difference.
    static var cases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/cases")) ?? []
        let all = names.filter { $0.hasSuffix(".c") }.map { String($0.dropLast(2)) }.sorted()
        guard let chosen = ProcessInfo.processInfo.environment["NETMP_DIFFERENTIAL_CASES"] else { return all }
        let wanted = Set(chosen.split(separator: ",").map(String.init))
        return all.filter(wanted.contains)
    }
    /// NETMP_DIFFERENTIAL_SHOW=1 prints each case's netmp trace even when it matches.
    static var show: Bool { ProcessInfo.processInfo.environment["NETMP_DIFFERENTIAL_SHOW"] == "1" }

    /// A second namespace for the kernel run, joined to the lab namespace by a veth
    /// (10.78.0.2 and fd78::2 here, 10.78.0.1 and fd78::1 there), removed when the test ends.
    final class KernelSide {
        let name: String
        init(joining lab: LabNamespace) throws {
            name = lab.name.replacingOccurrences(of: "nmit-", with: "nmik-") + "-k"
            let steps: [[String]] = [
                ["ip", "netns", "add", name],
                ["ip", "link", "add", "nmdf-a", "netns", lab.name, "type", "veth", "peer", "name", "nmdf-b", "netns", name],
                ["ip", "-n", lab.name, "addr", "add", "10.78.0.1/24", "dev", "nmdf-a"],
                ["ip", "-n", lab.name, "-6", "addr", "add", "fd78::1/64", "dev", "nmdf-a", "nodad"],
                ["ip", "-n", lab.name, "link", "set", "nmdf-a", "up"],
                ["ip", "-n", name, "link", "set", "lo", "up"],
                ["ip", "-n", name, "addr", "add", "10.78.0.2/24", "dev", "nmdf-b"],
                ["ip", "-n", name, "-6", "addr", "add", "fd78::2/64", "dev", "nmdf-b", "nodad"],
                ["ip", "-n", name, "link", "set", "nmdf-b", "up"],
            ]
            for step in steps {
                let r = Shell.run(step)
                if r.status != 0 {
                    _ = Shell.run(["ip", "netns", "del", name])
                    throw LabError.setupFailed("\(step.joined(separator: " ")): \(r.stderr)")
                }
            }
        }
        deinit { _ = Shell.run(["ip", "netns", "del", name]) }
    }

    @Test(arguments: [false, true])
    func everyCase_sameTraceOnKernelSocketsAndOnNetmp(ipv6: Bool) throws {
        let cases = Self.cases
        if ProcessInfo.processInfo.environment["NETMP_DIFFERENTIAL_CASES"] == nil {
            #expect(cases.count >= 40, "the suite lost cases: \(cases)")
        }
        let lab = try LabNamespace(addr6: ipv6 ? "fd77::1/64" : nil)
        let kernel = try KernelSide(joining: lab)
        let work = NSTemporaryDirectory() + "/\(lab.name)-differential"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }

        let peerLog = work + "/peer.out"
        let peer = try Shell.start(["ip", "netns", "exec", lab.name, "python3", Self.directory + "/peer.py"],
                                   stderrTo: work + "/peer.err", stdoutTo: peerLog)
        defer { kill(peer.processIdentifier, SIGKILL); peer.waitUntilExit() }
        waitFor("listening", in: peerLog)

        var identical = 0
        for name in cases {
            let binary = work + "/" + name
            let build = Shell.run(["gcc", "-O1", "-Wall", "-Werror", "-o", binary, Self.directory + "/cases/\(name).c"])
            guard build.status == 0 else { Issue.record("\(name): does not compile: \(build.stderr)"); continue }
            let onKernel = Shell.run(["ip", "netns", "exec", kernel.name, binary, ipv6 ? "fd78::1" : "10.78.0.1"], timeout: 40)
            let onNetmp = Shell.run(["ip", "netns", "exec", lab.name, Package.netmp, "run", "--tap", lab.tap,
                                     "--addr", ipv6 ? "10.77.0.2/24,fd77::2/64" : "10.77.0.2/24", "--", binary,
                                     ipv6 ? "fd77::1" : "10.77.0.1"], timeout: 40)
            #expect(onKernel.status == 0, "\(name) on kernel sockets: status \(onKernel.status) \(onKernel.stderr)")
            #expect(onNetmp.status == 0, "\(name) on netmp: status \(onNetmp.status) \(onNetmp.stderr)")
            if let difference = Self.firstDifference(onKernel.stdout, onNetmp.stdout) {
                Issue.record("\(name)\(ipv6 ? " over IPv6" : ""): traces differ at line \(difference)\n--- kernel\n\(onKernel.stdout)--- netmp\n\(onNetmp.stdout)")
            } else if onKernel.status == 0 && onNetmp.status == 0 {
                if Self.show { print("\(name): identical\n\(onNetmp.stdout)") }
                identical += 1
            }
        }
        print("differential\(ipv6 ? " over IPv6" : ""): \(identical) of \(cases.count) cases gave identical traces on kernel sockets and on netmp")
    }

    /// The first line (1-based) where two traces differ, or nil when they are the same.
    static func firstDifference(_ a: String, _ b: String) -> Int? {
        let left = a.split(separator: "\n", omittingEmptySubsequences: false)
        let right = b.split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(left.count, right.count) where i >= left.count || i >= right.count || left[i] != right[i] {
            return i + 1
        }
        return nil
    }
}
