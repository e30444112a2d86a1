import Glibc
import NetMPSystem

/// The two network namespaces `netmp demo` and `netmp bench` make: the server's, holding a
/// TAP for netmp (kernel side 10.77.0.1, netmp 10.77.0.2) and one end of a veth
/// (10.78.0.1); and a kernel client's, holding the veth's other end (10.78.0.2). A kernel
/// peer in the server namespace is reached the same way by netmp over the TAP and by a
/// kernel client over the veth. Nothing is changed outside the namespaces: the root
/// namespace only lends the TAP and veth until they move.
struct LabNamespaces {
    let tag: String
    var server: String { tag + "-s" }
    var client: String { tag + "-c" }
    var tap: String { tag + "t" }
    var vethServer: String { tag + "a" }
    var vethClient: String { tag + "b" }
    static let kernelOnTAP = "10.77.0.1", netmpAddress = "10.77.0.2", netmpPrefix = "10.77.0.2/24"
    static let kernelOnVeth = "10.78.0.1", kernelClient = "10.78.0.2"
    /// The same links' IPv6 addresses (unique local, never routed outside), for the IPv6
    /// cases; netmp gets its IPv6 address only in those (`startStack(ipv6:)`).
    static let kernelOnTAP6 = "fd77::1", kernelOnVeth6 = "fd78::1", kernelClient6 = "fd78::2"
    static let netmpPrefixes6 = "10.77.0.2/24,fd77::2/64"

    /// `prefix` and the pid: unique per run, and what Scripts/test sweeps after a crash.
    init(prefix: String) { tag = prefix + "\(getpid() % 100_000)" }

    func setUp() -> Bool {
        let steps: [[String]] = [
            ["ip", "netns", "add", server],
            ["ip", "netns", "add", client],
            ["ip", "tuntap", "add", "dev", tap, "mode", "tap", "multi_queue"],
            ["ip", "link", "set", tap, "netns", server],
            ["ip", "link", "add", vethServer, "netns", server, "type", "veth", "peer", "name", vethClient, "netns", client],
            ["ip", "-n", server, "link", "set", "lo", "up"],
            ["ip", "-n", server, "addr", "add", Self.kernelOnTAP + "/24", "dev", tap],
            ["ip", "-n", server, "link", "set", tap, "up"],
            ["ip", "-n", server, "addr", "add", Self.kernelOnVeth + "/24", "dev", vethServer],
            ["ip", "-n", server, "link", "set", vethServer, "up"],
            ["ip", "-n", client, "link", "set", "lo", "up"],
            ["ip", "-n", client, "addr", "add", Self.kernelClient + "/24", "dev", vethClient],
            ["ip", "-n", client, "link", "set", vethClient, "up"],
            // nodad: the kernel's IPv6 addresses are usable at once.
            ["ip", "-n", server, "-6", "addr", "add", Self.kernelOnTAP6 + "/64", "dev", tap, "nodad"],
            ["ip", "-n", server, "-6", "addr", "add", Self.kernelOnVeth6 + "/64", "dev", vethServer, "nodad"],
            ["ip", "-n", client, "-6", "addr", "add", Self.kernelClient6 + "/64", "dev", vethClient, "nodad"],
        ]
        for step in steps where !DemoSignals.interrupted {
            if spawnAndWait(step) != 0 { Log.write("netmp: failed: \(step.joined(separator: " "))"); return false }
        }
        return !DemoSignals.interrupted
    }

    /// Removes both namespaces (which takes the TAP and veth with them), and the TAP in
    /// case it never left the root namespace.
    func cleanUp() {
        _ = spawnAndWait(["ip", "netns", "del", server], quiet: true)
        _ = spawnAndWait(["ip", "netns", "del", client], quiet: true)
        _ = spawnAndWait(["ip", "link", "del", tap], quiet: true)
        _ = spawnAndWait(["ip", "link", "del", vethServer], quiet: true)
    }

