import Glibc
import NetMPStack
import NetMPStackProcess
import NetMPSystem

let usage = """
netmp: a userspace TCP/IP stack that programs use through LD_PRELOAD.

USAGE
  netmp run [OPTIONS] -- PROGRAM [ARGS...]
      Runs PROGRAM with libnetmp.so preloaded and the NETMP_* variables set from OPTIONS
      (variables already in the environment are used for options not given). At its first
      socket the program attaches to the stack serving the TAP in this network namespace,
      and starts one if none does (`netmp stack --background --until-idle`, which ends a
      second after its last program has gone and its connections have delivered
      everything). A stack already serving keeps its own options.
      --tap NAME        TAP device to attach (NETMP_TAP), e.g. one made by `Scripts/lab up`
      --addr A/P[,A6/P] the stack's IPv4 address and prefix (NETMP_ADDR), e.g. 10.77.0.2/24,
                        and any IPv6 ones after commas, e.g. 10.77.0.2/24,fd77::2/64 (its
                        link-local IPv6 address comes from the MAC)
      --gateway G       default gateway on that subnet (NETMP_GATEWAY)
      --mac M           the stack's MAC (NETMP_MAC); default 02:00 followed by the address
      --cores N         protocol threads (NETMP_CORES); default: the CPUs the process may use
      --log LEVEL       off | error | info | debug (NETMP_LOG); default error
      --capture FILE    a stack this starts writes every frame it sends and receives to
                        FILE (pcapng) until it ends (NETMP_CAPTURE); --capture-filter EXPR
                        and --capture-snaplen N as for netmp capture (NETMP_CAPTURE_FILTER,
                        NETMP_CAPTURE_SNAPLEN)
  netmp stack [OPTIONS] [--allow-uid UID]... [--background] [--until-idle]
      Runs the stack service for one TAP in the foreground (needs CAP_NET_ADMIN): the
      protocol threads on the TAP's queues, and a door (the abstract Unix socket
      @netmp/TAP, so only in this network namespace) where programs preloaded with
      libnetmp.so attach at their first socket. OPTIONS as for run. Programs of the
      stack's uid and root may attach; --allow-uid admits another. When a program ends,
      SIGKILL included, the stack closes what it held as Linux would. SIGINT, SIGTERM or
      `netmp down` stops the stack. --background: detach, and return once the stack
      serves (exit 0; 3 when a stack already serves the TAP here; 1 after saying why it
      could not start). --until-idle: end once no program has been attached for a second
      and every connection has delivered what was written on it.
  netmp up [OPTIONS]
      A stack for the TAP in the background that stays until `netmp down`.
  netmp down --tap NAME
      Stops the stack serving NAME in this network namespace (its connections end with
      it) and waits until it has.
  netmp demo [--seconds N] [--reverse] [-6]
      The main job in one command (needs root): makes its own lab namespaces, starts a
      kernel iperf3 server, runs iperf3 for N s (default 5) through netmp and then over
      kernel sockets (a veth into the same namespace), prints both side by side, and
      removes everything it made, also when interrupted. --reverse measures receiving;
      -6 runs both over IPv6.
  netmp bench [--quick] [--ipv6] [--cases A,B] [--repetitions N] [--seconds N] [--out DIR] [--json FILE]
      The comparison in one command (needs root): in namespaces of its own, each case runs
      through netmp over a TAP and through kernel sockets over a veth against the same
      kernel peer, alternating the two, N times (default 3, median reported). Cases:
      tcp-send, tcp-receive (iperf3 -R), tcp-send-ipv6, tcp-receive-ipv6, udp-ipv6 (the same
      over IPv6), tcp-p8-cores1, tcp-p8-cores2 (iperf3 -P 8 with
      NETMP_CORES 1 and 2), tcp-local (iperf3 client and server on one host: the kernel's
      loopback, netmp's own address), udp (4 Gbit/s offered: rate and loss), udp-paced (the same
      with iperf3 sending every 10 us instead of every 1 ms), pingpong-client,
      pingpong-server (sockperf, 64 B: p50/p99/p99.9), cps-client, cps-server (wrk with
      Connection: close against nginx), cps-client-cores1, cps-server-cores1 (the same with
      NETMP_CORES 1), idle-10k (memory of 10 000 idle connections), and
      integrity (64 MiB both ways, SHA-256 checked); CPU seconds per GiB come with the
      single-stream cases. Prints a table (kernel, netmp, netmp/kernel, spread), writes
      results.json and chart.svg into DIR (default ./netmp-bench-results), shows progress
      on stderr. --quick: one repetition of 1 s of tcp-send, tcp-receive and integrity.
      --ipv6: the IPv6 cases (with --cases, added to those listed).
      A missing tool skips its case; exits 1 if netmp moved no data or corrupted it.
      Each netmp measurement starts `netmp stack` for the TAP (with the case's cores) and
      the programs attach to it; the stack's CPU and memory count in netmp's figures.
  netmp stat [PID] [--json] [--connections]
      Per-core counters of a running netmp process (all of them without PID): frames and
      bytes in and out, messages, frames forwarded to their owner core, connections,
      neighbours, drops by reason; then each connection (4-tuple, state, owner core,
      queues, cwnd, RTT, and for a stack service the program holding it, as ss -p);
      the listening and UDP sockets (address, backlog, program, as ss -lup);
      for a stack service (netmp stack), the attached programs (pid, command, uid,
      processes, sockets, faults: records the stack could not take from them).
      --json prints one object per process. --connections: only the connections, each
      with what ss -tin shows (congestion control, window scales, rto, rtt/rttvar, mss,
      cwnd and ssthresh in segments, bytes acked and received, segments retransmitted,
      delivery rate over the last 0.1 s); with --json, {"pid", "connections": [...]}.
  netmp capture --tap NAME -w FILE [-s SNAPLEN] [-c COUNT] [--limit BYTES] [--seconds N] [FILTER]
      Writes every frame the stack serving NAME here sends and receives to FILE as pcapng
      (-w - : stdout, e.g. into `tshark -i -`), one interface per core, each frame marked
      inbound or outbound, until Ctrl-C, N seconds, COUNT packets or BYTES of packets;
      then prints how many were captured and how many a full capture ring dropped.
      FILTER is pcap-filter syntax, the common part: ip, ip6, arp, tcp, udp, icmp, icmp6,
      [src|dst] host ADDR, [src|dst] net ADDR/LEN, [src|dst] port N, portrange N-M, with
      and/or/not and parentheses. SNAPLEN: bytes kept of each frame (default 262144).
      Frames carry what the TAP carries: segmentation-offload frames up to 64 KiB, with
      the checksums the kernel completes left partial. The stack's own user and root may
      capture; one capture at a time. Costs nothing while none runs.
  netmp version
  netmp --help

ENVIRONMENT (read by libnetmp.so at the program's first socket, and by a stack it starts)
  NETMP_TAP, NETMP_ADDR, NETMP_GATEWAY, NETMP_MAC, NETMP_CORES, NETMP_LOG as above.
  A program that opens no AF_INET socket puts no stack on the TAP (a preloaded sha256sum
  in a pipeline stays off it). Without NETMP_TAP the library does nothing. A bad value prints one line on stderr and the
  program runs on kernel sockets: netmp never stops a program for its own misconfiguration.
  NETMP_ACCEPT_RA 1: take IPv6 default routers, on-link prefixes and the MTU from router
                  advertisements (solicited once the link-local address is ready); default 0
  NETMP_POLL_SPIN_US  how long a protocol thread that just had work keeps polling before it
                  sleeps (adaptive polling; default 20, 0 never spins)
  NETMP_FAKE_NUMA a CPU-to-node map ("0-3:0,4-7:1") that makes a one-node machine look
                  like several nodes, for testing
  NETMP_KERNEL_ROUTES  destinations that stay on kernel sockets, e.g. 192.168.0.0/16,10.1.2.3/32
                  (loopback always does: netmp has no loopback interface)
  NETMP_LIBRARY   path of libnetmp.so for `netmp run` (default: beside this binary)
  NETMP_COMMAND   path of netmp-cli for libnetmp.so to start a stack (default: beside it)
  NETMP_STACK_LOG a file where a stack started in the background writes its log (appended;
                  default: none, since it must not hold the starting program's stderr)

EXAMPLE
  Scripts/lab up lab0      # namespace lab0 with TAP nmtap-lab0, kernel at 10.77.0.1/24
  ip netns exec lab0 netmp run --tap nmtap-lab0 --addr 10.77.0.2/24 -- nc -l 7000 &
  ip netns exec lab0 ping -c 3 10.77.0.2
"""

