import Foundation
import Testing

/// A preloaded program that holds a socket (the stack starts at the first one) and only
/// sleeps is a host on a TAP link: the kernel in the lab namespace pings it,
/// learns its MAC, floods it, and throws malformed frames at it. Everything runs inside a
/// namespace the test makes and removes.
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "ping", "python3"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "ping", "python3"]) ?? "")))
struct PingTests {
    static let mac = "02:4e:4d:00:00:02"
    static let address = "10.77.0.2"

    /// Starts a sleeping python3 with one UDP socket under netmp in the lab and waits until
    /// its stack is up.
    func startHost(in lab: LabNamespace, log: String, addresses: String = Self.address + "/24") throws -> Process {
        let process = try Shell.start(["ip", "netns", "exec", lab.name, Package.netmp, "run", "--tap", lab.tap,
                                       "--addr", addresses, "--mac", Self.mac, "--log", "info",
                                       "--", "python3", "-c", "import socket, time\n"
                                        + "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); time.sleep(120)"],
                                      stderrTo: log)
        for _ in 0..<100 {
            if Shell.run([Package.netmp, "stat", "\(process.processIdentifier)", "--json"]).status == 0 { return process }
            usleep(50_000)
        }
        stop(process)
        throw LabError.netmpDidNotStart((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// SIGKILL, not SIGTERM: a child spawned from a test-runner thread may inherit a mask
    /// that blocks SIGTERM, and the test must not wait for the program to end on its own.
    func stop(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stats(_ pid: Int32) throws -> [String: Any] {
        let out = Shell.run([Package.netmp, "stat", "\(pid)", "--json"])
        #expect(out.status == 0, "netmp stat: \(out.stderr)")
        return try #require(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
    }

    func drops(_ stats: [String: Any]) -> [String: Int] {
        var total: [String: Int] = [:]
        for core in stats["cores"] as? [[String: Any]] ?? [] {
            for (reason, count) in core["drops"] as? [String: Int] ?? [:] { total[reason, default: 0] += count }
        }
        return total
    }

    @Test func kernelPings_neighbourLearnt_floodLosesNothing() throws {
        let lab = try LabNamespace()
        let log = NSTemporaryDirectory() + "/\(lab.name).log"
        let host = try startHost(in: lab, log: log)
        defer { stop(host) }

        // The gratuitous ARP on start (the lab accepts it) put netmp's MAC in the kernel's table.
        // The stats page exists a moment before the protocol thread announces: poll briefly.
        var announced = lab.run(["ip", "neigh", "show", Self.address, "dev", lab.tap])
        for _ in 0..<60 where !announced.stdout.contains(Self.mac) {
            usleep(50_000)
            announced = lab.run(["ip", "neigh", "show", Self.address, "dev", lab.tap])
        }
        #expect(announced.stdout.contains(Self.mac), "neighbour table before any ping: \(announced.stdout)")

        let ping = lab.run(["ping", "-c", "20", "-i", "0.01", "-W", "2", Self.address], timeout: 30)
        #expect(ping.stdout.contains(" 0% packet loss"), "\(ping.stdout)\(ping.stderr)")
        #expect(ping.stdout.contains("20 received"))

        let neighbour = lab.run(["ip", "neigh", "show", Self.address, "dev", lab.tap])
        #expect(neighbour.stdout.contains("lladdr " + Self.mac), "\(neighbour.stdout)")
        let arping = lab.run(["arping", "-c", "2", "-w", "3", "-I", lab.tap, Self.address], timeout: 10)
        #expect(arping.status == 0 && arping.stdout.lowercased().contains(Self.mac), "\(arping.stdout)\(arping.stderr)")

        let flood = lab.run(["ping", "-f", "-c", "10000", "-w", "60", Self.address], timeout: 90)
        #expect(flood.stdout.contains("10000 packets transmitted, 10000 received"), "\(flood.stdout)\(flood.stderr)")
        #expect(flood.stdout.contains(" 0% packet loss"))

        let counters = try stats(host.processIdentifier)
        // On whichever cores the TAP's steering put the echoes: count them all.
        let cores = try #require(counters["cores"] as? [[String: Any]])
        #expect(cores.reduce(0) { $0 + ($1["frames_in"] as? Int ?? 0) } >= 10_020)
        #expect(cores.reduce(0) { $0 + ($1["frames_out"] as? Int ?? 0) } >= 10_020)
    }

    @Test func malformedBurst_countedByReason_andPingStillAnswered() throws {
        let lab = try LabNamespace()
        let log = NSTemporaryDirectory() + "/\(lab.name).log"
        let host = try startHost(in: lab, log: log)
        defer { stop(host) }
        let before = drops(try stats(host.processIdentifier))

        let injector = Package.root + "/Tests/Fixtures/inject_malformed.py"
        let perKind = 25
        let injected = lab.run(["python3", injector, lab.tap, Self.mac, Self.address, "10.77.0.1", "\(perKind)", "3000", "7"], timeout: 60)
        #expect(injected.status == 0, "\(injected.stderr)")
        let kinds = injected.stdout.split(separator: "\n").map { $0.split(separator: " ") }
        #expect(kinds.count == 16)

        // The targeted kinds arrive first; wait until the stack has read all of them.
        usleep(300_000)
        let ping = lab.run(["ping", "-c", "20", "-i", "0.01", "-W", "2", Self.address], timeout: 30)
        #expect(ping.stdout.contains(" 0% packet loss"), "after the burst: \(ping.stdout)")

        let after = drops(try stats(host.processIdentifier))
        for kind in kinds where kind.count == 2 {
            let reason = String(kind[0])
            let counted = (after[reason] ?? 0) - (before[reason] ?? 0)
            // At least every targeted frame; the random frames may add more of the same reasons.
            #expect(counted >= perKind, "\(reason): counted \(counted), sent \(perKind)")
        }
        let total = after.values.reduce(0, +) - before.values.reduce(0, +)
        #expect(total >= 16 * perKind + 1000, "random mutations should be dropped too: \(total)")
        let stillRunning = kill(host.processIdentifier, 0) == 0
        #expect(stillRunning)
    }
}

extension PingTests {
    static let address6 = "fd77::2"
    /// What the kernel forms from `mac`: the universal/local bit flipped, ff:fe in the middle.
    static let linkLocal = "fe80::4e:4dff:fe00:2"

    /// Over IPv6 the kernel finds netmp by neighbour discovery and pings its global,
    /// link-local and all-nodes addresses; with no IPv6 socket yet, a TCP connect is
    /// refused at once; malformed IPv6 is counted by reason and ping is still answered.
    @Test func kernelPings6_neighbourDiscovered_malformedCounted() throws {
        let lab = try LabNamespace(addr6: "fd77::1/64")
        let log = NSTemporaryDirectory() + "/\(lab.name).log"
        let host = try startHost(in: lab, log: log, addresses: Self.address + "/24," + Self.address6 + "/64")
        defer { stop(host) }

        // The addresses are usable once duplicate address detection (1 s) found no other owner.
        var first = lab.run(["ping", "-6", "-c", "1", "-W", "1", Self.address6], timeout: 5)
        for _ in 0..<10 where first.status != 0 { first = lab.run(["ping", "-6", "-c", "1", "-W", "1", Self.address6], timeout: 5) }
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let ping = lab.run(["ping", "-6", "-c", "20", "-i", "0.01", "-W", "2", Self.address6], timeout: 30)
        #expect(ping.stdout.contains(" 0% packet loss"), "\(ping.stdout)\(ping.stderr)")
        let local = lab.run(["ping", "-6", "-c", "5", "-i", "0.05", "-W", "2", Self.linkLocal + "%" + lab.tap], timeout: 30)
        #expect(local.stdout.contains(" 0% packet loss"), "\(local.stdout)\(local.stderr)")
        let neighbour = lab.run(["ip", "-6", "neigh", "show", Self.address6, "dev", lab.tap])
        #expect(neighbour.stdout.contains("lladdr " + Self.mac), "\(neighbour.stdout)")
        // -c 3 so that the kernel's own answer cannot end the count before netmp's arrives.
        // netmp answers from the address that suits the asker, as Linux does: the kernel
        // asks from its global address or its link-local one, by its own source selection.
        let group = lab.run(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "ff02::1%" + lab.tap], timeout: 30)
        #expect(group.stdout.contains("from \(Self.address6): ") || group.stdout.contains("from \(Self.linkLocal)%"),
                "\(group.stdout)\(group.stderr)")

        let connect = lab.run(["python3", "-c", """
            import socket, time
            s = socket.socket(socket.AF_INET6); s.settimeout(5); t = time.monotonic()
            try: s.connect(("\(Self.address6)", 80))
            except ConnectionRefusedError: print("refused", round(time.monotonic() - t, 3))
            """], timeout: 15)
        #expect(connect.stdout.hasPrefix("refused"), "\(connect.stdout)\(connect.stderr)")

        // netmp stat lists the addresses and what detection said of them.
        let listed = try stats(host.processIdentifier)["ipv6"] as? [[String: String]]
        #expect(listed == [["address": Self.linkLocal + "/64", "state": "preferred"],
                           ["address": Self.address6 + "/64", "state": "preferred"]], "\(String(describing: listed))")

        let before = drops(try stats(host.processIdentifier))
        let injector = Package.root + "/Tests/Fixtures/inject_malformed.py"
        let perKind = 25
        let injected = lab.run(["python3", injector, lab.tap, Self.mac, Self.address, "10.77.0.1", "\(perKind)", "2000", "11",
                                Self.address6, "fd77::1"], timeout: 60)
        #expect(injected.status == 0, "\(injected.stderr)")
        let kinds = injected.stdout.split(separator: "\n").map { $0.split(separator: " ") }.filter { $0.count == 2 }
        let prefixes = ["ipv6", "icmpv6", "ndp", "fragment-bad-length"]
        #expect(kinds.filter { kind in prefixes.contains { kind[0].hasPrefix($0) } }.count == 13)
        usleep(300_000)
        let after = drops(try stats(host.processIdentifier))
        for kind in kinds {
            let reason = String(kind[0])
            let counted = (after[reason] ?? 0) - (before[reason] ?? 0)
            #expect(counted >= perKind, "\(reason): counted \(counted), sent \(perKind)")
        }
        let again = lab.run(["ping", "-6", "-c", "20", "-i", "0.01", "-W", "2", Self.address6], timeout: 30)
        #expect(again.stdout.contains(" 0% packet loss"), "after the burst: \(again.stdout)")
    }
}

