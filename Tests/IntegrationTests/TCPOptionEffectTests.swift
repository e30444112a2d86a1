import Foundation
import Testing

/// Options that change when a connection gives up or is handed over, seen from a preloaded
/// program against kernel peers: TCP_USER_TIMEOUT ends a stalled connection and a connect
/// whose SYNs go unanswered, TCP_SYNCNT bounds a connect, TCP_DEFER_ACCEPT keeps a
/// connection from accept() until it brings data, TCP_LINGER2 below 0 resets instead of
/// waiting in FIN-WAIT-2, SO_SNDBUF bounds what a writer may hold unacknowledged. Silence
/// comes from nftables in the lab namespace.
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "python3", "nft"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "python3", "nft"]) ?? "")))
struct TCPOptionEffectTests {
    func netmp(_ lab: LabNamespace, _ program: String) -> [String] {
        ["ip", "netns", "exec", lab.name, Package.netmp, "run", "--tap", lab.tap, "--addr", "10.77.0.2/24", "--",
         "python3", "-c", program]
    }

    /// Drops what reaches the lab's kernel for `port` (its input hook), so nothing answers.
    func silence(_ lab: LabNamespace, port: Int) throws {
        let rules = "table inet nmopt {\n chain input {\n  type filter hook input priority 0;\n  tcp dport \(port) drop\n }\n}\n"
        let file = NSTemporaryDirectory() + "/\(lab.name)-silence-\(port).nft"
        try rules.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let add = lab.run(["nft", "-f", file])
        try #require(add.status == 0, "nft: \(add.stderr)")
    }

