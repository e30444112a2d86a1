import Foundation
import Testing

private let serverTools = ["ip", "nginx", "curl", "wrk", "redis-server", "redis-benchmark", "redis-cli", "socat", "iperf",
                           "iperf3", "sha256sum"]

/// Servers and clients nobody here wrote, each side on netmp in turn, against kernel peers in
/// a lab namespace: nginx with curl (100 MiB, checksummed) and wrk, redis-server with
/// redis-benchmark and BGSAVE (a fork), socat, iperf2, iperf3 over UDP, with four streams
/// and as a daemon (-D forks and the parent exits).
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: serverTools) == nil,
                             Comment(rawValue: labUnavailableReason(commands: serverTools) ?? "")))
struct ServerProgramTests {
    func netmp(_ lab: LabNamespace, _ program: [String]) -> [String] {
        ["ip", "netns", "exec", lab.name, Package.netmp, "run", "--tap", lab.tap, "--addr", "10.77.0.2/24", "--"] + program
    }

    /// A directory for one test's files, removed when the test ends.
    final class Scratch {
        let path: String
        init(_ lab: LabNamespace) throws {
            path = NSTemporaryDirectory() + "/\(lab.name)-scratch"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// An nginx configuration serving `root` on `address:port`, in the foreground: one
    /// process (`master_process off`), or a master and `workers` forked workers that take
    /// the master's listeners over (docs/SHIM.md), each logging its pid per request.
    /// `listens`: the listen directives' addresses instead of `address:port` (nginx's default
    /// site listens on `80` and `[::]:80`, two sockets on one port).
    func nginxConfiguration(in scratch: Scratch, address: String, port: Int, workers: Int? = nil,
                            listens: [String]? = nil) throws -> String {
        let dir = scratch.path
        let processes = workers.map { "master_process on;\nworker_processes \($0);" }
            ?? "master_process off;\nworker_processes 1;"
        let accessLog = workers == nil ? "access_log off;"
            : "log_format worker '$pid'; access_log \(dir)/access.log worker buffer=64k flush=1s;"
        let text = """
            daemon off;
            \(processes)
            error_log \(dir)/error.log info;
            pid \(dir)/nginx.pid;
            events { worker_connections 512; }
            http {
                \(accessLog)
                client_body_temp_path \(dir)/body; proxy_temp_path \(dir)/proxy; fastcgi_temp_path \(dir)/fcgi;
                uwsgi_temp_path \(dir)/uwsgi; scgi_temp_path \(dir)/scgi;
                sendfile on;
                server { \((listens ?? ["\(address):\(port)"]).map { "listen \($0);" }.joined(separator: " ")) root \(dir)/html; }
            }
            """
        try FileManager.default.createDirectory(atPath: dir + "/html", withIntermediateDirectories: true)
        try "hello\n".write(toFile: dir + "/html/index.html", atomically: true, encoding: .utf8)
        #expect(Shell.run(["sh", "-c", "head -c 104857600 /dev/urandom > \(dir)/html/big"]).status == 0)
        try text.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        return dir + "/nginx.conf"
    }

    func sameFile(_ a: String, _ b: String) -> Bool {
        let sums = Shell.run(["sha256sum", a, b]).stdout.split(separator: "\n").map { $0.prefix(64) }
        return sums.count == 2 && sums[0] == sums[1]
    }

    /// Waits until `host:port` accepts a kernel connection from the lab namespace (for
    /// servers that take a probe connection in their stride).
    func waitUntilListening(_ lab: LabNamespace, _ host: String, _ port: Int) {
        for _ in 0..<150 {
            if lab.run(["bash", "-c", "exec 3<>/dev/tcp/\(host)/\(port)"], timeout: 2).status == 0 { return }
            usleep(100_000)
        }
    }

    @Test func nginxOnNetmp_servesKernelCurlAndWrk() throws {
        let lab = try LabNamespace()
        let scratch = try Scratch(lab)
        let configuration = try nginxConfiguration(in: scratch, address: "10.77.0.2", port: 8080)
        let nginx = try Shell.start(netmp(lab, ["nginx", "-c", configuration, "-p", scratch.path]),
                                    stderrTo: scratch.path + "/nginx.err")
        defer { kill(nginx.processIdentifier, SIGKILL); nginx.waitUntilExit() }
        waitUntilListening(lab, "10.77.0.2", 8080)
        fetchAndLoad(lab, scratch, port: 8080, what: "nginx on netmp", connections: 16)
    }

    /// From the lab namespace: curl fetches the 100 MiB file (checksummed), then wrk loads
    /// the small page for 2 s with `connections`; prints both rates.
    func fetchAndLoad(_ lab: LabNamespace, _ scratch: Scratch, port: Int, what: String, connections: Int) {
        let fetch = lab.run(["curl", "-sS", "-o", scratch.path + "/got", "-w", "%{http_code} %{speed_download}",
                             "http://10.77.0.2:\(port)/big"], timeout: 60)
        #expect(fetch.status == 0 && fetch.stdout.hasPrefix("200 "), "curl: \(fetch.stdout) \(fetch.stderr)")
        #expect(sameFile(scratch.path + "/got", scratch.path + "/html/big"), "the 100 MiB arrived different")
        let speed = Double(fetch.stdout.split(separator: " ").last ?? "") ?? 0
        print("\(what), kernel curl: 100 MiB at \(String(format: "%.2f", speed * 8 / 1e9)) Gbit/s")
        let load = lab.run(["wrk", "-t\(min(2, connections))", "-c\(connections)", "-d2s",
                            "http://10.77.0.2:\(port)/index.html"], timeout: 30)
        #expect(load.status == 0, "wrk: \(load.stderr)")
        #expect(!load.stdout.contains("Socket errors"), "wrk: \(load.stdout)")
        let rate = load.stdout.split(separator: "\n").first { $0.hasPrefix("Requests/sec:") } ?? "none"
        #expect(rate != "none", "wrk printed no rate: \(load.stdout)")
        print("wrk against \(what): \(rate)")
    }

    /// nginx as it normally runs: a master that opens the listener and forks two workers,
    /// which share it through the stack. Both workers must serve requests. With
    /// `reuseport` the master opens one listener per worker on the same port (SO_REUSEPORT)
    /// and the stack spreads the connections over them.
    @Test(arguments: [false, true])
    func nginxMasterAndWorkers_onNetmp_bothWorkersServe(reuseport: Bool) throws {
        let lab = try LabNamespace()
        let scratch = try Scratch(lab)
        let nginx = try startMaster(lab, scratch, address: "10.77.0.2", port: 8082, workers: 2,
                                    listens: reuseport ? ["10.77.0.2:8082 reuseport"] : nil)
        defer { stopMaster(nginx) }
        var workers: [String] = []
        for _ in 0..<100 {
            workers = Shell.run(["pgrep", "-P", String(nginx.processIdentifier)]).stdout.split(separator: "\n").map(String.init)
            if workers.count == 2 { break }
            usleep(100_000)
        }
        #expect(workers.count == 2, "nginx workers: \(workers)")
        usleep(100_000)
        waitUntilListening(lab, "10.77.0.2", 8082)
        fetchAndLoad(lab, scratch, port: 8082, what: "nginx master + 2 workers on netmp", connections: 32)
        // Each request's line is the pid of the worker that served it (flushed within 1 s).
        sleep(2)
        let log = (try? String(contentsOfFile: scratch.path + "/access.log", encoding: .utf8)) ?? ""
        var served: [Substring: Int] = [:]
        for pid in log.split(separator: "\n") { served[pid, default: 0] += 1 }
        print("requests served per worker: \(served.values.sorted())")
        #expect(served.count == 2, "requests by worker pid: \(served)")
        let errors = (try? String(contentsOfFile: scratch.path + "/error.log", encoding: .utf8)) ?? ""
        #expect(!errors.contains("[alert]") && !errors.contains("[emerg]"), "nginx error.log: \(errors.suffix(600))")
    }

    /// Servers on netmp's wildcard are reached at 127.0.0.1 too, through the kernel twin
    /// of their listener (before, curl at loopback was refused, exit 7): nginx as a master
    /// and two workers (epoll, and the listener shared after fork), and redis-server with
    /// redis-cli at its default host, both on one stack. Kernel clients and clients on the
    /// same stack reach them at loopback and at the stack's own address alike (the latter
    /// through the stack, never the TAP), and the TAP side keeps serving beside it.
    @Test func wildcardServersOnNetmp_answerAtLoopback() throws {
        let lab = try LabNamespace()
        let scratch = try Scratch(lab)
        let nginx = try startMaster(lab, scratch, address: "0.0.0.0", port: 8084, workers: 2)
        defer { stopMaster(nginx) }
        waitUntilListening(lab, "127.0.0.1", 8084)
        for host in ["127.0.0.1", "10.77.0.2", "127.0.0.1", "127.0.0.1"] {
            let fetch = lab.run(["curl", "-sS", "-m", "10", "http://\(host):8084/index.html"], timeout: 20)
            #expect(fetch.status == 0 && fetch.stdout == "hello\n", "curl \(host): \(fetch.status) \(fetch.stderr)")
        }
        for host in ["127.0.0.1", "10.77.0.2"] {
            let fetch = Shell.run(netmp(lab, ["curl", "-sS", "-m", "10", "http://\(host):8084/index.html"]), timeout: 20)
            #expect(fetch.status == 0 && fetch.stdout == "hello\n", "preloaded curl \(host): \(fetch.status) \(fetch.stderr)")
        }
        let redis = try Shell.start(netmp(lab, ["redis-server", "--bind", "0.0.0.0", "--port", "6390", "--protected-mode", "no",
                                                     "--save", "", "--appendonly", "no", "--dir", scratch.path]),
                                    stderrTo: scratch.path + "/redis.err", stdoutTo: scratch.path + "/redis.out")
        defer { kill(redis.processIdentifier, SIGKILL); redis.waitUntilExit() }
        waitFor("Ready to accept connections", in: scratch.path + "/redis.out")
        for (host, command) in [("127.0.0.1", ["set", "key", "loopback"]), ("10.77.0.2", ["get", "key"]), ("127.0.0.1", ["get", "key"])] {
            let reply = lab.run(["redis-cli", "-h", host, "-p", "6390"] + command, timeout: 20)
            #expect(reply.stdout.contains(command.count == 3 ? "OK" : "loopback"), "redis-cli \(host): \(reply.stdout) \(reply.stderr)")
        }
        let preloaded = Shell.run(netmp(lab, ["redis-cli", "-h", "10.77.0.2", "-p", "6390", "get", "key"]), timeout: 20)
        #expect(preloaded.stdout.contains("loopback"), "preloaded redis-cli: \(preloaded.stdout) \(preloaded.stderr)")
    }

    /// nginx under netmp as a master with `workers` workers, on `address:port`.
    func startMaster(_ lab: LabNamespace, _ scratch: Scratch, address: String, port: Int, workers: Int,
                     listens: [String]? = nil) throws -> Process {
        let configuration = try nginxConfiguration(in: scratch, address: address, port: port, workers: workers, listens: listens)
        return try Shell.start(netmp(lab, ["nginx", "-c", configuration, "-p", scratch.path]), stderrTo: scratch.path + "/nginx.err")
    }

    /// Stops an nginx master the way its service manager would (SIGTERM: it stops its
    /// workers and exits); its children are killed if it has not gone within 10 s.
    func stopMaster(_ master: Process) {
        kill(master.processIdentifier, SIGTERM)
        for _ in 0..<100 where master.isRunning { usleep(100_000) }
        if master.isRunning {
            let children = Shell.run(["pgrep", "-P", String(master.processIdentifier)]).stdout
            for child in children.split(separator: "\n") { if let pid = Int32(child) { kill(pid, SIGKILL) } }
            kill(master.processIdentifier, SIGKILL)
        }
        master.waitUntilExit()
    }

    @Test func curlOnNetmp_fetchesFromKernelNginx() throws {
        let lab = try LabNamespace()
        let scratch = try Scratch(lab)
        let configuration = try nginxConfiguration(in: scratch, address: "10.77.0.1", port: 8081)
        let nginx = try Shell.start(["ip", "netns", "exec", lab.name, "nginx", "-c", configuration, "-p", scratch.path],
                                    stderrTo: scratch.path + "/nginx.err")
        defer { kill(nginx.processIdentifier, SIGKILL); nginx.waitUntilExit() }
        waitUntilListening(lab, "10.77.0.1", 8081)
        let fetch = Shell.run(netmp(lab, ["curl", "-sS", "-o", scratch.path + "/got", "-w", "%{http_code} %{speed_download}",
                                          "http://10.77.0.1:8081/big"]), timeout: 60)
        #expect(fetch.status == 0 && fetch.stdout.hasPrefix("200 "), "curl: \(fetch.stdout) \(fetch.stderr)")
        #expect(sameFile(scratch.path + "/got", scratch.path + "/html/big"), "the 100 MiB arrived different")
        let speed = Double(fetch.stdout.split(separator: " ").last ?? "") ?? 0
        print("curl on netmp from a kernel nginx: 100 MiB at \(String(format: "%.2f", speed * 8 / 1e9)) Gbit/s")
    }

    /// redis-benchmark's "SET: N requests per second" lines.
    func rates(_ output: String) -> [String] {
        output.replacingOccurrences(of: "\r", with: "\n").split(separator: "\n")
            .filter { $0.contains("requests per second") && !$0.contains("rps=") }.map(String.init)
    }

    @Test func redisOnNetmp_benchmarkAndBackgroundSave() throws {
        let lab = try LabNamespace()
        let scratch = try Scratch(lab)
        let redis = try Shell.start(netmp(lab, ["redis-server", "--bind", "10.77.0.2", "--port", "6379", "--protected-mode", "no",
                                                "--save", "", "--appendonly", "no", "--dir", scratch.path]),
                                    stderrTo: scratch.path + "/redis.err", stdoutTo: scratch.path + "/redis.out")
        defer { kill(redis.processIdentifier, SIGKILL); redis.waitUntilExit() }
        waitFor("Ready to accept connections", in: scratch.path + "/redis.out")
        let bench = lab.run(["redis-benchmark", "-h", "10.77.0.2", "-n", "20000", "-c", "20", "-q", "-t", "set,get"], timeout: 60)
        #expect(bench.status == 0, "redis-benchmark: \(bench.stderr)")
        let lines = rates(bench.stdout)
        #expect(lines.count == 2, "redis-benchmark printed: \(bench.stdout.suffix(300))")
        print("redis-server on netmp: \(lines.joined(separator: "; "))")
        // BGSAVE forks: the child writes the file and exits, the parent's sockets go on.
        #expect(lab.run(["redis-cli", "-h", "10.77.0.2", "set", "key", "value"]).stdout.contains("OK"))
        #expect(lab.run(["redis-cli", "-h", "10.77.0.2", "bgsave"]).stdout.contains("Background saving started"))
        var saved = false
        for _ in 0..<100 where !saved {
            usleep(50_000)
            let info = lab.run(["redis-cli", "-h", "10.77.0.2", "info", "persistence"]).stdout
            saved = info.contains("rdb_bgsave_in_progress:0") && info.contains("rdb_last_bgsave_status:ok")
        }
        #expect(saved, "BGSAVE did not finish")
        #expect(FileManager.default.fileExists(atPath: scratch.path + "/dump.rdb"))
        #expect(lab.run(["redis-cli", "-h", "10.77.0.2", "get", "key"]).stdout.contains("value"))
    }

    @Test func redisBenchmarkOnNetmp_againstKernelRedis() throws {
        let lab = try LabNamespace()
        let scratch = try Scratch(lab)
        let redis = try Shell.start(["ip", "netns", "exec", lab.name, "redis-server", "--bind", "10.77.0.1", "--port", "6380",
                                     "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", scratch.path],
                                    stderrTo: scratch.path + "/redis.err", stdoutTo: scratch.path + "/redis.out")
        defer { kill(redis.processIdentifier, SIGKILL); redis.waitUntilExit() }
        waitFor("Ready to accept connections", in: scratch.path + "/redis.out")
        let bench = Shell.run(netmp(lab, ["redis-benchmark", "-h", "10.77.0.1", "-p", "6380", "-n", "20000", "-c", "20", "-q",
                                          "-t", "set,get"]), timeout: 60)
        #expect(bench.status == 0, "redis-benchmark: \(bench.stderr)")
        let lines = rates(bench.stdout)
        #expect(lines.count == 2, "redis-benchmark printed: \(bench.stdout.suffix(300))")
        print("redis-benchmark on netmp: \(lines.joined(separator: "; "))")
    }

    @Test func socatAndIperf2_onNetmp() throws {
        let lab = try LabNamespace()
        let scratch = try Scratch(lab)
        let file = scratch.path + "/payload", received = scratch.path + "/received"
        #expect(Shell.run(["sh", "-c", "head -c 20000000 /dev/urandom > \(file)"]).status == 0)
        let listener = try Shell.start(["ip", "netns", "exec", lab.name, "socat", "-u",
                                        "TCP-LISTEN:7301,bind=10.77.0.1,reuseaddr", "OPEN:\(received),creat,trunc"],
                                       stderrTo: scratch.path + "/socat.err")
        defer { kill(listener.processIdentifier, SIGKILL); listener.waitUntilExit() }
        usleep(300_000)
        let send = Shell.run(netmp(lab, ["socat", "-u", "OPEN:\(file)", "TCP:10.77.0.1:7301"]), timeout: 30)
        #expect(send.status == 0, "socat: \(send.stderr)")
        for _ in 0..<100 where listener.isRunning { usleep(50_000) }
        #expect(sameFile(file, received), "socat's copy differs")

        let server = try Shell.start(["ip", "netns", "exec", lab.name, "iperf", "-s", "-B", "10.77.0.1", "-p", "5401"],
                                     stderrTo: scratch.path + "/iperf.err")
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        // Listening before the client starts (a fixed pause was once too short under load);
        // iperf2's server takes the probe in its stride.
        waitUntilListening(lab, "10.77.0.1", 5401)
        let client = Shell.run(netmp(lab, ["iperf", "-c", "10.77.0.1", "-p", "5401", "-t", "2"]), timeout: 30)
        #expect(client.status == 0, "iperf: \(client.stderr)")
        let line = client.stdout.split(separator: "\n").last { $0.contains("bits/sec") } ?? ""
        #expect(!line.isEmpty, "iperf printed: \(client.stdout)")
        print("iperf2 through netmp: \(line)")
    }

    @Test func iperf3_udp_fourStreams_andDaemon() throws {
        let lab = try LabNamespace()
        let scratch = try Scratch(lab)
        let server = try Shell.start(["ip", "netns", "exec", lab.name, "iperf3", "-s", "-B", "10.77.0.1", "-p", "5301"],
                                     stderrTo: scratch.path + "/iperf3.err")
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        usleep(400_000)
        let udp = Shell.run(netmp(lab, ["iperf3", "-c", "10.77.0.1", "-p", "5301", "-u", "-b", "300M", "-t", "2"]), timeout: 30)
        #expect(udp.status == 0, "iperf3 -u: \(udp.stderr) \(udp.stdout.suffix(300))")
        let receiver = udp.stdout.split(separator: "\n").last { $0.contains("receiver") } ?? ""
        #expect(receiver.contains("Mbits/sec"), "iperf3 -u printed: \(udp.stdout.suffix(400))")
        print("iperf3 -u through netmp: \(receiver)")
        let four = Shell.run(netmp(lab, ["iperf3", "-c", "10.77.0.1", "-p", "5301", "-P", "4", "-t", "2"]), timeout: 30)
        #expect(four.status == 0, "iperf3 -P 4: \(four.stderr)")
        let sum = four.stdout.split(separator: "\n").last { $0.contains("[SUM]") && $0.contains("receiver") } ?? ""
        #expect(!sum.isEmpty, "iperf3 -P 4 printed: \(four.stdout.suffix(400))")
        print("iperf3 -P 4 through netmp: \(sum)")

        // -D: daemon() forks and the parent exits; the child starts its own stack.
        let log = scratch.path + "/daemon.log"
        // Started, not waited for: the daemon keeps the descriptor Foundation watches for
        // its child's end, so the launcher would look alive forever.
        let pidFile = scratch.path + "/daemon.pid"
        let launcher = try Shell.start(netmp(lab, ["iperf3", "-s", "-D", "-B", "10.77.0.2", "-p", "5302", "--logfile", log,
                                                   "-I", pidFile]),
                                       stderrTo: scratch.path + "/daemon.err")
        _ = launcher
        defer { // the daemon by the pid it wrote, and nothing else on the machine
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.filter(\.isNumber)) {
                kill(pid, SIGKILL)
            }
        }
        waitUntilListening(lab, "10.77.0.2", 5302) // iperf3 buffers its log; a probe it shrugs off
        usleep(200_000)
        let client = lab.run(["iperf3", "-c", "10.77.0.2", "-p", "5302", "-t", "2"], timeout: 30)
        #expect(client.status == 0, "kernel iperf3 against the netmp daemon: \(client.stderr) \(client.stdout.suffix(300))")
        print("iperf3 -D on netmp: \(client.stdout.split(separator: "\n").last { $0.contains("receiver") } ?? "")")
    }
}