/// netmp never takes a program down for its own misconfiguration.
@Suite(.enabled(if: FileManager.default.fileExists(atPath: Package.binDirectory + "/libnetmp.so"), "libnetmp.so is not built"))
struct MisconfigurationTests {
    func runPreloaded(_ env: [String: String]) -> Shell.Output {
        Shell.run(["env", "LD_PRELOAD=" + Package.binDirectory + "/libnetmp.so"] + env.map { "\($0)=\($1)" }
                  + ["sh", "-c", "echo still-running"])
    }

    @Test func badValue_oneLineOnStderr_programRuns() {
        let out = runPreloaded(["NETMP_TAP": "nmt-x", "NETMP_ADDR": "10.77.0.2"])
        #expect(out.status == 0 && out.stdout == "still-running\n")
        let lines = out.stderr.split(separator: "\n")
        // sh and echo are one process here; each preloaded process says it once.
        #expect(lines.count == 1, "\(out.stderr)")
        #expect(out.stderr.contains("NETMP_ADDR: '10.77.0.2' is not a unicast IPv4 address with a prefix"))
    }

    @Test func missingTAP_oneLineOnStderr_programRuns() {
        let out = runPreloaded(["NETMP_TAP": "nmt-missing0", "NETMP_ADDR": "10.77.0.2/24"])
        #expect(out.status == 0 && out.stdout == "still-running\n")
        #expect(out.stderr == "netmp: not started, using kernel sockets: no TAP device nmt-missing0 in this network namespace (Scripts/lab up makes one)\n")
    }