func fail(_ message: String, code: Int32 = 2) -> Never {
    Log.write("netmp: " + message)
    exit(code)
}

/// libnetmp.so beside the running binary (symlinks resolved), unless NETMP_LIBRARY says.
func libraryPath() -> String {
    if let explicit = getenv("NETMP_LIBRARY") { return String(cString: explicit) }
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { fail("cannot find my own binary to locate libnetmp.so; set NETMP_LIBRARY") }
    let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let dir = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    return dir + "/libnetmp.so"
}

/// The stack's options (`--tap` and the rest) up to the first argument that is not one;
/// the NETMP_* settings they give and what follows them.
func stackOptions(_ command: String, _ arguments: ArraySlice<String>,
                  more: (String, String) -> Bool = { _, _ in false }) -> ([String: String], ArraySlice<String>) {
    let flags = ["--tap": "NETMP_TAP", "--addr": "NETMP_ADDR", "--gateway": "NETMP_GATEWAY",
                 "--mac": "NETMP_MAC", "--cores": "NETMP_CORES", "--log": "NETMP_LOG",
                 "--capture": "NETMP_CAPTURE", "--capture-filter": "NETMP_CAPTURE_FILTER", "--capture-snaplen": "NETMP_CAPTURE_SNAPLEN"]
    var settings: [String: String] = [:]
    var rest = arguments
    while let first = rest.first, first != "--" {
        rest = rest.dropFirst()
        guard let value = rest.first else { fail("\(command): \(first) needs a value") }
        if let variable = flags[first] {
            settings[variable] = value
        } else if !more(first, value) {
            fail("\(command): unknown option '\(first)' (see netmp --help)")
        }
        rest = rest.dropFirst()
    }
    return (settings, rest)
}

