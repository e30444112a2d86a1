import Glibc

/// Which stack a measurement runs the program under test on.
enum BenchSide: Sendable { case kernel, netmp }

/// What one measurement needs: the namespaces, the time per measurement, a scratch folder
/// (configurations, files to send), and fresh ports (a server never meets the last one's).
final class BenchContext {
    let lab: LabNamespaces
    let seconds: Int
    let scratch: String
    private var port = 20_000
    /// The stack process of the netmp measurement under way (Bench.measureThroughService).
    var stack: pid_t?
    init(lab: LabNamespaces, seconds: Int, scratch: String) { self.lab = lab; self.seconds = seconds; self.scratch = scratch }
    func nextPort() -> Int { port += 1; return port }

    /// Where the kernel peer in the server namespace is, as the side's client reaches it.
    func peer(_ side: BenchSide, ipv6: Bool = false) -> String {
        if ipv6 { return side == .kernel ? LabNamespaces.kernelOnVeth6 : LabNamespaces.kernelOnTAP6 }
        return side == .kernel ? LabNamespaces.kernelOnVeth : LabNamespaces.kernelOnTAP
    }
    /// A client command on the side's stack (kernel: in the client namespace, over the veth).
    func client(_ side: BenchSide, _ command: [String], cores: Int? = nil) -> [String] {
        side == .kernel ? lab.inClient(command) : lab.onNetmp(command, cores: cores)
    }
    /// A server command on the side's stack, and the address its kernel client reaches it at.
    func server(_ side: BenchSide, _ command: [String]) -> (command: [String], address: String) {
        side == .kernel ? (lab.inServer(command), LabNamespaces.kernelOnVeth) : (lab.onNetmp(command), LabNamespaces.netmpAddress)
    }
    /// Waits for a server of `netmpServer` cases: a netmp one on the TAP, else a kernel one.
    func waitForServer(_ side: BenchSide, netmpServer: Bool, port: Int) -> Bool {
        lab.waitForListener(port: port, netmpAddress: netmpServer && side == .netmp ? LabNamespaces.netmpAddress : nil)
    }
    /// The kernel client of a server under test: over the veth for a kernel server, over
    /// the TAP (from the server namespace) for a netmp one.
    func clientOfServer(_ side: BenchSide, _ command: [String]) -> [String] {
        side == .kernel ? lab.inClient(command) : lab.inServer(command)
    }
}

/// One measurement's raw values by name, or why there are none.
struct BenchSample: Sendable {
    var values: [String: Double] = [:]
    var failure: String? = nil
    static func failed(_ reason: String) -> BenchSample { BenchSample(failure: reason) }
    var summary: String {
        if let failure { return "failed: \(failure)" }
        return values.sorted { $0.key < $1.key }.map { "\($0.key) \(short($0.value))" }.joined(separator: ", ")
    }
}

/// A figure a case reports: its row name, unit, which way is better, and how it is read
/// from one repetition's kernel and netmp samples (most read their own side's raw value).
struct BenchMetric: Sendable {
    enum Better: String, Sendable { case higher, lower }
    var name: String
    var unit: String
    var better: Better
    var value: @Sendable (_ own: BenchSample, _ kernel: BenchSample, _ netmp: BenchSample, _ side: BenchSide) -> Double?

    static func raw(_ key: String, _ name: String, _ unit: String, _ better: Better) -> BenchMetric {
        BenchMetric(name: name, unit: unit, better: better) { own, _, _, _ in own.failure == nil ? own.values[key] : nil }
    }
}

struct BenchCase: Sendable {
    var name: String
    /// The protocol threads the netmp side runs with (nil: one per CPU).
    var cores: Int? = nil
    /// Over IPv6: the stack gets an IPv6 address, the programs reach their peers at theirs.
    var ipv6 = false
    var tools: [String] = []
    var metrics: [BenchMetric]
    var measure: @Sendable (BenchSide, BenchContext) -> BenchSample

    func missing() -> String? {
        tools.first { !installed($0) }.map { "'\($0)' is not installed" }
    }