    /// `command` in the server namespace on kernel sockets.
    func inServer(_ command: [String]) -> [String] { ["ip", "netns", "exec", server] + command }
    /// `command` in the client namespace on kernel sockets.
    func inClient(_ command: [String]) -> [String] { ["ip", "netns", "exec", client] + command }
    /// `command` in the server namespace on netmp, attached to the TAP.
    func onNetmp(_ command: [String], cores: Int? = nil) -> [String] {
        inServer([selfPath(), "run", "--tap", tap, "--addr", Self.netmpPrefix] + (cores.map { ["--cores", "\($0)"] } ?? [])
                 + ["--"] + command)
    }

    /// Starts `netmp stack` on the TAP (in the server namespace) and waits until its door
    /// is open; its pid, or nil (after a line on stderr) when it did not come up.
    /// With `ipv6`, the stack has an IPv6 address too (its door opens once that address
    /// passed duplicate address detection).
    func startStack(cores: Int?, ipv6: Bool = false) -> pid_t? {
        let pid = spawn(inServer([selfPath(), "stack", "--tap", tap, "--addr", ipv6 ? Self.netmpPrefixes6 : Self.netmpPrefix]
                                 + (cores.map { ["--cores", "\($0)"] } ?? [])), quiet: true)
        for _ in 0..<250 where !DemoSignals.interrupted {
            let (_, output) = capture(inServer(["ss", "-Hxl"]))
            if output.contains("@netmp/\(tap)") { return pid }
            usleep(20_000)
        }
        stop(pid)
        Log.write("netmp: bench: the stack service did not open its door on \(tap)")
        return nil
    }

    /// Puts an nftables statement (such as `numgen random mod 100 < 1 drop`) on every frame
    /// of the side's link, each direction once: both hooks of the TAP for netmp, the egress
    /// of each veth end for the kernel. False (and nothing left behind) when nft refuses.
    func impair(_ side: BenchSide, _ statement: String) -> Bool {
        let hooks: [(namespace: String, hook: String, device: String)] = side == .netmp
            ? [(server, "ingress", tap), (server, "egress", tap)]
            : [(server, "egress", vethServer), (client, "egress", vethClient)]
        for (index, (namespace, hook, device)) in hooks.enumerated() {
            let chain = "c\(index)"
            let steps = [["nft", "add", "table", "netdev", Self.impairmentTable],
                         ["nft", "add", "chain", "netdev", Self.impairmentTable, chain,
                          "{ type filter hook \(hook) device \"\(device)\" priority 0; }"],
                         ["nft", "add", "rule", "netdev", Self.impairmentTable, chain, statement]]
            for step in steps where spawnAndWait(["ip", "netns", "exec", namespace] + step) != 0 {
                Log.write("netmp: failed: \(step.joined(separator: " "))")
                clearImpairment()
                return false
            }
        }
        return true
    }

    /// Removes what `impair` installed, on both sides.
    func clearImpairment() {
        for namespace in [server, client] {
            _ = spawnAndWait(["ip", "netns", "exec", namespace, "nft", "delete", "table", "netdev", Self.impairmentTable], quiet: true)
        }
    }
    static let impairmentTable = "nmbenchimpair"

    /// Waits until a server listens on TCP `port` (at most `seconds`): a kernel listener in
    /// the server namespace, or with `netmpAddress`, a netmp one (which `ss` cannot see:
    /// a kernel client probes it over the TAP).
    func waitForListener(port: Int, seconds: Int = 5, netmpAddress: String? = nil) -> Bool {
        if let netmpAddress {
            for _ in 0..<(seconds * 10) where !DemoSignals.interrupted {
                if spawnAndWait(inServer(["nc", "-z", "-w", "1", netmpAddress, "\(port)"]), quiet: true) == 0 { return true }
                usleep(100_000)
            }
            return false
        }
        for _ in 0..<(seconds * 50) where !DemoSignals.interrupted {
            let (_, output) = capture(inServer(["ss", "-Hltn", "sport = :\(port)"]))
            if output.contains(":\(port)") { return true }
            usleep(20_000)
        }
        return false
    }
}

/// This binary's path, for running `netmp run` from a namespace.
func selfPath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "netmp"
}
