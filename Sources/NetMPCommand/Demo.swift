import Glibc
import Synchronization

/// `netmp demo`: the main job in one command. It makes two network namespaces of its own
/// (the server's, with a TAP for netmp and one end of a veth; and the kernel client's, with
/// the veth's other end), starts a kernel iperf3 server, runs iperf3 through netmp and
/// then over kernel sockets for the same time, and prints both side by side. Everything it
/// made is removed at the end, on failure, and on SIGINT or SIGTERM. Nothing is changed
/// outside its namespaces: the root namespace only lends the TAP and veth until they move.
struct Demo {
    let seconds: Int
    let reverse: Bool
    /// -6: over IPv6, netmp with an IPv6 address beside its IPv4 one, both sides to their
    /// peer's IPv6 address.
    var ipv6 = false
    let lab = LabNamespaces(prefix: "nmd")
    var serverNamespace: String { lab.server }
    var clientNamespace: String { lab.client }
    var tap: String { lab.tap }

    func run() -> Never {
        guard getuid() == 0 else { fail("demo: needs root (network namespaces and a TAP device)") }
        guard access("/dev/net/tun", R_OK | W_OK) == 0 else { fail("demo: no /dev/net/tun on this machine") }
        for tool in ["ip", "iperf3"] where spawnAndWait(["sh", "-c", "command -v \(tool) >/dev/null"]) != 0 {
            fail("demo: needs '\(tool)' (Scripts/setup installs it)")
        }
        DemoSignals.install()
        defer { cleanUp() }
        guard setUp() else { cleanUp(); fail("demo: could not make the lab namespaces (see above)", code: 1) }
        print("netmp demo: \(seconds) s of iperf3 \(reverse ? "-R (receiving)" : "(sending)"), one stream\(ipv6 ? " over IPv6" : ""), "
              + "to a kernel iperf3 server in namespace \(serverNamespace)")
        // One server per run, on its own port: a second client never meets a server still
        // winding down the first test ("the server is busy").
        let servers = ["5201", "5202"].map { port in
            spawn(["ip", "netns", "exec", serverNamespace, "iperf3", "-s", ipv6 ? "-6" : "-4", "-1", "-p", port], quiet: true)
        }
        usleep(500_000)
        let direction = reverse ? ["-R"] : []
        let duration = ["-t", "\(seconds)", "-J"] + direction
        typealias Lab = LabNamespaces
        let netmp = measure(["ip", "netns", "exec", serverNamespace, selfPath(), "run", "--tap", tap,
                             "--addr", ipv6 ? Lab.netmpPrefixes6 : Lab.netmpPrefix,
                             "--", "iperf3", "-c", ipv6 ? Lab.kernelOnTAP6 : Lab.kernelOnTAP, "-p", "5201"] + duration)
        let kernel = DemoSignals.interrupted ? .failure(DemoFailure(reason: "interrupted"))
            : measure(["ip", "netns", "exec", clientNamespace, "iperf3", "-c", ipv6 ? Lab.kernelOnVeth6 : Lab.kernelOnVeth,
                       "-p", "5202"] + duration)
        for server in servers where server > 0 { kill(server, SIGKILL); var status: Int32 = 0; waitpid(server, &status, 0) }
        if DemoSignals.interrupted { cleanUp(); fail("demo: interrupted; everything it made is removed", code: 130) }
        func show(_ value: Result<Double, DemoFailure>) -> String {
            switch value {
            case .success(let rate): fixed(rate / 1e9) + " Gbit/s"
            case .failure(let failure): "failed: " + failure.reason
            }
        }
        print("")
        print("  iperf3 through netmp (TAP)        \(show(netmp))")
        print("  iperf3 on kernel sockets (veth)   \(show(kernel))")
        if case .success(let n) = netmp, case .success(let k) = kernel, k > 0 {
            print("  netmp / kernel                    " + fixed(n / k))
        }
        cleanUp()
        if case .success = netmp, case .success = kernel { exit(0) }
        exit(1)
    }

    func setUp() -> Bool { lab.setUp() }
    func cleanUp() { lab.cleanUp() }