    static let all: [BenchCase] = [
        iperf("tcp-send", []), iperf("tcp-receive", ["-R"]),
        iperf("tcp-send-ipv6", [], ipv6: true), iperf("tcp-receive-ipv6", ["-R"], ipv6: true),
        iperf("tcp-p8-cores1", ["-P", "8"], cores: 1, cpu: false), iperf("tcp-p8-cores2", ["-P", "8"], cores: 2, cpu: false),
        iperf("tcp-send-loss1", [], cpu: false, impairment: onePercentLoss),
        iperf("tcp-receive-loss1", ["-R"], cpu: false, impairment: onePercentLoss),
        local, udp, udpPaced, udpIPv6, pingPong(netmpServer: false), pingPong(netmpServer: true),
        connectionsPerSecond(netmpServer: true), connectionsPerSecond(netmpServer: false),
        connectionsPerSecond(netmpServer: true, cores: 1), connectionsPerSecond(netmpServer: false, cores: 1),
        idleConnections, integrity,
    ]

    // MARK: iperf3

    /// 1% of frames dropped in each direction by nftables, on the TAP for netmp and on the
    /// veth for the kernel: how each recovers from loss (the kernel's TSO and GRO frames are
    /// dropped whole on both links, as netmp's super-frames are).
    static let onePercentLoss = "numgen random mod 100 < 1 drop"

    static func iperf(_ name: String, _ flags: [String], cores: Int? = nil, cpu: Bool = true,
                      impairment: String? = nil, ipv6: Bool = false) -> BenchCase {
        var metrics = [BenchMetric.raw("rate", name, "Gbit/s", .higher)]
        if cpu {
            // Where the bytes are handled: the client receives with -R.
            metrics.append(.raw("cpu", name + " cpu", "CPU s/GiB", .lower))
            metrics.append(.raw("peer-cpu", name + " peer cpu", "CPU s/GiB", .lower))
        }
        return BenchCase(name: name, cores: cores, ipv6: ipv6, tools: impairment == nil ? ["iperf3"] : ["iperf3", "nft"],
                         metrics: metrics) { side, context in
            if let impairment, !context.lab.impair(side, impairment) { return .failed("nft refused the impairment") }
            defer { if impairment != nil { context.lab.clearImpairment() } }
            let run = runIperf(side, context, flags, cores: cores, ipv6: ipv6)
            guard let report = run.report else { return .failed(run.failure ?? "no report") }
            guard let rate = number("bits_per_second", after: "\"sum_received\"", in: report.output),
                  let bytes = number("bytes", after: "\"sum_received\"", in: report.output), bytes > 0 else {
                return .failed("no receiver figures in iperf3's report")
            }
            let gib = bytes / Double(1 << 30)
            return BenchSample(values: ["rate": rate / 1e9, "cpu": report.cpuSeconds / gib, "peer-cpu": run.serverCPU / gib,
                                        "gib": gib])
        }
    }

    /// Two programs on one host: an iperf3 server and client both on the side's stack, the
    /// kernel's over its loopback (127.0.0.1), netmp's through the stack at its own address
    /// (the loopback queue; the TAP carries none of it). CPU per GiB is both programs' (and
    /// the stack's, which Bench adds).
    static let local = BenchCase(name: "tcp-local", tools: ["iperf3"],
                                 metrics: [.raw("rate", "tcp-local", "Gbit/s", .higher),
                                           .raw("cpu", "tcp-local cpu", "CPU s/GiB", .lower)]) { side, context in
        let port = context.nextPort()
        let serverCommand = ["iperf3", "-s", "-1", "-4", "-p", "\(port)"]
        let server = spawn(side == .kernel ? context.lab.inServer(serverCommand) : context.lab.onNetmp(serverCommand), quiet: true)
        let address = side == .kernel ? "127.0.0.1" : LabNamespaces.netmpAddress
        // A probe connection would be iperf3 -1's one test: look for the listener (netmp's
        // has its kernel twin on 127.0.0.1) instead.
        guard context.lab.waitForListener(port: port) else {
            stop(server); return .failed("the iperf3 server did not start")
        }
        let clientCommand = ["iperf3", "-4", "-c", address, "-p", "\(port)", "-t", "\(context.seconds)", "-J"]
        let client = captureMeasuring(side == .kernel ? context.lab.inServer(clientCommand) : context.lab.onNetmp(clientCommand))
        let serverCPU = stop(server, grace: 3)
        if let error = iperf3Error(in: client.output) { return .failed(error) }
        guard client.status == 0,
              let rate = number("bits_per_second", after: "\"sum_received\"", in: client.output),
              let bytes = number("bytes", after: "\"sum_received\"", in: client.output), bytes > 0 else {
            return .failed("iperf3 exited with status \(client.status) and no receiver figures")
        }
        let gib = bytes / Double(1 << 30)
        return BenchSample(values: ["rate": rate / 1e9, "cpu": (client.cpuSeconds + serverCPU) / gib, "gib": gib])
    }

