import Foundation
import Testing

/// The stack's own lifetime: the first preloaded program on a TAP starts the stack
/// (`netmp stack --background --until-idle`), later ones attach to it, and it ends once
/// its last program has gone; `netmp up` keeps one until `netmp down`. Against a kernel
/// echo server in a lab namespace.
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "ss", "python3"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "ss", "python3"]) ?? "")))
struct StackStartTests {
    /// A lab with a kernel echo server at 10.77.0.1:7900, all removed however the test ends.
    final class EchoLab {
        let lab: LabNamespace
        let server: Process
        let scratch: String

        init() throws {
            lab = try LabNamespace()
            scratch = NSTemporaryDirectory() + "/\(lab.name)-start"
            server = try Shell.start(["ip", "netns", "exec", lab.name, "python3", "-c", """
                import socket, threading
                def echo(c):
                    with c:
                        while (b := c.recv(65536)): c.sendall(b)
                l = socket.create_server(("10.77.0.1", 7900), backlog=64)
                while True:
                    c, _ = l.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
                """], stderrTo: scratch + ".server.err")
            Thread.sleep(forTimeInterval: 0.3)
        }

        deinit {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
            try? FileManager.default.removeItem(atPath: scratch + ".server.err")
        }

        /// A preloaded python3 that sends `bytes` to the echo server, reads them back,
        /// sleeps `hold` seconds with the connection open, and prints "ok".
        func client(bytes: Int = 100_000, hold: Double = 0, address: String = "10.77.0.2/24") -> [String] {
            ["ip", "netns", "exec", lab.name, Package.netmp, "run", "--tap", lab.tap, "--addr", address, "--",
             "python3", "-c", """
                import socket, sys, time
                n, hold = int(sys.argv[1]), float(sys.argv[2])
                s = socket.create_connection(("10.77.0.1", 7900), timeout=20)
                data = bytes(i % 251 for i in range(n)); s.sendall(data)
                got = b""
                while len(got) < n: got += s.recv(65536)
                time.sleep(hold)
                print("ok" if got == data else "damaged")
                """, "\(bytes)", "\(hold)"]
        }

        /// The stack processes running in the lab (by their command line).
        var stacks: [Int32] {
            Shell.run(["ip", "netns", "pids", lab.name]).stdout.split(separator: "\n").compactMap { Int32($0) }.filter { pid in
                let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
                return command.contains("netmp-cli\0stack")
            }
        }

        /// The stack processes that hold the TAP open: the stacks on it. A stack started for
        /// a program that lost the race for the door never opens it, nor does the parent a
        /// `--background` start leaves waiting for its child to say it serves.
        var stacksOnTheTap: [Int32] {
            stacks.filter { pid in
                let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
                return fds.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == "/dev/net/tun" }
            }
        }

        /// Whether the stack's door is open in the lab.
        var doorOpen: Bool { lab.run(["ss", "-Hxl"]).stdout.contains("@netmp/\(lab.tap)") }

