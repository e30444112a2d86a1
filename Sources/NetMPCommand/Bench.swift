import Glibc
import NetMPSystem

/// `netmp bench`: the main job's comparison in one command. It makes its own namespaces
/// (`LabNamespaces`) and measures each case through netmp over the TAP and through kernel
/// sockets over the veth, against the same kernel peer in the same namespace, alternating
/// the two in every repetition so that the machine's noise hits both. It prints one table
/// (median of the repetitions, their spread, netmp / kernel), writes the same as JSON and
/// a chart (SVG) into a results folder, and removes everything it made, also on SIGINT.
struct Bench {
    var repetitions = 3
    var seconds = 5
    var quick = false
    var selected: [String]? = nil
    /// --ipv6: the cases over IPv6 (their names end in -ipv6), beside IPv4's when listed too.
    var ipv6 = false
    var outputFolder = "netmp-bench-results"
    var jsonPath: String? = nil
    let lab = LabNamespaces(prefix: "nmb")

    static let quickCases = ["tcp-send", "tcp-receive", "integrity"]

    func run() -> Never {
        guard getuid() == 0 else { fail("bench: needs root (network namespaces and a TAP device)") }
        guard access("/dev/net/tun", R_OK | W_OK) == 0 else { fail("bench: no /dev/net/tun on this machine") }
        for tool in ["ip", "ss", "iperf3"] where !installed(tool) { fail("bench: needs '\(tool)' (Scripts/setup installs it)") }
        let ipv6Cases = BenchCase.all.filter(\.ipv6).map(\.name)
        let chosen = selected.map { $0 + (ipv6 ? ipv6Cases : []) } ?? (ipv6 ? ipv6Cases : quick ? Self.quickCases : BenchCase.all.map(\.name))
        let cases = BenchCase.all.filter { chosen.contains($0.name) }
        if let selected, let unknown = selected.first(where: { name in !BenchCase.all.contains { $0.name == name } }) {
            fail("bench: no case '\(unknown)'; cases: \(BenchCase.all.map(\.name).joined(separator: ", "))")
        }
        DemoSignals.install()
        guard lab.setUp() else { lab.cleanUp(); fail("bench: could not make the lab namespaces (see above)", code: 1) }
        let scratch = makeScratchFolder()
        defer { cleanUp(scratch) }
        progress("netmp bench: \(cases.count) cases, \(repetitions) repetition\(repetitions == 1 ? "" : "s"), "
                 + "\(seconds) s each, kernel (veth) and netmp (TAP, through a stack process) alternating")
        let context = BenchContext(lab: lab, seconds: seconds, scratch: scratch)
        var rows: [BenchRow] = []
        for benchCase in cases where !DemoSignals.interrupted {
            if let reason = benchCase.missing() {
                progress("  \(benchCase.name): skipped (\(reason))")
                rows.append(BenchRow(benchCase: benchCase.name, metric: benchCase.name, unit: "", better: .higher,
                                     kernel: [], netmp: [], skipped: reason))
                continue
            }
            var kernel: [BenchSample] = [], netmp: [BenchSample] = []
            for repetition in 1...repetitions where !DemoSignals.interrupted {
                progress("  \(benchCase.name) \(repetition)/\(repetitions): kernel ...", newline: false)
                kernel.append(benchCase.measure(.kernel, context))
                progress(" netmp ...", newline: false)
                netmp.append(measureThroughService(benchCase, context))
                progress(" " + [kernel.last!, netmp.last!].map(\.summary).joined(separator: " | "))
            }
            rows += BenchRow.rows(for: benchCase, kernel: kernel, netmp: netmp)
        }
        if DemoSignals.interrupted { cleanUp(scratch); fail("bench: interrupted; everything it made is removed", code: 130) }
        let report = BenchReport(rows: rows, repetitions: repetitions, seconds: seconds)
        print(report.table)
        let json = jsonPath ?? outputFolder + "/results.json"
        let svg = outputFolder + "/chart.svg"
        if makeFolders(outputFolder), write(report.json, to: json), write(report.svg, to: svg) {
            print("\nwrote \(json) and \(svg)")
        } else {
            Log.write("netmp: bench: could not write the results into \(outputFolder)")
        }
        cleanUp(scratch)
        let failures = report.netmpFailures
        if !failures.isEmpty {
            Log.write("netmp: bench: netmp failed: " + failures.joined(separator: "; "))
            exit(1)
        }
        exit(0)
    }

    /// One netmp measurement with a stack process started for it (with the case's cores)
    /// and stopped after, so that its CPU is known: it is added to the program's per GiB,
    /// since the protocol work is the stack's.
    func measureThroughService(_ benchCase: BenchCase, _ context: BenchContext) -> BenchSample {
        guard let stack = lab.startStack(cores: benchCase.cores, ipv6: benchCase.ipv6) else {
            return .failed("the stack service did not start")
        }
        context.stack = stack
        var sample = benchCase.measure(.netmp, context)
        context.stack = nil
        let stackCPU = stop(stack)
        if let gib = sample.values["gib"], gib > 0, let cpu = sample.values["cpu"] { sample.values["cpu"] = cpu + stackCPU / gib }
        return sample
    }

    func cleanUp(_ scratch: String) {
        lab.cleanUp()
        _ = spawnAndWait(["rm", "-rf", scratch], quiet: true)
    }

    func makeScratchFolder() -> String {
        var template = Array("/tmp/netmp-bench-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { fail("bench: cannot make a scratch folder in /tmp") }
        return String(cString: made)
    }
}

/// Progress on stderr, so that stdout holds only the table.
func progress(_ text: String, newline: Bool = true) {
    let line = Array((text + (newline ? "\n" : "")).utf8)
    _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
}

func installed(_ tool: String) -> Bool { spawnAndWait(["sh", "-c", "command -v \(tool) >/dev/null"]) == 0 }

func makeFolders(_ path: String) -> Bool { spawnAndWait(["mkdir", "-p", path]) == 0 }

func write(_ text: String, to path: String) -> Bool {
    guard let file = fopen(path, "w") else { return false }
    defer { fclose(file) }
    return fputs(text, file) >= 0
}

func bench(_ arguments: ArraySlice<String>) -> Never {
    var bench = Bench()
    var rest = arguments
    var repetitionsGiven = false, secondsGiven = false
    while let flag = rest.popFirst() {
        func value() -> String {
            guard let v = rest.popFirst() else { fail("bench: \(flag) needs a value (see netmp --help)") }
            return v
        }
        switch flag {
        case "--quick": bench.quick = true
        case "--repetitions":
            guard let n = Int(value()), (1...20).contains(n) else { fail("bench: --repetitions takes 1 to 20") }
            bench.repetitions = n; repetitionsGiven = true
        case "--seconds":
            guard let n = Int(value()), (1...60).contains(n) else { fail("bench: --seconds takes 1 to 60") }
            bench.seconds = n; secondsGiven = true
        case "--cases": bench.selected = value().split(separator: ",").map(String.init)
        case "--ipv6": bench.ipv6 = true
        case "--out": bench.outputFolder = value()
        case "--json": bench.jsonPath = value()
        default: fail("bench: unknown option '\(flag)' (see netmp --help)")
        }
    }
    if bench.quick {
        if !repetitionsGiven { bench.repetitions = 1 }
        if !secondsGiven { bench.seconds = 1 }
    }
    bench.run()
}