    /// The rate the kernel receiver takes in (its socket overflows when it cannot keep up),
    /// the loss, and the sender's CPU per GiB it sent. iperf3 sends each millisecond's
    /// share at once (its pacing timer): 500 KB at 4 Gbit/s. The kernel's own sender
    /// spreads that burst over the millisecond by what each sendto costs it; netmp queues
    /// it in a tenth of that and its core sends it in a few frames, so the burst reaches
    /// the receiver whole and overflows its 208 KiB socket buffer. The paced case
    /// (`--pacing-timer 10`, the same for both) separates that from what the path carries.
    static let udp = udp(name: "udp", label: "udp", pacing: [])
    static let udpPaced = udp(name: "udp-paced", label: "udp paced", pacing: ["--pacing-timer", "10"])
    static let udpIPv6 = udp(name: "udp-ipv6", label: "udp ipv6", pacing: [], ipv6: true)

    static func udp(name: String, label: String, pacing: [String], ipv6: Bool = false) -> BenchCase {
        BenchCase(name: name, ipv6: ipv6, tools: ["iperf3"],
                  metrics: [.raw("rate", label + " 4 Gbit/s offered", "Gbit/s", .higher),
                            .raw("loss", label + " loss", "%", .lower),
                            .raw("cpu", label + " sender cpu", "CPU s/GiB", .lower)]) { side, context in
            let run = runIperf(side, context, ["-u", "-b", "4G", "-l", "1400"] + pacing, ipv6: ipv6)
            guard let report = run.report else { return .failed(run.failure ?? "no report") }
            guard let rate = number("bits_per_second", after: "\"sum_received\"", in: report.output),
                  let loss = number("lost_percent", after: "\"sum_received\"", in: report.output),
                  let sent = number("bytes", after: "\"sum_sent\"", in: report.output), sent > 0 else {
                return .failed("no receiver figures in iperf3's report")
            }
            let gib = sent / Double(1 << 30)
            return BenchSample(values: ["rate": rate / 1e9, "loss": loss, "cpu": report.cpuSeconds / gib, "gib": gib])
        }
    }

    /// iperf3 against a one-shot kernel server in the server namespace; the client's report
    /// and CPU, and the server's CPU.
    static func runIperf(_ side: BenchSide, _ context: BenchContext, _ flags: [String], cores: Int? = nil, ipv6: Bool = false)
        -> (report: (output: String, cpuSeconds: Double)?, serverCPU: Double, failure: String?) {
        let port = context.nextPort()
        let server = spawn(context.lab.inServer(["iperf3", "-s", "-1", ipv6 ? "-6" : "-4", "-p", "\(port)"]), quiet: true)
        guard context.lab.waitForListener(port: port) else { stop(server); return (nil, 0, "the iperf3 server did not start") }
        let client = captureMeasuring(context.client(side, ["iperf3", "-c", context.peer(side, ipv6: ipv6), "-p", "\(port)",
                                                             "-t", "\(context.seconds)", "-J"] + flags, cores: cores))
        let serverCPU = stop(server, grace: 3)
        if let error = iperf3Error(in: client.output) { return (nil, serverCPU, error) }
        guard client.status == 0 else { return (nil, serverCPU, "iperf3 exited with status \(client.status)") }
        return ((client.output, client.cpuSeconds), serverCPU, nil)
    }

