import Foundation
import Testing

/// Programs attached to one stack process (`netmp stack`) in a lab namespace, against
/// kernel peers: several programs side by side on one TAP, and the kernel's lifetimes for
/// a program killed with SIGKILL (docs/STACK-SERVICE.md).
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "nc", "sha256sum", "python3"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "nc", "sha256sum", "python3"]) ?? "")))
struct StackServiceProgramTests {
    /// A lab with a stack service on its TAP, stopped and removed however the test ends.
    final class ServedLab {
        let lab: LabNamespace
        let stack: Process
        let log: String
        /// The stack's addresses (NETMP_ADDR).
        let addresses: String

        /// `options`: more for `netmp stack` (--allow-uid). `addr6`: the kernel's IPv6
        /// address on the lab's link, for a stack with IPv6 `addresses`. `wrapper`: what
        /// runs the stack (setpriv, to take capabilities away).
        init(_ options: [String] = [], addresses: String = "10.77.0.2/24", addr6: String? = nil, wrapper: [String] = []) throws {
            lab = try LabNamespace(addr6: addr6)
            self.addresses = addresses
            log = NSTemporaryDirectory() + "/\(lab.name)-stack"
            stack = try Shell.start(["ip", "netns", "exec", lab.name] + wrapper + [Package.netmp, "stack", "--tap", lab.tap,
                                     "--addr", addresses, "--log", "info"] + options,
                                    stderrTo: log + ".err", stdoutTo: log + ".out")
            // Said once the stack serves (with IPv6, once its addresses passed detection).
            waitFor("programs attach", in: log + ".out")
        }

        deinit {
            if stack.isRunning { kill(stack.processIdentifier, SIGKILL) }
            stack.waitUntilExit()
            for suffix in [".out", ".err"] { try? FileManager.default.removeItem(atPath: log + suffix) }
        }

        var stackLog: String { (try? String(contentsOfFile: log + ".err", encoding: .utf8)) ?? "" }
        var openDescriptors: Int { descriptorTable.count }

        /// The stack's descriptors and what each names (/proc's links), sorted: what a test
        /// prints when the count is not what it expected.
        var descriptorTable: [String] {
            let folder = "/proc/\(stack.processIdentifier)/fd"
            let numbers = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            return numbers.compactMap(Int.init).sorted().compactMap { number in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/\(number)")).map { "\(number) \($0)" }
            }
        }

        /// A program preloaded with libnetmp, configured for the lab's TAP.
        func netmp(_ program: [String]) -> [String] {
            ["ip", "netns", "exec", lab.name, Package.netmp, "run", "--tap", lab.tap, "--addr", addresses, "--"] + program
        }

        /// A preloaded python3 server running `script`, its stderr in `errors`, once it has
        /// attached to the stack.
        func pythonServer(_ script: String, _ arguments: [String] = [], errors: String) throws -> Process {
            let server = try Shell.start(netmp(["python3", "-c", script] + arguments), stderrTo: errors)
            #expect(eventually { stackLog.contains("attached as client") })
            return server
        }

        /// A python3 client on the kernel's side of the lab.
        func kernelPython(_ script: String, _ arguments: [String] = []) -> Shell.Output {
            lab.run(["python3", "-c", script] + arguments, timeout: 60)
        }

        /// `server` ends by itself, with status 0 (else its stderr, from `errors`, says why).
        func expectEndsCleanly(_ server: Process, errors: String) {
            #expect(eventually { !server.isRunning })
            #expect(server.terminationStatus == 0, "\((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")")
        }

        /// Waits (at most `seconds`) until `condition` holds.
        func eventually(seconds: Double = 15, _ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while !condition() && Date() < deadline { usleep(50_000) }
            return condition()
        }
    }

    func makeFile(_ path: String, mebibytes: Int) {
        #expect(Shell.run(["sh", "-c", "head -c \(mebibytes << 20) /dev/urandom > \(path)"]).status == 0)
    }

    func digest(_ path: String) -> Substring { Shell.run(["sha256sum", path]).stdout.prefix(64) }

