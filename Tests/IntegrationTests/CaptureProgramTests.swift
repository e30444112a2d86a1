import Foundation
import Testing

private let needed = ["ip", "iperf3", "tcpdump", "tshark", "curl", "python3"]

/// `netmp capture` and NETMP_CAPTURE against what the kernel's side of the TAP sees: the
/// capture opens in tshark with no malformed packet, and holds the same TCP segments as
/// tcpdump's on the kernel's side of the same run.
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: needed) == nil,
                             Comment(rawValue: labUnavailableReason(commands: needed) ?? "")))
struct CaptureProgramTests {
    final class Scratch {
        let path = NSTemporaryDirectory() + "/netmp-capture-it-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        init() { try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func text(_ name: String) -> String { (try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? "" }
    }

    /// `command` with SIGINT and SIGTERM unblocked: the test process starts its children
    /// with them blocked, and tcpdump and netmp capture end on SIGINT, as at a terminal.
    static func interruptible(_ command: [String]) -> [String] {
        ["python3", "-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM]); "
            + "os.execvp(sys.argv[1], sys.argv[1:])"] + command
    }

    /// Each TCP segment of a capture as one line (ports, raw sequence and ACK numbers,
    /// payload length, flags), sorted: the two sides write them in different orders.
    static func segments(_ file: String) -> [String] {
        let out = Shell.run(["tshark", "-r", file, "-Y", "tcp", "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport",
                             "-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.len", "-e", "tcp.flags"])
        return out.stdout.split(separator: "\n").map(String.init).sorted()
    }

    /// Packets tshark calls malformed, and whether it read the file at all.
    static func malformed(_ file: String) -> (read: Bool, count: Int, detail: String) {
        let out = Shell.run(["tshark", "-r", file, "-Y", "_ws.malformed"])
        let lines = out.stdout.split(separator: "\n")
        return (out.status == 0, lines.count, out.stderr + lines.prefix(3).joined(separator: "\n"))
    }