    @Test func badFakeNUMA_oneLineOnStderr_programRuns() {
        let out = runPreloaded(["NETMP_TAP": "nmt-missing0", "NETMP_ADDR": "10.77.0.2/24", "NETMP_FAKE_NUMA": "0:0,2:1"])
        #expect(out.status == 0 && out.stdout == "still-running\n")
        #expect(out.stderr.hasPrefix("netmp: not started, using kernel sockets: NETMP_FAKE_NUMA: '0:0,2:1'"), "\(out.stderr)")
    }

    @Test func unconfigured_silent() {
        let out = runPreloaded([:])
        #expect(out.status == 0 && out.stdout == "still-running\n" && out.stderr.isEmpty)
    }

    @Test func netmpRun_rejectsBadFlags_withExitCode2() {
        let bad = Shell.run([Package.netmp, "run", "--tap", "t0", "--addr", "300.1.1.1/24", "--", "true"])
        #expect(bad.status == 2 && bad.stderr.contains("NETMP_ADDR: '300.1.1.1/24'"))
        let noProgram = Shell.run([Package.netmp, "run", "--tap", "t0", "--addr", "10.77.0.2/24"])
        #expect(noProgram.status == 2 && noProgram.stderr.contains("give the program after --"))
        let help = Shell.run([Package.netmp, "--help"])
        #expect(help.status == 0 && help.stdout.contains("NETMP_GATEWAY") && help.stdout.contains("netmp stat"))
    }

    /// The library carries its Swift runtime: it loads into a C program with no toolchain on
    /// the library path.
    @Test func library_needsNoSwiftRuntimeOnTheLibraryPath() {
        let ldd = Shell.run(["ldd", Package.binDirectory + "/libnetmp.so"])
        #expect(ldd.status == 0)
        #expect(!ldd.stdout.contains("swift"), "\(ldd.stdout)")
        #expect(!ldd.stdout.contains("Foundation"), "\(ldd.stdout)")
    }
}