    /// Two preloaded nc send a file each at once, both through the one stack: both attach
    /// (neither starts a stack of its own on the TAP), both files arrive whole, and once
    /// they have exited the stack holds no more descriptors than before.
    @Test func twoProgramsSideBySide_oneStack() throws {
        let served = try ServedLab()
        let lab = served.lab
        let before = served.descriptorTable
        #expect(before.contains { $0.hasSuffix("/dev/net/tun") }, "\(before)")
        let files = (0..<2).map { NSTemporaryDirectory() + "/\(lab.name)-side-\($0)" }
        defer { for f in files { try? FileManager.default.removeItem(atPath: f); try? FileManager.default.removeItem(atPath: f + ".got") } }
        var receivers: [Process] = []
        defer { for r in receivers where r.isRunning { kill(r.processIdentifier, SIGKILL) } }
        for (i, file) in files.enumerated() {
            makeFile(file, mebibytes: 16)
            receivers.append(try Shell.start(["ip", "netns", "exec", lab.name, "sh", "-c", "exec nc -l 10.77.0.1 \(7781 + i) > \(file).got"],
                                             stderrTo: file + ".err"))
        }
        usleep(300_000)
        let senders = try files.enumerated().map { i, file in
            try Shell.start(served.netmp(["sh", "-c", "exec nc -N 10.77.0.1 \(7781 + i) < \(file)"]), stderrTo: file + ".send.err")
        }
        for process in senders + receivers {
            #expect(served.eventually(seconds: 60) { !process.isRunning }, "a transfer did not finish")
        }
        for file in files { #expect(digest(file) == digest(file + ".got"), "\(file) arrived damaged") }
        #expect(served.stackLog.components(separatedBy: "attached as client").count - 1 == 2, "\(served.stackLog)")
        #expect(served.eventually { served.stackLog.components(separatedBy: "its sockets are closed").count - 1 == 2 })
        #expect(served.eventually { served.openDescriptors == before.count },
                "the stack holds \(served.descriptorTable), \(before) before")
    }

