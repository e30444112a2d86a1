import Foundation
import Testing

/// AF_INET6 stream sockets on a stack with an IPv6 address: real programs over IPv6
/// against the lab's kernel, dual-stack listeners, and Linux's answers to IPv6 socket
/// calls, checked against the kernel's own on the same script.
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "python3", "iperf3"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "python3", "iperf3"]) ?? "")))
struct IPv6ProgramTests {
    static let addresses = "10.77.0.2/24,fd77::2/64"

    typealias Lab6 = StackServiceProgramTests.ServedLab
    static func lab() throws -> Lab6 { try Lab6(addresses: addresses, addr6: "fd77::1/64") }

    /// iperf3 -6 through netmp, netmp sending and then receiving, against the kernel's.
    @Test func iperf3OverIPv6_bothWays() throws {
        let lab6 = try Self.lab()
        let serverLog = NSTemporaryDirectory() + "/\(lab6.lab.name)-iperf3"
        defer { try? FileManager.default.removeItem(atPath: serverLog) }
        for reverse in [false, true] {
            let server = try Shell.start(["ip", "netns", "exec", lab6.lab.name, "iperf3", "-s", "-1", "-B", "fd77::1"],
                                         stderrTo: serverLog)
            defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
            usleep(300_000)
            let client = Shell.run(lab6.netmp(["iperf3", "-6", "-c", "fd77::1", "-t", "2", "-J"] + (reverse ? ["-R"] : [])),
                                   timeout: 60)
            #expect(client.status == 0, "\(client.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(client.stdout.utf8)) as? [String: Any]
            let received = ((report?["end"] as? [String: Any])?["sum_received"] as? [String: Any])?["bytes"] as? Int ?? 0
            #expect(received > 100 << 20, "reverse \(reverse): \(received) bytes")
        }
    }

    /// A listener on [::] takes IPv6 peers, IPv4 peers at their mapped addresses, the
    /// kernel's ::1 (through its loopback twin) and a program on the same stack, and each
    /// side names the other as Linux would.
    @Test func dualStackListener_servesBothFamiliesAndLoopback() throws {
        let lab6 = try Self.lab()
        let errors = NSTemporaryDirectory() + "/\(lab6.lab.name)-server"
        defer { try? FileManager.default.removeItem(atPath: errors) }
        let server = try Shell.start(lab6.netmp(["python3", "-c", """
            import socket
            l = socket.socket(socket.AF_INET6); l.bind(("::", 7100)); l.listen(8)
            for _ in range(4):
                c, peer = l.accept()
                c.sendall(f"{peer[0]}|{c.getsockname()[0]}".encode()); c.close()
            """]), stderrTo: errors)
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        usleep(500_000)
        let client = """
            import socket, sys
            family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
            s = socket.socket(family); s.settimeout(5); s.connect((sys.argv[1], 7100)); print(s.recv(100).decode())
            """
        let cases = [("fd77::2", "fd77::1|fd77::2"), ("10.77.0.2", "::ffff:10.77.0.1|::ffff:10.77.0.2"), ("::1", "::1|::1")]
        for (target, expected) in cases {
            let out = lab6.lab.run(["python3", "-c", client, target], timeout: 15)
            #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == expected, "\(target): \(out.stdout)\(out.stderr)")
        }
        let own = Shell.run(lab6.netmp(["python3", "-c", client, "fd77::2"]), timeout: 15)
        #expect(own.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "fd77::2|fd77::2", "\(own.stdout)\(own.stderr)")
        server.waitUntilExit()
        #expect(server.terminationStatus == 0, "\((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")")
    }

    /// IPV6_V6ONLY and the errnos of IPv6 socket calls: one script, run on netmp and on
    /// the kernel in the lab (with the kernel's own addresses), prints the same lines.
    @Test func ipv6SocketCalls_answerAsLinux() throws {
        let lab6 = try Self.lab()
        let script = """
            import errno, socket, sys
            own4, own6, peer4 = sys.argv[1:4]
            def attempt(name, f):
                try: f(); print(name, "ok")
                except OSError as e: print(name, errno.errorcode[e.errno])
            s = socket.socket(socket.AF_INET6)
            print("domain", s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
            print("v6only default", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
            attempt("bind other address", lambda: s.bind(("fd77::99", 0)))
            attempt("v6only on", lambda: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1))
            attempt("bind mapped when v6only", lambda: s.bind(("::ffff:" + own4, 0)))
            attempt("connect mapped when v6only", lambda: s.connect(("::ffff:" + peer4, 9)))
            attempt("connect off-link", lambda: socket.socket(socket.AF_INET6).connect(("fd78::1", 9)))
            t = socket.socket(socket.AF_INET6)
            t.bind((own6, 0))
            print("bound", t.getsockname()[0])
            attempt("v6only after bind", lambda: t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1))
            u = socket.socket(socket.AF_INET6)
            u.bind(("::ffff:0.0.0.0", 0))
            print("mapped wildcard", u.getsockname()[0])
            attempt("ipv6 level on AF_INET", lambda: socket.socket().setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1))
            """
        let onNetmp = Shell.run(lab6.netmp(["python3", "-c", script, "10.77.0.2", "fd77::2", "10.77.0.1"]), timeout: 15)
        let onKernel = lab6.lab.run(["python3", "-c", script, "10.77.0.1", "fd77::1", "10.77.0.2"], timeout: 15)
        #expect(onKernel.status == 0 && onKernel.stdout.contains("bound fd77::1"), "\(onKernel.stdout)\(onKernel.stderr)")
        let netmpLines = onNetmp.stdout.replacingOccurrences(of: "fd77::2", with: "fd77::1")
        #expect(netmpLines == onKernel.stdout, "netmp:\n\(onNetmp.stdout)\(onNetmp.stderr)\nkernel:\n\(onKernel.stdout)")
    }
}