    // MARK: Ping-pong

    /// sockperf ping-pong, 64-byte messages, full round trips: netmp as the client against a
    /// kernel server, or as the server for a kernel client.
    static func pingPong(netmpServer: Bool) -> BenchCase {
        let name = netmpServer ? "pingpong-server" : "pingpong-client"
        return BenchCase(name: name, tools: ["sockperf"],
                         metrics: [.raw("p50", name + " p50", "us", .lower), .raw("p99", name + " p99", "us", .lower),
                                   .raw("p99.9", name + " p99.9", "us", .lower)]) { side, context in
            let port = context.nextPort()
            let serverCommand = ["sockperf", "sr", "--tcp", "-i", "0.0.0.0", "-p", "\(port)"]
            let (server, address) = netmpServer ? context.server(side, serverCommand)
                : (context.lab.inServer(serverCommand), context.peer(side))
            let serverPid = spawn(server, quiet: true)
            guard context.waitForServer(side, netmpServer: netmpServer, port: port) else {
                stop(serverPid); return .failed("sockperf server did not start")
            }
            let clientCommand = ["sockperf", "pp", "--tcp", "-i", address, "-p", "\(port)", "-t", "\(context.seconds)",
                                 "-m", "64", "--full-rtt"]
            let client = capture(netmpServer ? context.clientOfServer(side, clientCommand) : context.client(side, clientCommand))
            stop(serverPid)
            var values: [String: Double] = [:]
            for (key, label) in [("p50", "50.000"), ("p99", "99.000"), ("p99.9", "99.900")] {
                values[key] = number("=", after: "percentile \(label)", in: client.output)
            }
            guard client.status == 0, values.count == 3 else { return .failed("sockperf gave no percentiles (status \(client.status))") }
            return BenchSample(values: values)
        }
    }

    // MARK: Connections per second

    /// wrk with `Connection: close` (one connection per request) against nginx: netmp on
    /// the nginx side with a kernel wrk, or netmp under wrk against a kernel nginx. With
    /// `cores` 1 the stack runs one protocol thread: whether a second one, which takes
    /// CPU and switches from programs that need every CPU, costs connections per second.
    static func connectionsPerSecond(netmpServer: Bool, cores: Int? = nil) -> BenchCase {
        let name = (netmpServer ? "cps-server" : "cps-client") + (cores.map { "-cores\($0)" } ?? "")
        return BenchCase(name: name, cores: cores, tools: ["nginx", "wrk"],
                         metrics: [.raw("cps", name, "conn/s", .higher)]) { side, context in
            let port = context.nextPort()
            guard let configuration = nginxConfiguration(port: port, context: context) else {
                return .failed("cannot write nginx's configuration")
            }
            let nginxCommand = ["nginx", "-c", configuration, "-p", context.scratch]
            let (server, address) = netmpServer ? context.server(side, nginxCommand)
                : (context.lab.inServer(nginxCommand), context.peer(side))
            let serverPid = spawn(server, quiet: true)
            guard context.waitForServer(side, netmpServer: netmpServer, port: port) else { stop(serverPid); return .failed("nginx did not start") }
            let wrk = ["wrk", "-t", "2", "-c", "16", "-d", "\(context.seconds)s", "-H", "Connection: close",
                       "http://\(address):\(port)/"]
            let client = capture(netmpServer ? context.clientOfServer(side, wrk) : context.client(side, wrk))
            stop(serverPid)
            guard client.status == 0, let rate = number("Requests/sec:", after: "Requests/sec:", in: client.output) else {
                return .failed("wrk gave no rate (status \(client.status))")
            }
            if let errors = end(of: "Socket errors:", in: client.output[...]) {
                let line = client.output[errors...].prefix { $0 != "\n" }
                progress("    (\(side) wrk socket errors:\(line))", newline: true)
            }
            return BenchSample(values: ["cps": rate])
        }
    }

