import Foundation
import Testing

/// `netmp demo`: iperf3 through netmp beside kernel sockets, in namespaces it makes and
/// removes, also when interrupted.
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "iperf3"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "iperf3"]) ?? "")))
struct DemoTests {
    func leftovers(of pid: Int32) -> String {
        let tag = "nmd\(pid % 100_000)"
        let namespaces = Shell.run(["ip", "netns", "list"]).stdout.split(separator: "\n").filter { $0.hasPrefix(tag + "-") }
        let links = Shell.run(["ip", "-o", "link"]).stdout.split(separator: "\n").filter { $0.contains(": " + tag) }
        return (namespaces + links).joined(separator: "; ")
    }

    /// Over IPv4, and with -6 over IPv6 (netmp with an IPv6 address, both sides to theirs).
    @Test(arguments: [[], ["-6"]])
    func demo_printsBothResults_andRemovesItsLab(flags: [String]) throws {
        let out = NSTemporaryDirectory() + "/netmp-demo-\(getpid())\(flags.joined()).out"
        let demo = try Shell.start([Package.netmp, "demo", "--seconds", "1"] + flags, stderrTo: out + ".err", stdoutTo: out)
        demo.waitUntilExit()
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(demo.terminationStatus == 0, "\(text) \((try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? "")")
        let rates = text.split(separator: "\n").filter { $0.contains("iperf3 ") && $0.hasSuffix("Gbit/s") }
        #expect(rates.count == 2, "\(text)")
        #expect(text.contains("netmp / kernel"))
        #expect(text.contains("over IPv6") == (flags == ["-6"]))
        print(text)
        #expect(leftovers(of: demo.processIdentifier).isEmpty)
    }

    @Test func demo_interrupted_removesItsLab() throws {
        let out = NSTemporaryDirectory() + "/netmp-demo-int-\(getpid()).out"
        let demo = try Shell.start([Package.netmp, "demo", "--seconds", "5"], stderrTo: out + ".err", stdoutTo: out)
        usleep(2_000_000) // inside the netmp run
        kill(demo.processIdentifier, SIGINT)
        demo.waitUntilExit()
        #expect(demo.terminationStatus == 130)
        #expect(leftovers(of: demo.processIdentifier).isEmpty, "left behind: \(leftovers(of: demo.processIdentifier))")
    }
}