        /// Whether `condition` held at some look within `seconds` (once is enough: a count
        /// of processes may change again right after).
        func eventually(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            repeat {
                if condition() { return true }
                usleep(50_000)
            } while Date() < deadline
            return false
        }
    }

    /// A program with no stack serving its TAP starts one and attaches to it (its pid is a
    /// client in the stack's stats, which `netmp stat PID` shows); the stack ends a moment
    /// after the program, door and process gone.
    @Test func firstProgramStartsTheStack_itEndsAfterTheLast() throws {
        let echo = try EchoLab()
        #expect(echo.stacks.isEmpty && !echo.doorOpen)
        let program = try Shell.start(echo.client(hold: 3), stderrTo: echo.scratch + ".err", stdoutTo: echo.scratch + ".out")
        defer {
            if program.isRunning { kill(program.processIdentifier, SIGKILL) }
            for suffix in [".err", ".out"] { try? FileManager.default.removeItem(atPath: echo.scratch + suffix) }
        }
        // Generous: the program's own start (python3, the library) is what takes long when the
        // whole suite loads both CPUs; a stack whose door never opens still fails.
        #expect(echo.eventually(seconds: 30) { echo.stacksOnTheTap.count == 1 && echo.doorOpen }, "no stack started: \(echo.stacks)")
        var stat = Shell.Output(status: -1, stdout: "", stderr: "")
        #expect(echo.eventually {
            stat = Shell.run([Package.netmp, "stat", "\(program.processIdentifier)"])
            return stat.status == 0
        }, "netmp stat of the program: \(stat.stderr)")
        #expect(stat.stdout.contains("process \(program.processIdentifier) is attached to the stack of process \(echo.stacksOnTheTap.first ?? -1)"),
                "\(stat.stdout)")
        #expect(echo.eventually(seconds: 20) { !program.isRunning })
        #expect(program.terminationStatus == 0)
        #expect((try? String(contentsOfFile: echo.scratch + ".out", encoding: .utf8)) == "ok\n",
                "\((try? String(contentsOfFile: echo.scratch + ".err", encoding: .utf8)) ?? "")")
        #expect(echo.eventually { echo.stacks.isEmpty && !echo.doorOpen }, "the stack outlived its last program: \(echo.stacks)")
    }

    /// The stack a program starts joins the program's session, in a process group of its
    /// own: out of the terminal's signals (^C reaches the foreground group), but in the
    /// program's scheduling group (with autogroup a session is one), where a core spinning
    /// after work can hand its CPU to the program with sched_yield. In a session of its own
    /// iperf3 -u through it took three times the context switches (STACK-SERVICE.md).
    @Test func stackStartedForAProgram_sharesItsSession_inAGroupOfItsOwn() throws {
        let echo = try EchoLab()
        let program = try Shell.start(echo.client(hold: 3), stderrTo: echo.scratch + ".err", stdoutTo: echo.scratch + ".out")
        defer {
            if program.isRunning { kill(program.processIdentifier, SIGKILL) }
            for suffix in [".err", ".out"] { try? FileManager.default.removeItem(atPath: echo.scratch + suffix) }
        }
        #expect(echo.eventually(seconds: 30) { echo.stacksOnTheTap.count == 1 }, "no stack started: \(echo.stacks)")
        /// A process's group and session, from /proc/PID/stat (the fields after its name).
        func groupAndSession(_ pid: Int32) -> (group: Int32, session: Int32)? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let end = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            guard fields.count > 3, let group = Int32(fields[2]), let session = Int32(fields[3]) else { return nil }
            return (group, session)
        }
        let stack = try #require(echo.stacksOnTheTap.first)
        let stackIDs = try #require(groupAndSession(stack))
        let programIDs = try #require(groupAndSession(program.processIdentifier))
        #expect(stackIDs.session == programIDs.session, "stack \(stack) \(stackIDs), program \(programIDs)")
        #expect(stackIDs.group == stack && stackIDs.group != programIDs.group, "stack \(stack) \(stackIDs), program \(programIDs)")
        #expect(echo.eventually(seconds: 20) { !program.isRunning })
        #expect((try? String(contentsOfFile: echo.scratch + ".out", encoding: .utf8)) == "ok\n",
                "\((try? String(contentsOfFile: echo.scratch + ".err", encoding: .utf8)) ?? "")")
    }

    /// A program whose standard input and error are closed (node's stderr is close-on-exec
    /// when it starts the stack) starts a stack that serves it: before, the stack's door
    /// took descriptor 2 and its own log replaced it, so every attach failed for 10 s and
    /// the program fell back to kernel sockets (source 10.77.0.1, the kernel's own).
    @Test func programWithClosedStandardStreams_startsAStackThatServes() throws {
        let echo = try EchoLab()
        let out = Shell.run(["ip", "netns", "exec", echo.lab.name, "sh", "-c", "exec 0<&- 2>&-; exec \"$@\"", "sh",
                             Package.netmp, "run", "--tap", echo.lab.tap, "--addr", "10.77.0.2/24", "--", "python3", "-c", """
            import socket
            s = socket.create_connection(("10.77.0.1", 7900), timeout=20)
            s.sendall(b"ping"); print(s.getsockname()[0], s.recv(4).decode())
            """], timeout: 30)
        #expect(out.status == 0 && out.stdout == "10.77.0.2 ping\n", "\(out.stdout)\(out.stderr)")
        #expect(echo.eventually { echo.stacks.isEmpty && !echo.doorOpen }, "the stack outlived its program: \(echo.stacks)")
    }

    /// Programs started at the same moment on a TAP nobody serves: one stack starts (the
    /// door decides which), every program attaches to it and gets its data back.
    @Test func programsStartedTogether_shareOneStack() throws {
        let echo = try EchoLab()
        let count = 4
        let programs = try (0..<count).map { i in
            try Shell.start(echo.client(hold: 2), stderrTo: echo.scratch + "-\(i).err", stdoutTo: echo.scratch + "-\(i).out")
        }
        defer {
            for p in programs where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            for i in 0..<count { for suffix in [".err", ".out"] { try? FileManager.default.removeItem(atPath: echo.scratch + "-\(i)" + suffix) } }
        }
        #expect(echo.eventually { echo.stacksOnTheTap.count == 1 })
        var most = 0
        while programs.contains(where: \.isRunning) {
            most = max(most, echo.stacksOnTheTap.count)
            usleep(100_000)
        }
        #expect(most == 1, "\(most) stacks ran at once on one TAP")
        for (i, program) in programs.enumerated() {
            let out = (try? String(contentsOfFile: echo.scratch + "-\(i).out", encoding: .utf8)) ?? ""
            let err = (try? String(contentsOfFile: echo.scratch + "-\(i).err", encoding: .utf8)) ?? ""
            #expect(program.terminationStatus == 0 && out == "ok\n", "program \(i): \(out) \(err)")
        }
        #expect(echo.eventually { echo.stacks.isEmpty })
    }

    /// Programs one after another, each starting as the last one's stack may be ending
    /// (pauses around the stack's one second of idleness): each attaches to the stack
    /// still serving or starts the next one, never a second stack beside a stopping one,
    /// and every transfer is whole.
    @Test func programsOneAfterAnother_acrossTheStacksEnd() throws {
        let echo = try EchoLab()
        let pauses = [0.0, 0.9, 1.0, 1.1, 1.2, 0.95, 1.05, 1.15, 0.5, 1.3, 1.0, 1.1]
        for (i, pause) in pauses.enumerated() {
            Thread.sleep(forTimeInterval: pause)
            let out = Shell.run(echo.client(bytes: 200_000), timeout: 30)
            #expect(out.status == 0 && out.stdout == "ok\n", "run \(i) after \(pause) s: \(out.stdout) \(out.stderr)")
            #expect(echo.stacksOnTheTap.count <= 1, "run \(i): stacks \(echo.stacks)")
        }
        #expect(echo.eventually { echo.stacks.isEmpty })
    }

    /// `netmp up` starts a stack that outlives its programs; a second `up` finds it;
    /// `netmp down` stops it and returns once it has.
    @Test func upKeepsTheStack_downStopsIt() throws {
        let echo = try EchoLab()
        let lab = echo.lab
        let up = lab.run([Package.netmp, "up", "--tap", lab.tap, "--addr", "10.77.0.2/24"])
        #expect(up.status == 0 && up.stdout.contains("a stack serves \(lab.tap)"), "\(up.stdout) \(up.stderr)")
        defer { lab.run([Package.netmp, "down", "--tap", lab.tap]) }
        #expect(echo.stacks.count == 1 && echo.doorOpen)
        let again = lab.run([Package.netmp, "up", "--tap", lab.tap, "--addr", "10.77.0.2/24"])
        #expect(again.status == 0 && again.stdout.contains("already serves"), "\(again.stdout) \(again.stderr)")
        let stack = echo.stacks
        let out = Shell.run(echo.client(), timeout: 30)
        #expect(out.status == 0 && out.stdout == "ok\n", "\(out.stdout) \(out.stderr)")
        // A program asking for another address is served at the stack's, and told so.
        let other = Shell.run(echo.client(address: "10.77.0.3/24"), timeout: 30)
        #expect(other.status == 0 && other.stdout == "ok\n", "\(other.stdout) \(other.stderr)")
        #expect(other.stderr.contains("keeps its own options: address 10.77.0.2/24"), "\(other.stderr)")
        Thread.sleep(forTimeInterval: 2)
        #expect(echo.stacks == stack && echo.doorOpen, "the stack of netmp up ended with its program")
        let down = lab.run([Package.netmp, "down", "--tap", lab.tap])
        #expect(down.status == 0 && down.stdout.contains("stopped"), "\(down.stdout) \(down.stderr)")
        #expect(!echo.doorOpen)
        #expect(echo.eventually { echo.stacks.isEmpty })
        let none = lab.run([Package.netmp, "down", "--tap", lab.tap])
        #expect(none.status == 0 && none.stdout.contains("no stack serves"), "\(none.stdout)")
    }
}