    static func nginxConfiguration(port: Int, context: BenchContext) -> String? {
        let path = context.scratch + "/nginx-\(port).conf"
        let text = """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(context.scratch)/nginx-\(port).pid;
            error_log \(context.scratch)/nginx-\(port).log error;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path \(context.scratch);
                proxy_temp_path \(context.scratch);
                fastcgi_temp_path \(context.scratch);
                uwsgi_temp_path \(context.scratch);
                scgi_temp_path \(context.scratch);
                server { listen \(port); location / { return 200 "netmp bench\\n"; } }
            }

            """
        return write(text, to: path) ? path : nil
    }

    // MARK: Memory of idle connections

    static let idleCount = 10_000

    /// A client (python, on the side's stack) opens 10 000 connections to a kernel listener
    /// and holds them: its RSS growth, and the kernel's slab growth, per connection. Both
    /// ends of a kernel connection cost alike, so the kernel side's share is half its slab
    /// growth; netmp's is what the slab grew beyond the peer's half (its eventfds). The
    /// client's own Python objects are in both sides' RSS alike.
    static let idleConnections = BenchCase(
        name: "idle-10k", tools: ["python3"],
        metrics: [BenchMetric(name: "idle connection memory", unit: "KiB/conn", better: .lower) { own, kernel, netmp, side in
            guard kernel.failure == nil, netmp.failure == nil, let kernelSlab = kernel.values["slab"],
                  let rss = own.values["rss"], let slab = own.values["slab"] else { return nil }
            let peerShare = kernelSlab / 2
            return (rss + (side == .kernel ? peerShare : max(0, slab - peerShare))) / Double(idleCount)
        }, .raw("rss-per-connection", "idle connection client RSS", "KiB/conn", .lower)]) { side, context in
        guard let script = writeIdleScript(context) else { return .failed("cannot write the python script") }
        let port = context.nextPort()
        let listenAddress = side == .kernel ? LabNamespaces.kernelOnVeth : LabNamespaces.kernelOnTAP
        let server = spawn(context.lab.inServer(["python3", script, "server", listenAddress, "\(port)"]), quiet: true)
        guard context.lab.waitForListener(port: port) else { stop(server); return .failed("the python listener did not start") }
        // On netmp the connections' memory is also the stack process's: the script adds its
        // growth (private memory, and shared memory that only the stack has touched).
        let stack = side == .netmp ? context.stack.map { ["\($0)"] } ?? [] : []
        let client = capture(context.client(side, ["python3", script, "client", context.peer(side), "\(port)", "\(idleCount)"] + stack))
        stop(server)
        guard client.status == 0, let rss = number("rss_kib", after: "rss_kib", in: client.output),
              let slab = number("slab_kib", after: "slab_kib", in: client.output) else {
            return .failed("the python client reported nothing (status \(client.status)): \(client.output.prefix(200))")
        }
        return BenchSample(values: ["rss": rss, "slab": slab, "rss-per-connection": rss / Double(idleCount)])
    }

    static func writeIdleScript(_ context: BenchContext) -> String? {
        let path = context.scratch + "/idle.py"
        let text = """
            import resource, socket, sys, time
            def status(name, path):
                for line in open(path):
                    if line.startswith(name): return int(line.split()[1])
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            if sys.argv[1] == "server":
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((sys.argv[2], int(sys.argv[3])))
                s.listen(4096)
                held = []
                while True:
                    held.append(s.accept()[0])
            host, port, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
            held = [None] * count
            # One socket first: netmp's stack starts at a program's first socket, and its
            # fixed memory (threads, buffers, rings) is not the connections'.
            first = socket.socket()
            # With a stack process (its pid after the count): its private memory, and the
            # shared memory (the system's Shmem) beyond what this process has in its RSS.
            stack = "/proc/%s/status" % sys.argv[5] if len(sys.argv) > 5 else None
            def memory():
                own = status("VmRSS:", "/proc/self/status")
                if stack is None: return own
                shared = status("Shmem:", "/proc/meminfo") - status("RssShmem:", "/proc/self/status")
                return own + status("RssAnon:", stack) + shared
            rss, slab = memory(), status("Slab:", "/proc/meminfo")
            for i in range(count):
                c = socket.socket()
                c.connect((host, port))
                held[i] = c
            time.sleep(1)
            print("rss_kib", memory() - rss, "slab_kib", status("Slab:", "/proc/meminfo") - slab, flush=True)

            """
        return write(text, to: path) ? path : nil
    }