    @Test func iperf3Capture_opensInTshark_andMatchesTheKernelSide() throws {
        let served = try StackServiceProgramTests.ServedLab()
        let scratch = Scratch()
        let (lab, tap) = (served.lab.name, served.lab.tap)
        let server = try Shell.start(["ip", "netns", "exec", lab, "iperf3", "-s", "-1", "-p", "5201", "--forceflush"],
                                     stderrTo: scratch.path + "/iperf3s.err", stdoutTo: scratch.path + "/iperf3s.out")
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) }; server.waitUntilExit() }
        let tcpdump = try Shell.start(["ip", "netns", "exec", lab] + Self.interruptible(["tcpdump", "--immediate-mode", "-i", tap, "-s", "128", "-U", "-w",
                                       scratch.path + "/kernel.pcap", "tcp port 5201"]), stderrTo: scratch.path + "/tcpdump.err")
        defer { if tcpdump.isRunning { kill(tcpdump.processIdentifier, SIGKILL) }; tcpdump.waitUntilExit() }
        let capture = try Shell.start(["ip", "netns", "exec", lab] + Self.interruptible([Package.netmp, "capture", "--tap", tap, "-w",
                                       scratch.path + "/netmp.pcapng", "-s", "128", "tcp", "port", "5201"]),
                                      stderrTo: scratch.path + "/capture.err")
        defer { if capture.isRunning { kill(capture.processIdentifier, SIGKILL) }; capture.waitUntilExit() }
        waitFor("listening on", in: scratch.path + "/tcpdump.err")
        waitFor("Ctrl-C stops", in: scratch.path + "/capture.err")
        waitFor("Server listening", in: scratch.path + "/iperf3s.out")

        let client = Shell.run(served.netmp(["iperf3", "-c", "10.77.0.1", "-p", "5201", "-n", "32M", "-b", "400M"]), timeout: 60)
        #expect(client.status == 0, "iperf3: \(client.stdout) \(client.stderr)")
        usleep(500_000) // the last ACKs and FINs reach both captures
        for process in [capture, tcpdump] {
            kill(process.processIdentifier, SIGINT)
            for _ in 0..<200 where process.isRunning { usleep(50_000) } // the deferred SIGKILL if it hangs
        }

        let said = scratch.text("capture.err")
        #expect(capture.terminationStatus == 0 && said.contains(" 0 dropped"), "netmp capture: \(said)")
        let check = Self.malformed(scratch.path + "/netmp.pcapng")
        #expect(check.read && check.count == 0, "tshark: \(check.detail)")
        let ours = Self.segments(scratch.path + "/netmp.pcapng"), kernels = Self.segments(scratch.path + "/kernel.pcap")
        #expect(ours.count > 50, "netmp's capture holds \(ours.count) TCP segments")
        let onlyOurs = Set(ours).subtracting(kernels).prefix(5), onlyKernels = Set(kernels).subtracting(ours).prefix(5)
        #expect(ours == kernels, "only netmp saw \(onlyOurs); only the kernel saw \(onlyKernels) (\(ours.count) vs \(kernels.count))")
    }

    /// NETMP_CAPTURE (`netmp run --capture`): the stack a program starts writes its capture
    /// from its first frame to its end; here curl's HTTP exchange with a kernel server.
    @Test func runWithCapture_recordsTheProgramsConnection() throws {
        let lab = try LabNamespace()
        let scratch = Scratch()
        try Data("captured page\n".utf8).write(to: URL(fileURLWithPath: scratch.path + "/page"))
        let server = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-m", "http.server", "8000", "--bind", "10.77.0.1",
                                      "--directory", scratch.path], stderrTo: scratch.path + "/http.err", stdoutTo: scratch.path + "/http.out")
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) }; server.waitUntilExit() }
        #expect(lab.run(["sh", "-c", "for i in $(seq 100); do nc -z 10.77.0.1 8000 && exit 0; sleep 0.1; done; exit 1"]).status == 0)
        let file = scratch.path + "/run.pcapng"
        let fetch = lab.run([Package.netmp, "run", "--tap", lab.tap, "--addr", "10.77.0.2/24", "--capture", file,
                             "--capture-filter", "tcp port 8000", "--", "curl", "-sS", "http://10.77.0.1:8000/page"])
        #expect(fetch.status == 0 && fetch.stdout == "captured page\n", "curl: \(fetch.stdout) \(fetch.stderr)")
        // The stack ends a second after curl; its writer has flushed long before.
        var segments: [String] = []
        func fins() -> Int { segments.filter { Int($0.split(separator: "\t").last?.dropFirst(2) ?? "", radix: 16).map { $0 & 1 != 0 } ?? false }.count }
        for _ in 0..<100 {
            segments = Self.segments(file)
            if fins() >= 2 { break } // both sides' FINs
            usleep(100_000)
        }
        #expect(segments.contains { $0.hasSuffix("0x0002") }, "no SYN in \(segments)")
        #expect(fins() == 2, "not both FINs in \(segments)")
        let http = Shell.run(["tshark", "-r", file, "-Y", "http.response.code == 200", "-T", "fields", "-e", "http.response.code"])
        #expect(http.stdout.contains("200"), "tshark found no HTTP 200 response: \(http.stdout) \(http.stderr)")
        #expect(Self.malformed(file).count == 0)
        #expect(!segments.contains { $0.contains("\t53\t") }) // the filter kept port 8000 only
    }

    /// IP_TOS/IP_TTL and IPV6_TCLASS/IPV6_UNICAST_HOPS take effect on the wire, as the
    /// kernel's side of the TAP captures it: a connection's SYN and data carry the marking
    /// set before connect, its later segments the one set after, and a datagram its own.
    /// An IPv6 socket talking to an IPv4 peer (at its mapped address) marks with its
    /// IP_TOS/IP_TTL, as Linux does.
    @Test func markedSockets_carryTOSAndTTLOnTheWire() throws {
        let served = try StackServiceProgramTests.ServedLab(addresses: "10.77.0.2/24,fd77::2/64", addr6: "fd77::1/64")
        let scratch = Scratch()
        let (lab, tap) = (served.lab.name, served.lab.tap)
        let peer = """
            import socket
            t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(("::", 7400)); t.listen(4)
            u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::", 7401))
            print("ready", flush=True)
            for _ in range(3):
                c, _ = t.accept()
                while c.recv(100): pass
                c.close()
            for _ in range(3): u.recvfrom(100)
            """
        let kernel = try Shell.start(["ip", "netns", "exec", lab, "python3", "-c", peer],
                                     stderrTo: scratch.path + "/peer.err", stdoutTo: scratch.path + "/peer.out")
        defer { if kernel.isRunning { kill(kernel.processIdentifier, SIGKILL) }; kernel.waitUntilExit() }
        let tcpdump = try Shell.start(["ip", "netns", "exec", lab] + Self.interruptible(["tcpdump", "--immediate-mode", "-i", tap, "-U", "-w",
                                       scratch.path + "/marked.pcap", "port 7400 or port 7401"]), stderrTo: scratch.path + "/tcpdump.err")
        defer { if tcpdump.isRunning { kill(tcpdump.processIdentifier, SIGKILL) }; tcpdump.waitUntilExit() }
        waitFor("ready", in: scratch.path + "/peer.out")
        waitFor("listening on", in: scratch.path + "/tcpdump.err")
        let client = """
            import socket, time
            ip = (socket.IPPROTO_IP, socket.IP_TOS, socket.IP_TTL)
            ipv6 = (socket.IPPROTO_IPV6, socket.IPV6_TCLASS, socket.IPV6_UNICAST_HOPS)
            for family, host, (level, tos, ttl), marks in [
                    (socket.AF_INET, "10.77.0.1", ip, (0x28, 33, 0x48, 0x29, 7)),
                    (socket.AF_INET6, "fd77::1", ipv6, (0x28, 33, 0x48, 0x29, 7)),
                    (socket.AF_INET6, "::ffff:10.77.0.1", ip, (0x60, 44, 0x68, 0x61, 9))]:
                first, hops, second, datagram, datagram_hops = marks
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setsockopt(level, tos, first); s.setsockopt(level, ttl, hops)
                if family == socket.AF_INET6 and level == socket.IPPROTO_IP: # its IPv6 pair must not be used
                    s.setsockopt(*ipv6[:2], 0x88); s.setsockopt(ipv6[0], ipv6[2], 99)
                s.connect((host, 7400)); s.sendall(b"x"); time.sleep(0.2)
                s.setsockopt(level, tos, second)
                s.sendall(b"y"); time.sleep(0.2); s.close()
                u = socket.socket(family, socket.SOCK_DGRAM)
                u.setsockopt(level, tos, datagram); u.setsockopt(level, ttl, datagram_hops)
                if family == socket.AF_INET6 and level == socket.IPPROTO_IP:
                    u.setsockopt(*ipv6[:2], 0x88); u.setsockopt(ipv6[0], ipv6[2], 99)
                u.sendto(b"datagram", (host, 7401))
            """
        let run = Shell.run(served.netmp(["python3", "-c", client]), timeout: 60)
        #expect(run.status == 0, "client: \(run.stdout) \(run.stderr)")
        #expect(served.eventually { !kernel.isRunning }, "the kernel's peer did not see both connections and datagrams")
        // What netmp sent, one line per packet: TCP flags and payload length, or the UDP
        // length; TOS and TTL, or traffic class and hop limit. tcpdump stops at SIGINT
        // without taking what its ring still holds: wait until the file has all 21.
        func sent() -> String {
            Shell.run(["tshark", "-r", scratch.path + "/marked.pcap", "-Y", "ip.src == 10.77.0.2 || ipv6.src == fd77::2",
                       "-T", "fields", "-E", "separator=,", "-e", "tcp.flags", "-e", "tcp.len", "-e", "udp.length",
                       "-e", "ip.dsfield", "-e", "ip.ttl", "-e", "ipv6.tclass", "-e", "ipv6.hlim"]).stdout
        }
        var fields = sent()
        for _ in 0..<50 where fields.split(separator: "\n").count < 21 {
            usleep(200_000)
            fields = sent()
        }
        kill(tcpdump.processIdentifier, SIGINT)
        let packets = fields.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            .filter { $0.count == 7 }
        #expect(packets.count >= 21, "\(fields)")
        func number(_ text: String) -> Int { text.hasPrefix("0x") ? Int(text.dropFirst(2), radix: 16) ?? -1 : Int(text) ?? -1 }
        // Each socket's packets, told apart by their family and marks.
        for (version, first, hops, second, datagram, datagramHops) in [("v4", 0x28, 33, 0x48, 0x29, 7), ("v6", 0x28, 33, 0x48, 0x29, 7),
                                                                     ("mapped", 0x60, 44, 0x68, 0x61, 9)] {
            // (TOS or traffic class, TTL or hop limit)
            let mark = { (p: [String]) in version == "v6" ? [number(p[5]), number(p[6])] : [number(p[3]), number(p[4])] }
            let family = packets.filter { version == "v6" ? !$0[5].isEmpty : !$0[3].isEmpty }
                .filter { [first, second, datagram].contains(mark($0)[0]) }
            let tcp = family.filter { !$0[0].isEmpty }, udp = family.filter { !$0[2].isEmpty }
            #expect(tcp.first.map { number($0[0]) == 0x02 && mark($0) == [first, hops] } == true, "\(version) SYN: \(tcp.first ?? [])")
            #expect(tcp.contains { $0[1] == "1" && mark($0) == [first, hops] }, "\(version): no 'x' marked \(first)/\(hops) in \(tcp)")
            #expect(tcp.contains { $0[1] == "1" && mark($0) == [second, hops] }, "\(version): no 'y' marked \(second)/\(hops) in \(tcp)")
            #expect(tcp.count >= 6 && tcp.allSatisfy { mark($0)[1] == hops }, "\(version): \(tcp)")
            #expect(udp.count == 1 && udp.allSatisfy { mark($0) == [datagram, datagramHops] }, "\(version) datagram: \(udp)")
        }
        // The mapped socket's IPv6 pair (0x88, 99) marked nothing.
        #expect(!packets.contains { number($0[3]) == 0x88 || number($0[4]) == 99 }, "\(packets)")
    }
}