/// The configuration the settings (then the environment) give.
func configuration(_ command: String, _ settings: [String: String]) -> StackConfiguration {
    let lookup = { (name: String) -> String? in settings[name] ?? getenv(name).map { String(cString: $0) } }
    switch StackConfiguration.parse(environment: lookup) {
    case .failure(let error): fail("\(command): \(error)")
    case .success(nil): fail("\(command): no TAP device: give --tap (or set NETMP_TAP)")
    case .success(let configuration?): return configuration
    }
}

func run(_ arguments: ArraySlice<String>) -> Never {
    let (settings, rest) = stackOptions("run", arguments)
    guard rest.first == "--", rest.count >= 2 else { fail("run: give the program after --, e.g. netmp run --tap t0 --addr 10.77.0.2/24 -- nc -l 7000") }
    let program = Array(rest.dropFirst())
    _ = configuration("run", settings)
    let library = libraryPath()
    guard access(library, R_OK) == 0 else { fail("run: \(library) is missing; build with Scripts/setup or set NETMP_LIBRARY") }
    for (name, value) in settings { setenv(name, value, 1) }
    let preload = getenv("LD_PRELOAD").map { String(cString: $0) }
    setenv("LD_PRELOAD", preload.map { library + ":" + $0 } ?? library, 1)
    var argv = program.map { strdup($0) } + [nil]
    execvp(program[0], &argv)
    fail("run: cannot run \(program[0]): \(String(cString: strerror(errno)))", code: 127)
}

func stat(_ arguments: ArraySlice<String>) -> Never {
    var json = false, connectionsOnly = false
    var pids: [Int32] = []
    for argument in arguments {
        if argument == "--json" { json = true }
        else if argument == "--connections" { connectionsOnly = true }
        else if let pid = Int32(argument), pid > 0 { pids.append(pid) }
        else { fail("stat: '\(argument)' is neither a PID nor --json or --connections") }
    }
    let show = { (snapshot: StatsSnapshot) in
        json ? (connectionsOnly ? snapshot.connectionsJSON : snapshot.json) : (connectionsOnly ? snapshot.connectionsText : snapshot.text)
    }
    let explicit = !pids.isEmpty
    if !explicit { pids = StatsSnapshot.runningProcesses() }
    if pids.isEmpty && !json { print("no process is running netmp"); exit(0) }
    var outputs: [String] = []
    for pid in pids {
        do {
            let snapshot = try StatsSnapshot.read(pid: pid)
            outputs.append(show(snapshot))
        } catch {
            guard explicit else { continue }
            // A program attached to a stack has no page of its own: the stack's is its.
            guard let stack = stackServing(pid) else { fail("stat: \(error)", code: 1) }
            outputs.append(json ? show(stack) : "process \(pid) is attached to the stack of process \(stack.pid)\n" + show(stack))
        }
    }
    // One PID: one object. Several (or none found): an array.
    if json { print(explicit && pids.count == 1 ? outputs[0] : "[" + outputs.joined(separator: ",") + "]") }
    else { print(outputs.joined(separator: "\n\n")) }
    exit(0)
}

/// The stack that program `pid` attached to (the first process of one of its clients).
func stackServing(_ pid: Int32) -> StatsSnapshot? {
    for stack in StatsSnapshot.runningProcesses() {
        if let snapshot = try? StatsSnapshot.read(pid: stack), snapshot.clients.contains(where: { $0.pid == pid }) { return snapshot }
    }
    return nil
}

func demo(_ arguments: ArraySlice<String>) -> Never {
    var seconds = 5, reverse = false, ipv6 = false
    var rest = arguments
    while let flag = rest.first {
        rest = rest.dropFirst()
        switch flag {
        case "--seconds":
            guard let value = rest.first.flatMap({ Int($0) }), (1...60).contains(value) else { fail("demo: --seconds takes 1 to 60") }
            seconds = value
            rest = rest.dropFirst()
        case "--reverse": reverse = true
        case "-6", "--ipv6": ipv6 = true
        default: fail("demo: unknown option '\(flag)' (see netmp --help)")
        }
    }
    Demo(seconds: seconds, reverse: reverse, ipv6: ipv6).run()
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "run": run(arguments.dropFirst())
case "stack": stack(arguments.dropFirst())
case "up": up(arguments.dropFirst())
case "down": down(arguments.dropFirst())
case "stat": stat(arguments.dropFirst())
case "capture": capture(arguments.dropFirst())
case "demo": demo(arguments.dropFirst())
case "bench": bench(arguments.dropFirst())
case "version", "--version": print("netmp 0.1.0")
case "--help", "-h", "help": print(usage)
case nil: print(usage); exit(2)
case let other?: fail("unknown command '\(other)' (see netmp --help)")
}