    // MARK: Integrity

    /// 64 MiB through each stack in each direction with nc, its SHA-256 compared: 1 when
    /// every byte arrived intact both ways. The bench fails when netmp's is not 1.
    static let integrity = BenchCase(name: "integrity", tools: ["nc", "sha256sum", "head"],
                                     metrics: [.raw("intact", "integrity 64 MiB both ways", "intact", .higher)]) { side, context in
        let file = context.scratch + "/random.bin"
        if access(file, R_OK) != 0 {
            guard spawnAndWait(["sh", "-c", "head -c 67108864 /dev/urandom > \(file)"]) == 0 else { return .failed("no test file") }
        }
        guard let expected = digest(["sha256sum", file]) else { return .failed("sha256sum failed") }
        var intact = 1.0
        for netmpSends in [true, false] {
            let port = context.nextPort()
            let received = context.scratch + "/received-\(port)"
            // The kernel end listens in the server namespace; the side under test connects.
            let listener = netmpSends ? "nc -d -l \(port) > \(received)" : "nc -N -l \(port) < \(file)"
            let server = spawn(context.lab.inServer(["sh", "-c", listener]), quiet: true)
            guard context.lab.waitForListener(port: port) else { stop(server); return .failed("nc did not listen") }
            let connect = netmpSends ? "nc -N \(context.peer(side)) \(port) < \(file)"
                : "nc -d \(context.peer(side)) \(port) > \(received)"
            let status = spawnAndWait(context.client(side, ["sh", "-c", connect]))
            _ = stop(server, grace: 5)
            if status != 0 || digest(["sha256sum", received]) != expected { intact = 0 }
            _ = unlink(received)
        }
        return BenchSample(values: ["intact": intact])
    }

    static func digest(_ command: [String]) -> String? {
        let (status, output) = capture(command)
        guard status == 0 else { return nil }
        return String(output.prefix { $0 != " " })
    }
}

/// Ends a background server: lets it exit by itself for `grace` seconds, then SIGTERM, then
/// SIGKILL; returns the CPU seconds it used.
@discardableResult
func stop(_ pid: pid_t, grace: Int = 0) -> Double {
    guard pid > 0 else { return 0 }
    /// Polls for the exit every 20 ms, `rounds` times: its CPU seconds once reaped.
    func reaped(within rounds: Int) -> Double? {
        for _ in 0..<rounds {
            var status: Int32 = 0
            var usage = rusage()
            let r = wait4(pid, &status, WNOHANG, &usage)
            if r == pid { return cpuSeconds(usage) }
            if r < 0 { return 0 }
            usleep(20_000)
        }
        return nil
    }
    if let cpu = reaped(within: grace * 50) { return cpu }
    kill(pid, SIGTERM)
    if let cpu = reaped(within: 100) { return cpu }
    kill(pid, SIGKILL)
    return waitMeasuring(pid).cpuSeconds
}

func cpuSeconds(_ usage: rusage) -> Double {
    Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// The number after `key` following `anchor` in `text` (iperf3's JSON, sockperf's and wrk's
/// text), or nil.
func number(_ key: String, after anchor: String, in text: String) -> Double? {
    guard let start = end(of: anchor, in: text[...]) else { return nil }
    let from = key == anchor ? start : end(of: key, in: text[start...])
    guard let from else { return nil }
    let digits = text[from...].drop { " \t\":=".contains($0) }.prefix { "0123456789.e+-".contains($0) }
    return Double(digits)
}

/// A figure in a few significant digits.
func short(_ value: Double) -> String {
    if value == 0 { return "0" }
    let magnitude = abs(value)
    let decimals = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int((value * scale).rounded())
    guard decimals > 0 else { return "\(scaled)" }
    let whole = scaled / Int(scale), fraction = abs(scaled % Int(scale))
    var fractionText = "\(fraction)"
    while fractionText.count < decimals { fractionText = "0" + fractionText }
    return "\(scaled < 0 && whole == 0 ? "-" : "")\(whole).\(fractionText)"
}