    /// "word errno seconds" lines the program printed.
    func outcomes(_ text: String) -> [String: (errno: Int, seconds: Double)] {
        var found: [String: (Int, Double)] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 3, let e = Int(parts[1]), let s = Double(parts[2]) { found[String(parts[0])] = (e, s) }
        }
        return found
    }

    @Test func userTimeoutAndSynCount_endWaitsThatWouldLastMinutes() throws {
        let lab = try LabNamespace()
        let work = NSTemporaryDirectory() + "/\(lab.name)-user-timeout"
        let go = work + ".go", out = work + ".out", peerOut = work + ".peer"
        defer { for f in [go, out, peerOut, work + ".err", work + ".peer.err"] { try? FileManager.default.removeItem(atPath: f) } }
        let peer = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-c", """
            import socket, time
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.bind(('10.77.0.1', 7795)); l.listen(4); print('listening', flush=True)
            c, _ = l.accept(); time.sleep(30)
            """], stderrTo: work + ".peer.err", stdoutTo: peerOut)
        defer { kill(peer.processIdentifier, SIGKILL); peer.waitUntilExit() }
        waitFor("listening", in: peerOut)
        try silence(lab, port: 7796) // SYNs to 7796 go unanswered from the start
        let program = try Shell.start(netmp(lab, """
            import os, socket, time
            TCP_USER_TIMEOUT, TCP_SYNCNT = 18, 7
            def timed(word, call):
                t = time.monotonic()
                try:
                    call(); print(word, 0, 0, flush=True)
                except OSError as e:
                    print(word, e.errno, round(time.monotonic() - t, 2), flush=True)
            s = socket.create_connection(('10.77.0.1', 7795))
            s.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, 1500)
            print('connected', s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT), flush=True)
            while not os.path.exists('\(go)'): time.sleep(0.02)
            s.send(b'x' * 1000)
            timed('stall', lambda: s.recv(10))
            c = socket.socket(); c.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, 1000)
            timed('connect', lambda: c.connect(('10.77.0.1', 7796)))
            d = socket.socket(); d.setsockopt(socket.IPPROTO_TCP, TCP_SYNCNT, 1)
            timed('syncnt', lambda: d.connect(('10.77.0.1', 7796)))
            """), stderrTo: work + ".err", stdoutTo: out)
        defer { kill(program.processIdentifier, SIGKILL); program.waitUntilExit() }
        waitFor("connected", in: out)
        try silence(lab, port: 7795) // from now on the peer hears nothing of the connection
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        let deadline = Date().addingTimeInterval(30)
        while program.isRunning && Date() < deadline { usleep(50_000) }
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: work + ".err", encoding: .utf8)) ?? ""
        #expect(text.contains("connected 1500"), "\(text)\n\(err)")
        let seen = outcomes(text)
        // ETIMEDOUT (110) at about the user timeout; without it, tcp_retries2's 15 backed-off
        // timeouts (minutes), 6 SYN retransmissions (127 s).
        let stall = try #require(seen["stall"], "\(text)\n\(err)")
        #expect(stall.errno == 110 && (1.3...4).contains(stall.seconds), "\(text)")
        let connect = try #require(seen["connect"], "\(text)")
        #expect(connect.errno == 110 && (0.8...2.5).contains(connect.seconds), "\(text)")
        let syncnt = try #require(seen["syncnt"], "\(text)")
        #expect(syncnt.errno == 110 && (2.5...5).contains(syncnt.seconds), "\(text)") // SYN at 0 and 1 s, given up at 3 s
    }

    @Test func deferAccept_acceptReturnsWithTheFirstData_orAfterItsTime() throws {
        let lab = try LabNamespace()
        let work = NSTemporaryDirectory() + "/\(lab.name)-defer-accept"
        let out = work + ".out"
        defer { for f in [out, work + ".err", work + ".client.err", work + ".client"] { try? FileManager.default.removeItem(atPath: f) } }
        let server = try Shell.start(netmp(lab, """
            import select, socket, time
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 2)
            l.bind(('0.0.0.0', 7797)); l.listen(8)
            print('listening', l.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT), flush=True)
            r, _, _ = select.select([l], [], [], 1.5)
            print('ready-before-data', bool(r), flush=True)
            c, _ = l.accept(); print('first', c.recv(10).decode(), flush=True)
            t = time.monotonic(); c2, _ = l.accept()
            print('second', round(time.monotonic() - t, 2), flush=True)
            """), stderrTo: work + ".err", stdoutTo: out)
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        waitFor("listening", in: out)
        // The kernel client: one connection that sends after 2 s, one that never sends.
        let client = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-c", """
            import socket, time
            a = socket.create_connection(('10.77.0.2', 7797)); time.sleep(2.0); a.send(b'hello')
            time.sleep(0.3); b = socket.create_connection(('10.77.0.2', 7797)); time.sleep(8)
            """], stderrTo: work + ".client.err", stdoutTo: work + ".client")
        defer { kill(client.processIdentifier, SIGKILL); client.waitUntilExit() }
        let deadline = Date().addingTimeInterval(20)
        while server.isRunning && Date() < deadline { usleep(50_000) }
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: work + ".err", encoding: .utf8)) ?? ""
        // 2 s is rounded up to whole SYN-ACK retransmissions: 1 + 2 = 3 s.
        #expect(text.contains("listening 3\n"), "\(text)\n\(err)")
        #expect(text.contains("ready-before-data False\n"), "the listener was readable before any data: \(text)")
        #expect(text.contains("first hello\n"), "\(text)\n\(err)")
        // The second client connected about 0.3 s after the first was accepted and sent
        // nothing: it comes to accept() about 3 s after it connected.
        let second = text.split(separator: "\n").first { $0.hasPrefix("second ") }.flatMap { Double($0.dropFirst(7)) }
        let waited = try #require(second, "\(text)\n\(err)")
        #expect((2.5...5).contains(waited), "accept of the silent connection took \(waited) s")
    }

    /// TCP_LINGER2 below 0: once the peer acknowledges the FIN of a closed socket, the
    /// connection is reset, so the peer's next write fails; with the default it is
    /// accepted (the closed socket then answers it with a reset, as Linux's does).
    @Test(arguments: [true, false])
    func linger2Negative_resetsAtFinWait2(negative: Bool) throws {
        let lab = try LabNamespace()
        let work = NSTemporaryDirectory() + "/\(lab.name)-linger2"
        let peerOut = work + ".peer"
        defer { for f in [peerOut, work + ".peer.err", work + ".err"] { try? FileManager.default.removeItem(atPath: f) } }
        let peer = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-c", """
            import socket, time
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.bind(('10.77.0.1', 7798)); l.listen(4); print('listening', flush=True)
            c, _ = l.accept()
            while c.recv(100): pass
            time.sleep(0.5)
            try:
                print('write', c.send(b'x'), flush=True)
            except OSError as e:
                print('write-failed', e.errno, flush=True)
            """], stderrTo: work + ".peer.err", stdoutTo: peerOut)
        defer { kill(peer.processIdentifier, SIGKILL); peer.waitUntilExit() }
        waitFor("listening", in: peerOut)
        let program = Shell.run(netmp(lab, """
            import socket, time
            s = socket.create_connection(('10.77.0.1', 7798))
            \(negative ? "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_LINGER2, -1)" : "pass")
            s.send(b'bye'); s.close(); time.sleep(1.5)
            """), timeout: 30)
        #expect(program.status == 0, "\(program.stderr)")
        let deadline = Date().addingTimeInterval(10)
        while peer.isRunning && Date() < deadline { usleep(20_000) }
        let text = (try? String(contentsOfFile: peerOut, encoding: .utf8)) ?? ""
        if negative {
            #expect(text.contains("write-failed"), "the peer could still write: \(text)")
        } else {
            #expect(text.contains("write 1"), "the peer's write failed: \(text)")
        }
    }

    /// SO_SNDBUF reads back as Linux makes it (doubled, within net.core.wmem_max's double)
    /// and bounds the connection's writers: against a kernel peer that never reads (its
    /// window small), non-blocking writes stop once what is written and unacknowledged
    /// (SIOCOUTQ) reaches it, poll then says not writable, and a larger SO_SNDBUF makes it
    /// writable again at once.
    @Test func sendBuffer_boundsWhatWritersHold() throws {
        let lab = try LabNamespace()
        let work = NSTemporaryDirectory() + "/\(lab.name)-sndbuf"
        let peerOut = work + ".peer"
        defer { for f in [peerOut, work + ".peer.err"] { try? FileManager.default.removeItem(atPath: f) } }
        let peer = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-c", """
            import socket, time
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            l.bind(('10.77.0.1', 7799)); l.listen(4); print('listening', flush=True)
            c, _ = l.accept(); time.sleep(20)
            """], stderrTo: work + ".peer.err", stdoutTo: peerOut)
        defer { kill(peer.processIdentifier, SIGKILL); peer.waitUntilExit() }
        waitFor("listening", in: peerOut)
        let program = Shell.run(netmp(lab, """
            import fcntl, select, socket, struct, termios, time
            wmem_max = int(open('/proc/sys/net/core/wmem_max').read())
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
            print('expected', max(min(32768, wmem_max) * 2, 4608))
            print('sndbuf', s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
            s.connect(('10.77.0.1', 7799)); s.setblocking(False)
            total, deadline = 0, time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    total += s.send(b'x' * 65536)
                except BlockingIOError:
                    time.sleep(0.3)  # the peer's window fills and closes; our writes stop
                    try:
                        total += s.send(b'x' * 65536)
                    except BlockingIOError:
                        break
            print('written', total)
            print('outq', struct.unpack('i', fcntl.ioctl(s, termios.TIOCOUTQ, b'\\0' * 4))[0])
            print('writable', bool(select.select([], [s], [], 0.3)[1]))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            print('writable-after', bool(select.select([], [s], [], 0.3)[1]))
            s.send(b'y')
            """), timeout: 30)
        #expect(program.status == 0, "\(program.stderr)")
        var values: [String: Int] = [:]
        for line in program.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { values[String(parts[0])] = Int(parts[1]) ?? (parts[1] == "True" ? 1 : 0) }
        }
        let expected = try #require(values["expected"], "\(program.stdout)\n\(program.stderr)")
        #expect(values["sndbuf"] == expected, "\(program.stdout)")
        let outq = try #require(values["outq"], "\(program.stdout)\n\(program.stderr)")
        #expect(outq > 0 && outq <= expected, "held \(outq) bytes unacknowledged with SO_SNDBUF \(expected)")
        // What left is the peer's small window (8 KiB asked: at most some tens of KiB) beside what is held.
        let written = try #require(values["written"])
        #expect(written <= expected + (256 << 10), "wrote \(written) bytes to a peer that never reads")
        #expect(values["writable"] == 0, "poll said writable with the send buffer full: \(program.stdout)")
        #expect(values["writable-after"] == 1, "a larger SO_SNDBUF left the socket unwritable: \(program.stdout)")
    }
}