    /// A sender killed with SIGKILL after writing a file: the kernel peer still receives
    /// every byte, then a FIN (nc -l ends), as when the kernel closes a dead process's
    /// socket. The receiver reads only after the kill, so the bytes were still the stack's.
    @Test func sigkilledSender_peerGetsEverythingThenFIN() throws {
        let served = try ServedLab()
        let lab = served.lab
        let file = NSTemporaryDirectory() + "/\(lab.name)-killed"
        defer { for s in ["", ".got", ".err", ".send.err"] { try? FileManager.default.removeItem(atPath: file + s) } }
        makeFile(file, mebibytes: 1) // all of it fits the socket's buffers: nc writes it all at once
        let receiver = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-c", """
            import socket, sys, time
            l = socket.create_server(("10.77.0.1", 7785)); open(sys.argv[1] + ".listening", "w").close()
            c, _ = l.accept(); open(sys.argv[1] + ".accepted", "w").close(); time.sleep(float(sys.argv[2]))
            with open(sys.argv[1], "wb") as out:
                while (b := c.recv(1 << 16)): out.write(b)
            """, file + ".got", "1.5"], stderrTo: file + ".err")
        defer { if receiver.isRunning { kill(receiver.processIdentifier, SIGKILL) } }
        defer { for s in [".listening", ".accepted"] { try? FileManager.default.removeItem(atPath: file + ".got" + s) } }
        // Under load Python may take longer to listen than any fixed pause: nc would be
        // refused and the peer would wait in accept for good.
        try #require(served.eventually(seconds: 30) { FileManager.default.fileExists(atPath: file + ".got.listening") },
                     "the peer never listened")
        // nc writes the file, then waits on a stdin that stays open; it is killed there.
        let sender = try Shell.start(served.netmp(["sh", "-c", "(cat \(file); sleep 30) | exec nc 10.77.0.1 7785"]),
                                     stderrTo: file + ".send.err")
        defer { if sender.isRunning { kill(sender.processIdentifier, SIGKILL) } }
        #expect(served.eventually { served.stackLog.contains("attached as client") })
        // Killed only once connected and done writing: nc read all of its stdin (its read
        // count, which counts the pipe and not the socket, reached the file's size) and then
        // wrote it. Under load a fixed pause could end before that.
        try #require(served.eventually(seconds: 30) { FileManager.default.fileExists(atPath: file + ".got.accepted") },
                     "nc never connected: \((try? String(contentsOfFile: file + ".send.err", encoding: .utf8)) ?? "")")
        func bytesRead() -> Int {
            let pid = Shell.run(["pgrep", "-f", "^nc 10.77.0.1 7785"]).stdout.split(separator: "\n").first.map(String.init) ?? ""
            let io = (try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8)) ?? ""
            return io.split(separator: "\n").first { $0.hasPrefix("rchar:") }.flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) } ?? 0
        }
        try #require(served.eventually(seconds: 30) { bytesRead() >= 1 << 20 }, "nc never read its whole input")
        var last = -1
        #expect(served.eventually(seconds: 10) { let now = bytesRead(); defer { last = now }; usleep(200_000); return now == last })
        #expect(Shell.run(["pkill", "-KILL", "-f", "nc 10.77.0.1 7785"]).status == 0)
        // A receiver still running has no termination status to read (Foundation traps).
        try #require(served.eventually(seconds: 30) { !receiver.isRunning }, "the peer never saw the end of the stream")
        #expect(receiver.terminationStatus == 0, "\((try? String(contentsOfFile: file + ".err", encoding: .utf8)) ?? "")")
        #expect(digest(file) == digest(file + ".got"), "the peer did not get every byte written")
    }

    /// A receiver killed with SIGKILL while data it never read waits: the kernel peer's
    /// connection is reset, as Linux resets when a socket with unread data closes.
    @Test func sigkilledReceiverWithUnreadData_peerIsReset() throws {
        let served = try ServedLab()
        let lab = served.lab
        let out = NSTemporaryDirectory() + "/\(lab.name)-reset"
        defer { for s in [".err", ".recv.err"] { try? FileManager.default.removeItem(atPath: out + s) } }
        // nc's output goes to a reader that never reads: nc stops reading its socket.
        let receiver = try Shell.start(served.netmp(["sh", "-c", "exec nc -l 10.77.0.2 7786 | sleep 60"]), stderrTo: out + ".recv.err")
        defer { if receiver.isRunning { kill(receiver.processIdentifier, SIGKILL) } }
        #expect(served.eventually { served.stackLog.contains("attached as client") })
        usleep(300_000)
        let sender = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-c", """
            import socket, sys, time
            for _ in range(100):  # nc may not listen yet under load
                try: s = socket.create_connection(("10.77.0.2", 7786)); break
                except ConnectionRefusedError: time.sleep(0.1)
            s.settimeout(20)
            try:
                while True: s.send(b"x" * 65536)
            except socket.timeout: sys.exit(3)
            except ConnectionResetError: sys.exit(0)
            except BrokenPipeError: sys.exit(0)
            """], stderrTo: out + ".err")
        defer { if sender.isRunning { kill(sender.processIdentifier, SIGKILL) } }
        usleep(1_500_000) // the receiver's buffers fill
        #expect(Shell.run(["pkill", "-KILL", "-f", "nc -l 10.77.0.2 7786"]).status == 0)
        #expect(served.eventually(seconds: 30) { !sender.isRunning })
        #expect(sender.terminationStatus == 0, "the peer was not reset: exit \(sender.terminationStatus)")
    }

    /// fork() shares an attached program's sockets, as the kernel's does: a server that
    /// accepts and forks a child per connection closes its own copy at once while the
    /// child sends 1 MiB on it and closes; every peer gets all of it, then the end.
    @Test func forkedChildServesTheConnection_parentClosedItsCopy() throws {
        let served = try ServedLab()
        let lab = served.lab
        let out = NSTemporaryDirectory() + "/\(lab.name)-fork"
        defer { for s in [".err", ".py.err"] { try? FileManager.default.removeItem(atPath: out + s) } }
        let server = try served.pythonServer("""
            import os, socket
            l = socket.create_server(("10.77.0.2", 7790))
            for _ in range(3):
                c, _ = l.accept()
                if os.fork() == 0:
                    l.close()
                    c.sendall(bytes(range(256)) * 4096)
                    c.close()
                    os._exit(0)
                c.close()
            for _ in range(3): os.wait()
            """, errors: out + ".py.err")
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let client = served.kernelPython("""
            import socket, sys
            for _ in range(3):
                s = socket.create_connection(("10.77.0.2", 7790)); s.settimeout(10)
                got = bytearray()
                while (b := s.recv(1 << 16)): got += b
                if got != bytes(range(256)) * 4096: sys.exit("got %d bytes, not the 1 MiB sent" % len(got))
            """)
        #expect(client.status == 0, "\(client.stderr)")
        served.expectEndsCleanly(server, errors: out + ".py.err")
    }

    /// Workers forked after listen() accept on the shared listener, each from its own
    /// process, as nginx's do.
    @Test func forkedWorkersAcceptOnTheSharedListener() throws {
        let served = try ServedLab()
        let lab = served.lab
        let out = NSTemporaryDirectory() + "/\(lab.name)-workers"
        defer { try? FileManager.default.removeItem(atPath: out + ".py.err") }
        let server = try served.pythonServer("""
            import os, socket
            l = socket.create_server(("10.77.0.2", 7791))
            for _ in range(2):
                if os.fork() == 0:
                    while True:
                        c, _ = l.accept()
                        c.sendall(b"%d\\n" % os.getpid())
                        c.close()
            os.wait()
            """, errors: out + ".py.err")
        defer {
            _ = Shell.run(["pkill", "-KILL", "-f", "7791"])
            if server.isRunning { kill(server.processIdentifier, SIGKILL) }
        }
        usleep(300_000)
        let client = served.kernelPython("""
            import socket
            pids = set()
            for _ in range(20):
                s = socket.create_connection(("10.77.0.2", 7791)); s.settimeout(10)
                pids.add(s.makefile().readline().strip())
                s.close()
            print(len(pids))
            """)
        #expect(client.status == 0, "\(client.stderr)")
        // Any worker may take any connection; every connection was answered by one.
        #expect(["1", "2"].contains(client.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        // `netmp stat` of the stack shows one attached program of three processes.
        #expect(served.eventually {
            let stat = Shell.run([Package.netmp, "stat", String(served.stack.processIdentifier)]).stdout
            return stat.contains("attached programs:") && stat.split(separator: "\n").contains { line in
                line.hasSuffix("python3") && line.split(separator: " ").dropFirst(3).first == "3"
            }
        }, "\(Shell.run([Package.netmp, "stat", String(served.stack.processIdentifier)]).stdout)")
    }

    /// `netmp stat` names every process holding a socket, as `ss -p` does: a program
    /// connects to its own listener through the stack and forks; the child closes the
    /// accepted connection and the parent the listener. The connecting side is held by
    /// both, the accepted one by the parent, the listener by the child.
    @Test func statNamesEveryProcessHoldingASocket() throws {
        let served = try ServedLab()
        let lab = served.lab
        let out = NSTemporaryDirectory() + "/\(lab.name)-holders"
        defer { for s in [".py.err", ".pids"] { try? FileManager.default.removeItem(atPath: out + s) } }
        let server = try served.pythonServer("""
            import os, socket, sys, time
            l = socket.create_server(("10.77.0.2", 7793))
            s = socket.create_connection(("10.77.0.2", 7793))
            c, _ = l.accept()
            child = os.fork()
            if child == 0:
                c.close()
                time.sleep(30)
                os._exit(0)
            l.close()
            open(sys.argv[1] + ".tmp", "w").write("%d %d %d" % (os.getpid(), child, s.getsockname()[1]))
            os.rename(sys.argv[1] + ".tmp", sys.argv[1])
            time.sleep(30)
            """, [out + ".pids"], errors: out + ".py.err")
        defer {
            _ = Shell.run(["pkill", "-KILL", "-f", "7793"])
            if server.isRunning { kill(server.processIdentifier, SIGKILL) }
        }
        #expect(served.eventually { FileManager.default.fileExists(atPath: out + ".pids") },
                "\((try? String(contentsOfFile: out + ".py.err", encoding: .utf8)) ?? "")")
        let words = ((try? String(contentsOfFile: out + ".pids", encoding: .utf8)) ?? "").split(separator: " ").compactMap { Int($0) }
        try #require(words.count == 3)
        let (parent, child, port) = (words[0], words[1], words[2])
        func holders(_ row: [String: Any]) -> Set<Int> {
            Set((row["holders"] as? [[String: Any]] ?? []).compactMap { $0["pid"] as? Int })
        }
        var stat: [String: Any] = [:]
        let seen = served.eventually {
            let json = Shell.run([Package.netmp, "stat", String(served.stack.processIdentifier), "--json"]).stdout
            stat = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
            let connections = stat["connections"] as? [[String: Any]] ?? []
            let sockets = stat["sockets"] as? [[String: Any]] ?? []
            let connecting = connections.first { ($0["local"] as? String)?.hasSuffix(":\(port)") == true }
            let accepted = connections.first { ($0["remote"] as? String)?.hasSuffix(":\(port)") == true }
            let listener = sockets.first { $0["kind"] as? String == "listen" && $0["port"] as? Int == 7793 }
            return connecting.map(holders) == [parent, child] && accepted.map(holders) == [parent]
                && listener.map(holders) == [child]
        }
        #expect(seen, "\(stat)")
        // The table for people says the same, pid/command.
        let text = Shell.run([Package.netmp, "stat", String(served.stack.processIdentifier)]).stdout
        let listenLine = text.split(separator: "\n").first { $0.hasPrefix("listen") && $0.contains(":7793") }
        #expect(listenLine?.hasSuffix(" \(child)/python3") == true, "\(text)")
    }

    /// A forked worker killed with SIGKILL while it holds a connection it accepted: the
    /// stack closes that connection (its peer reads the end), as the kernel closes a dead
    /// process's sockets, while the parent, still listening, serves the next connection.
    @Test func killedWorker_itsConnectionCloses_parentServesOn() throws {
        let served = try ServedLab()
        let lab = served.lab
        let out = NSTemporaryDirectory() + "/\(lab.name)-worker"
        defer { for s in [".py.err", ".pid"] { try? FileManager.default.removeItem(atPath: out + s) } }
        let server = try served.pythonServer("""
            import os, socket, sys, time
            l = socket.create_server(("10.77.0.2", 7792))
            child = os.fork()
            if child == 0:
                c, _ = l.accept()
                c.sendall(b"worker\\n")
                time.sleep(60)
                os._exit(0)
            open(sys.argv[1], "w").write(str(child))
            time.sleep(1.0)
            c, _ = l.accept()
            c.sendall(b"parent\\n")
            c.close()
            os.waitpid(child, 0)
            """, [out + ".pid"], errors: out + ".py.err")
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let client = served.kernelPython("""
            import os, signal, socket, sys, time
            s = socket.create_connection(("10.77.0.2", 7792)); s.settimeout(10)
            if s.recv(100) != b"worker\\n": sys.exit("no greeting from the worker")
            os.kill(int(open(sys.argv[1]).read()), signal.SIGKILL)
            try:
                if s.recv(100) != b"": sys.exit("data after the worker died")
            except ConnectionResetError: pass
            t = socket.create_connection(("10.77.0.2", 7792)); t.settimeout(10)
            if t.recv(100) != b"parent\\n": sys.exit("the parent did not serve on")
            """, [out + ".pid"])
        #expect(client.status == 0, "\(client.stderr)")
        served.expectEndsCleanly(server, errors: out + ".py.err")
    }

    /// daemon(): the parent forks and ends at once without closing anything; the child
    /// serves on the listener it inherited, then closes it, and the port is closed (a new
    /// connection is refused): the parent's end let its hold go.
    @Test func daemonParentEnds_childsCloseClosesTheListener() throws {
        let served = try ServedLab()
        let lab = served.lab
        let out = NSTemporaryDirectory() + "/\(lab.name)-daemon"
        defer { try? FileManager.default.removeItem(atPath: out + ".py.err") }
        _ = try served.pythonServer("""
            import os, socket, time
            l = socket.create_server(("10.77.0.2", 7793))
            if os.fork() != 0:
                os._exit(0)
            c, _ = l.accept()
            c.sendall(b"daemon\\n")
            c.close()
            l.close()
            time.sleep(30)
            """, errors: out + ".py.err")
        defer { _ = Shell.run(["pkill", "-KILL", "-f", "7793"]) }
        usleep(300_000)
        let client = served.kernelPython("""
            import socket, sys, time
            s = socket.create_connection(("10.77.0.2", 7793)); s.settimeout(10)
            if s.recv(100) != b"daemon\\n": sys.exit("no greeting from the daemon")
            for _ in range(50):
                try:
                    socket.create_connection(("10.77.0.2", 7793), timeout=2).close()
                except ConnectionRefusedError:
                    sys.exit(0)
                time.sleep(0.1)
            sys.exit("the listener stayed open after the daemon closed it")
            """)
        #expect(client.status == 0, "\(client.stderr)")
    }

    /// The stack killed with SIGKILL: a preloaded program's blocked recv fails with
    /// ECONNRESET and its select wakes at once, a new connection fails with ENETDOWN, and
    /// the program says why on stderr; nothing hangs.
    @Test func stackKilled_callsFailAtOnce() throws {
        let served = try ServedLab()
        let lab = served.lab
        let out = NSTemporaryDirectory() + "/\(lab.name)-stackdeath"
        defer { for s in [".err", ".out", ".peer.err"] { try? FileManager.default.removeItem(atPath: out + s) } }
        let peer = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-c", """
            import socket, time
            l = socket.create_server(("10.77.0.1", 7794)); held = []
            while True: held.append(l.accept())
            """], stderrTo: out + ".peer.err")
        defer { if peer.isRunning { kill(peer.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let program = try Shell.start(served.netmp(["python3", "-c", """
            import errno, select, socket, sys, threading
            s = socket.create_connection(("10.77.0.1", 7794)); t = socket.create_connection(("10.77.0.1", 7794))
            res = {}
            def reader():
                try: s.recv(10); res["recv"] = "eof"
                except OSError as e: res["recv"] = e.errno
            th = threading.Thread(target=reader); th.start()
            print("ready", flush=True)
            r, _, _ = select.select([t], [], [], 30); res["select"] = bool(r)
            th.join(30)
            try: socket.create_connection(("10.77.0.1", 7794), timeout=5); res["new"] = "ok"
            except OSError as e: res["new"] = e.errno
            print(res, flush=True)
            sys.exit(0 if res == {"recv": errno.ECONNRESET, "select": True, "new": errno.ENETDOWN} else 1)
            """]), stderrTo: out + ".err", stdoutTo: out + ".out")
        defer { if program.isRunning { kill(program.processIdentifier, SIGKILL) } }
        waitFor("ready", in: out + ".out")
        // `netmp stat` of the stack names the program holding each connection, as `ss -p`.
        #expect(served.eventually {
            Shell.run([Package.netmp, "stat", String(served.stack.processIdentifier)]).stdout.split(separator: "\n")
                .filter { $0.contains("10.77.0.1:7794") && $0.contains("/python3") }.count == 2
        }, "\(Shell.run([Package.netmp, "stat", String(served.stack.processIdentifier)]).stdout)")
        let killed = Date()
        kill(served.stack.processIdentifier, SIGKILL)
        #expect(served.eventually(seconds: 20) { !program.isRunning }, "the program hung after the stack died")
        #expect(Date().timeIntervalSince(killed) < 5)
        let said = (try? String(contentsOfFile: out + ".out", encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? ""
        #expect(program.terminationStatus == 0, "\(said) \(errors)")
        #expect(errors.contains("is gone"), "\(errors)")
    }

    /// Two preloaded programs on one stack talk to each other at the stack's own address,
    /// as two programs on a Linux host do: a TCP echo of 8 MiB arrives whole both ways, a
    /// UDP datagram goes and comes back with the right source, and a connect to a port
    /// nobody listens on is refused at once. None of it crosses the TAP: the stack's
    /// counters show the frames looped, and fewer bytes on the TAP than were echoed.
    @Test func programsOnOneStack_talkAtItsOwnAddress() throws {
        let served = try ServedLab()
        let errors = NSTemporaryDirectory() + "/\(served.lab.name)-own.err"
        defer { try? FileManager.default.removeItem(atPath: errors) }
        let server = try served.pythonServer("""
            import socket, threading
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 7796))
            def udp():
                data, source = u.recvfrom(100); u.sendto(data.upper(), source)
            threading.Thread(target=udp).start()
            l = socket.create_server(("0.0.0.0", 7795)); c, _ = l.accept()
            while True:
                d = c.recv(1 << 16)
                if not d: break
                c.sendall(d)
            c.close()
            """, errors: errors)
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let client = Shell.run(served.netmp(["python3", "-c", """
            import errno, os, socket, threading, time
            data = os.urandom(8 << 20); got = bytearray()
            s = socket.create_connection(("10.77.0.2", 7795), timeout=20)
            def reader():
                while True:
                    d = s.recv(1 << 16)
                    if not d: break
                    got.extend(d)
            t = threading.Thread(target=reader); t.start()
            s.sendall(data); s.shutdown(socket.SHUT_WR); t.join(30)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
            u.sendto(b"ping", ("10.77.0.2", 7796)); reply = u.recvfrom(100)
            began = time.monotonic()
            try: socket.create_connection(("10.77.0.2", 7797), timeout=5); refused = "connected"
            except OSError as e: refused = errno.errorcode.get(e.errno, e.errno)
            print(bytes(got) == data, reply == (b"PING", ("10.77.0.2", 7796)), refused, time.monotonic() - began < 1)
            """]), timeout: 60)
        #expect(client.stdout == "True True ECONNREFUSED True\n", "\(client.stdout) \(client.stderr)")
        served.expectEndsCleanly(server, errors: errors)
        let stat = Shell.run([Package.netmp, "stat", String(served.stack.processIdentifier), "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(stat.stdout.utf8)) as? [String: Any]
        let cores = json?["cores"] as? [[String: Any]] ?? []
        let looped = cores.reduce(0) { $0 + ($1["looped"] as? Int ?? 0) }
        let onTheTAP = cores.reduce(0) { $0 + ($1["bytes_out"] as? Int ?? 0) }
        #expect(looped > 100 && onTheTAP < 1 << 20, "looped \(looped) frames, \(onTheTAP) bytes out on the TAP: \(stat.stdout)")
    }

    /// A client that scribbles random and boundary values over its own shared region while
    /// its threads send, accept, ask and make new sockets (connections to itself through
    /// the stack's own address among them) harms only itself (docs/STACK-SERVICE.md,
    /// Distrust): another program's 24 MiB transfer through the same stack at the same time
    /// arrives whole, the stack survives, closes what the scribbler held when it ends, and
    /// serves the next program. The seed is printed; NETMP_SCRIBBLE_SEED repeats a run.
    @Test func scribblingClient_harmsOnlyItself() throws {
        let served = try ServedLab()
        let lab = served.lab
        let base = NSTemporaryDirectory() + "/\(lab.name)-scribble"
        defer { for s in ["", ".got", ".err", ".send.err", ".sink.err", ".bad.err", ".bad.out", ".after"] { try? FileManager.default.removeItem(atPath: base + s) } }
        let seed = ProcessInfo.processInfo.environment["NETMP_SCRIBBLE_SEED"].flatMap(Int.init) ?? Int.random(in: 1...1_000_000)
        print("scribbling with seed \(seed)")
        let sink = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-c", """
            import socket, threading
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.77.0.1", 7803))
            threading.Thread(target=lambda: [u.recv(65536) for _ in iter(int, 1)], daemon=True).start()
            l = socket.create_server(("10.77.0.1", 7803))
            def drain(c):
                try:
                    while c.recv(1 << 16): pass
                except OSError: pass
            while True: threading.Thread(target=drain, args=(l.accept()[0],), daemon=True).start()
            """], stderrTo: base + ".sink.err")
        defer { kill(sink.processIdentifier, SIGKILL) }
        makeFile(base, mebibytes: 24)
        let receiver = try Shell.start(["ip", "netns", "exec", lab.name, "sh", "-c", "exec nc -l 10.77.0.1 7804 > \(base).got"],
                                       stderrTo: base + ".err")
        defer { if receiver.isRunning { kill(receiver.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let scribbler = try Shell.start(served.netmp(["python3", Package.root + "/Tests/Fixtures/scribbler.py", "10.77.0.1", "7803", "4", "\(seed)"]),
                                        stderrTo: base + ".bad.err", stdoutTo: base + ".bad.out")
        defer { if scribbler.isRunning { kill(scribbler.processIdentifier, SIGKILL) } }
        waitFor("region:", in: base + ".bad.out")
        let sender = try Shell.start(served.netmp(["sh", "-c", "exec nc -N 10.77.0.1 7804 < \(base)"]), stderrTo: base + ".send.err")
        defer { if sender.isRunning { kill(sender.processIdentifier, SIGKILL) } }
        #expect(served.eventually(seconds: 60) { !sender.isRunning && !receiver.isRunning }, "the other program's transfer stalled")
        #expect(digest(base) == digest(base + ".got"), "the other program's file arrived damaged")
        if !served.eventually(seconds: 15, { !scribbler.isRunning }) { kill(scribbler.processIdentifier, SIGKILL) }
        scribbler.waitUntilExit()
        let said = (try? String(contentsOfFile: base + ".bad.out", encoding: .utf8)) ?? ""
        print("scribbler: \(said.split(separator: "\n").joined(separator: "; ")), status \(scribbler.terminationStatus)")
        #expect(said.contains("scribbled"), "the scribbler did not get to scribble: \(said)")
        #expect(served.stack.isRunning, "the stack died: \(served.stackLog.suffix(2000))")
        // (A process number scribbled into the region's head is a forked child the stack
        // waits for, 5 s, before it closes the client's sockets.)
        #expect(served.eventually(seconds: 30) { served.stackLog.components(separatedBy: "its sockets are closed").count - 1 == 2 },
                "the stack did not close the scribbler's sockets: \(served.stackLog.suffix(2000))")
        // The next program is served as if nothing had happened.
        let after = try Shell.start(["ip", "netns", "exec", lab.name, "sh", "-c", "exec nc -l 10.77.0.1 7805 > \(base).after"],
                                    stderrTo: base + ".err")
        usleep(300_000)
        let next = Shell.run(served.netmp(["sh", "-c", "exec nc -N 10.77.0.1 7805 < \(base)"]), timeout: 60)
        #expect(next.status == 0 && served.eventually { !after.isRunning } && digest(base + ".after") == digest(base),
                "a program after the scribbler: \(next.stderr)")
    }

    /// Ports below 1024 (the namespace's ip_unprivileged_port_start) are for root and
    /// CAP_NET_BIND_SERVICE, as on Linux: a program of another uid that the stack admits
    /// (--allow-uid) gets EACCES binding one, TCP or UDP, and binds a higher one; a root
    /// program binds it. The socket options that need privilege answer as Linux's do
    /// (what a kernel socket answered each, as nobody and as root): SO_DEBUG on EACCES,
    /// SO_MARK and SO_PREFER_BUSY_POLL on EPERM, SO_WIFI_STATUS and SO_BUSY_POLL for anyone, and a locked
    /// filter never unlocks.
    @Test func privilegedPortsAndOptions_needRootOrTheCapability() throws {
        let served = try ServedLab(["--allow-uid", "65534"])
        let script = """
            import errno, socket
            out = []
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                for port in (80, 8080):
                    s = socket.socket(socket.AF_INET, kind)
                    try:
                        s.bind(("0.0.0.0", port)); out.append("%d:ok" % port)
                    except OSError as e:
                        out.append("%d:%s" % (port, errno.errorcode.get(e.errno, e.errno)))
                    s.close()
            for name, option, value in (("debug", 1, 1), ("mark", 36, 5), ("prefer", 69, 1), ("wifi", 41, 1),
                                        ("busy", 46, 50), ("lock", 44, 1), ("unlock", 44, 0)):
                s = socket.socket() if name != "unlock" else s
                try:
                    s.setsockopt(socket.SOL_SOCKET, option, value); out.append(name + ":ok")
                except OSError as e:
                    out.append(name + ":" + errno.errorcode.get(e.errno, str(e.errno)))
            print(" ".join(out))
            """
        let nobody = Shell.run(["ip", "netns", "exec", served.lab.name, "setpriv", "--reuid=65534", "--regid=65534",
                                "--clear-groups", "--inh-caps=-all", Package.netmp, "run", "--tap", served.lab.tap,
                                "--addr", "10.77.0.2/24", "--", "python3", "-c", script], timeout: 30)
        #expect(nobody.stdout == "80:EACCES 8080:ok 80:EACCES 8080:ok debug:EACCES mark:EPERM prefer:EPERM wifi:ok busy:ok lock:ok unlock:EPERM\n",
                "\(nobody.stdout) \(nobody.stderr)")
        #expect(served.stackLog.contains("(uid 65534) attached"), "\(served.stackLog)")
        let root = Shell.run(served.netmp(["python3", "-c", script]), timeout: 30)
        #expect(root.stdout == "80:ok 8080:ok 80:ok 8080:ok debug:ok mark:ok prefer:ok wifi:ok busy:ok lock:ok unlock:EPERM\n",
                "\(root.stdout) \(root.stderr)")
    }

    /// `count` connections, one after another, from the kernel to a preloaded server on
    /// `served` that answers each with a byte and closes it: every one completes.
    func shortConnections(_ count: Int, to port: Int, on served: ServedLab) throws {
        let errors = NSTemporaryDirectory() + "/\(served.lab.name)-\(port).err"
        defer { try? FileManager.default.removeItem(atPath: errors) }
        let server = try served.pythonServer("""
            import socket, sys
            l = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=128)
            for _ in range(int(sys.argv[2])):
                c, _ = l.accept(); c.sendall(b"x"); c.close()
            """, ["\(port)", "\(count)"], errors: errors)
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        usleep(300_000)
        let client = served.kernelPython("""
            import socket, sys
            n = 0
            for _ in range(int(sys.argv[2])):
                s = socket.create_connection(("10.77.0.2", int(sys.argv[1])), timeout=10)
                n += len(s.recv(10)); s.close()
            print(n)
            """, ["\(port)", "\(count)"])
        #expect(client.stdout == "\(count)\n", "\(client.stdout) \(client.stderr)")
        served.expectEndsCleanly(server, errors: errors)
    }

    /// Connections the kernel opens to a server on a two-core stack arrive on their owner
    /// core's queue from their first SYN (the stack's eBPF steering program): not one of
    /// their frames is forwarded between cores. Without the program the tun driver picks a
    /// new flow's queue by its own hash, and about half the SYNs land on the other core.
    @Test func steeringProgram_passiveConnectionsArriveOnTheirOwner() throws {
        let served = try ServedLab(["--cores", "2"])
        try shortConnections(400, to: 7807, on: served)
        let stat = Shell.run([Package.netmp, "stat", String(served.stack.processIdentifier), "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(stat.stdout.utf8)) as? [String: Any]
        let cores = json?["cores"] as? [[String: Any]] ?? []
        let arrived = cores.reduce(0) { $0 + ($1["frames_in"] as? Int ?? 0) }
        let forwarded = cores.reduce(0) { $0 + ($1["forwarded"] as? Int ?? 0) }
        #expect(cores.count == 2 && cores.allSatisfy { $0["steering"] as? String == "program" }, "\(stat.stdout)")
        #expect(cores.allSatisfy { ($0["frames_in"] as? Int ?? 0) > 100 }, "both cores own connections: \(stat.stdout)")
        #expect(arrived >= 400 * 3 && forwarded == 0, "\(forwarded) of \(arrived) frames forwarded")
    }

    /// A stack the kernel refuses the steering program to (no CAP_BPF or CAP_SYS_ADMIN, and
    /// unprivileged BPF off, as on this machine kind) keeps the tun driver's flow table:
    /// `netmp stat` says so and why, and connections still work, their misses forwarded.
    @Test func steeringProgramRefused_flowTableServes() throws {
        let served = try ServedLab(["--cores", "2"], wrapper: ["setpriv", "--bounding-set", "-bpf,-sys_admin,-perfmon",
                                                                "--inh-caps", "-bpf,-sys_admin,-perfmon"])
        try shortConnections(100, to: 7808, on: served)
        let stat = Shell.run([Package.netmp, "stat", String(served.stack.processIdentifier)])
        // Where unprivileged BPF is on (kernel.unprivileged_bpf_disabled = 0), socket
        // filters load without the capabilities: the program then steers.
        let unprivileged = (try? String(contentsOfFile: "/proc/sys/kernel/unprivileged_bpf_disabled", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) == "0"
        let expected = unprivileged ? "TAP steering: netmp's hash (eBPF program)"
            : "TAP steering: the kernel's flow table (the eBPF program was refused: Operation not permitted)"
        #expect(stat.stdout.contains(expected), "\(stat.stdout)")
    }
}