    /// Runs an iperf3 client and reads the receiver's bits per second from its JSON, or
    /// says why there is no result (iperf3's own "error" field when it gave one).
    func measure(_ command: [String]) -> Result<Double, DemoFailure> {
        let (status, output) = capture(command)
        if let error = iperf3Error(in: output) { return .failure(DemoFailure(reason: error)) }
        guard status == 0 else { return .failure(DemoFailure(reason: "iperf3 exited with status \(status)")) }
        guard let sum = end(of: "\"sum_received\"", in: output[...]),
              let field = end(of: "\"bits_per_second\":", in: output[sum...]) else {
            return .failure(DemoFailure(reason: "no receiver rate in iperf3's report"))
        }
        let digits = output[field...].drop { $0 == " " || $0 == "\t" }.prefix { "0123456789.e+-".contains($0) }
        return Double(digits).map { .success($0) } ?? .failure(DemoFailure(reason: "unreadable rate '\(digits)'"))
    }
}

/// Why one side of the demo has no result.
struct DemoFailure: Error { var reason: String }

/// SIGINT and SIGTERM while the demo runs: stop the current child and let the demo clean
/// up in normal context (the handler only kills and sets a flag, both async-signal-safe).
enum DemoSignals {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    static let child = Atomic<Int32>(0)
    static var interrupted: Bool { flag != 0 }

    static func install() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            DemoSignals.flag = 1
            let pid = DemoSignals.child.load(ordering: .relaxed)
            if pid > 0 { kill(pid, SIGTERM) }
        }
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        // A parent may have left them blocked (some process launchers do).
        var both = sigset_t()
        sigemptyset(&both)
        sigaddset(&both, SIGINT)
        sigaddset(&both, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &both, nil)
    }
}

/// Starts `command` (PATH lookup) with stdout to `pipe` if given; returns its pid.
func spawn(_ command: [String], quiet: Bool = false, stdout pipe: Int32? = nil) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let pipe { posix_spawn_file_actions_adddup2(&actions, pipe, 1) }
    if quiet {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    }
    // Children start with no signal blocked and default dispositions, whatever the demo
    // inherited (a parent that blocked SIGTERM would otherwise make the server unkillable).
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), defaults = sigset_t()
    sigemptyset(&none)
    sigemptyset(&defaults)
    for signal in [SIGINT, SIGTERM, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var argv = command.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawnp(&pid, command[0], &actions, &attributes, &argv, environ) == 0 else { return -1 }
    return pid
}

func wait(for pid: pid_t) -> Int32 { waitMeasuring(pid).status }

/// Waits for `pid`; its exit status (128 + signal if killed) and the CPU seconds it and its
/// threads used (user and system, from wait4's rusage).
func waitMeasuring(_ pid: pid_t) -> (status: Int32, cpuSeconds: Double) {
    guard pid > 0 else { return (-1, 0) }
    DemoSignals.child.store(pid, ordering: .relaxed)
    defer { DemoSignals.child.store(0, ordering: .relaxed) }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 {
        guard errno == EINTR else { return (-1, 0) }
    }
    return ((status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F), cpuSeconds(usage))
}

func spawnAndWait(_ command: [String], quiet: Bool = false) -> Int32 { wait(for: spawn(command, quiet: quiet)) }

/// Runs `command`; its exit status and what it printed.
func capture(_ command: [String]) -> (status: Int32, output: String) {
    let result = captureMeasuring(command)
    return (result.status, result.output)
}

/// Runs `command`; its exit status, what it printed, and the CPU seconds it used.
func captureMeasuring(_ command: [String]) -> (status: Int32, output: String, cpuSeconds: Double) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return (-1, "", 0) }
    let pid = spawn(command, stdout: fds[1])
    close(fds[1])
    DemoSignals.child.store(pid, ordering: .relaxed)
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fds[0], &chunk, chunk.count)
        if n > 0 { output += chunk[0..<n]; continue }
        if n < 0 && errno == EINTR { continue }
        break
    }
    close(fds[0])
    let (status, cpu) = waitMeasuring(pid)
    return (status, String(decoding: output, as: UTF8.self), cpu)
}

/// Where `needle` ends in `text`, or nil (no Foundation in the tool).
func end(of needle: String, in text: Substring) -> Substring.Index? {
    let pattern = Array(needle.utf8)
    var index = text.startIndex
    while index < text.endIndex {
        if text[index...].utf8.starts(with: pattern) { return text.utf8.index(index, offsetBy: pattern.count) }
        index = text.index(after: index)
    }
    return nil
}

/// A value with two decimals, right-aligned in six columns.
func fixed(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let text = "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    return String(repeating: " ", count: max(0, 6 - text.count)) + text
}

/// The "error" iperf3 -J reported, if it reported one.
func iperf3Error(in output: String) -> String? {
    guard let start = end(of: "\"error\":", in: output[...]) else { return nil }
    return String(output[start...].drop { $0 == " " || $0 == "\"" }.prefix { $0 != "\"" })
}
