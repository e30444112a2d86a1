// netmp-tcp-driver: runs the netmp stack on this thread over a TAP device and moves a stream
// through one TCP connection with a kernel peer, checksumming both directions. It is how the
// TCP interop tests reach the engine before the socket shim exists.
//
//   netmp-tcp-driver --tap T --addr A/P[,A6/P6] (--connect IP:PORT|[IP6]:PORT | --listen PORT) --send BYTES
//                    [--seed N] [--timeout SECONDS] [--cc cubic|reno|bbr] [--fault SPEC] [--offloads on|off]
// Prints one JSON line: bytes and CRC-32 sent and received, seconds, retransmissions.
//   netmp-tcp-driver --tap T --addr A/P --connect IP:PORT --connections N [--cores C] --send BYTES
// runs the per-core runtime with N connections instead (RuntimeMode.swift).
import CNetMPAllocationCount
import CZlib
import Glibc
import NetMPLink
import NetMPStack
import NetMPStackProcess
import NetMPSystem
import NetMPTCP
import NetMPWire

func die(_ message: String) -> Never {
    Log.write("netmp-tcp-driver: " + message)
    exit(2)
}

var options: [String: String] = [:]
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.first {
    arguments = arguments.dropFirst()
    guard flag.hasPrefix("--"), let value = arguments.first else { die("expected --flag VALUE, got \(flag)") }
    options[String(flag.dropFirst(2))] = value
    arguments = arguments.dropFirst()
}
guard let tap = options["tap"], let addr = options["addr"], let total = options["send"].flatMap({ Int($0) }) else {
    die("usage: --tap T --addr A/P (--connect IP:PORT | --listen PORT) --send BYTES")
}
var environment = ["NETMP_TAP": tap, "NETMP_ADDR": addr]
if let cores = options["cores"] { environment["NETMP_CORES"] = cores }
guard case .success(let configuration?) = StackConfiguration.parse(environment: { environment[$0] }) else {
    die("bad --tap, --addr or --cores")
}
if options["connections"] != nil { runRuntimeMode(options, configuration: configuration, total: total) }
let timeout = Interval.seconds(UInt64(options["timeout"].flatMap { Int($0) } ?? 120))
var tcpConfiguration = TCPConfiguration.forThisSystem() // as a kernel socket here would be
if let cc = options["cc"] {
    guard let algorithm = CongestionAlgorithm(rawValue: cc) else { die("--cc takes cubic, reno or bbr") }
    tcpConfiguration.congestionControl = algorithm
}

let secret = SystemRandom.secret()

let device: TAPDevice
do { device = try TAPDevice(name: tap) } catch { die("\(error)") }
var injector: FaultInjector? = nil
if let spec = options["fault"] {
    switch FaultPlan.parse(spec) {
    case .success(let plan): injector = FaultInjector(plan: plan)
    case .failure(let error): die("\(error)")
    }
}
// The same offloads as the runtime (--offloads off: none). Under inbound fault injection
// the kernel hands over wire-sized frames (checksum offload only), so the injector drops
// and corrupts segments, not 64 KiB super-frames. Outbound, netmp's super-segments draw a
// fate per wire segment and are cut in software only when one is touched.
let host = Host(configuration: configuration)
if options["offloads"] != "off" {
    let inboundFaults = injector?.plan.inbound == true
    let accepted = device.negotiateOffloads(inboundFaults ? [[.checksum], []] : TAPDevice.offloadPreferences)
    host.offloads = injector == nil ? LinkOffloads(accepted) : LinkOffloads(checksum: true, tcpSegmentation: true, udpSegmentation: true)
    if host.offloads.tcpSegmentation { tcpConfiguration.segmentationLimit = TCPConfiguration.superSegmentLimit }
}
let tcp = TCPEndpoints(configuration: tcpConfiguration, secret: secret)
let loop = ProtocolLoop(host: host, tcp: tcp, queue: device.queues[0], stats: nil, core: 0)
loop.sink.faults = injector
loop.announce()

var socket: TCPSocket? = nil
var listenPort: UInt16? = nil
var start = MonotonicClock.now()
if let target = options["connect"] {
    guard let remote = parseEndpoint(target) else { die("--connect IP:PORT or [IPv6]:PORT") }
    var source = IPAddress(configuration.address)
    if let v6 = remote.address.v6 {
        // Our IPv6 addresses are usable once duplicate address detection passed (a second).
        guard let chosen = configuration.ipv6Source(for: v6) else { die("no IPv6 address to reach \(v6) from") }
        source = IPAddress(chosen)
        loop.startAddressDetection(probes: true)
        while !host.ipv6.isPreferred(chosen) {
            if Interval.seconds(5) < MonotonicClock.now() - start { die("\(chosen) did not pass duplicate address detection") }
            do { try loop.runOnce(maximumWait: .milliseconds(10)) } catch { die("\(error)") }
        }
        start = MonotonicClock.now() // the transfer's time is the connection's, not the detection's
    }
    do { socket = try tcp.connect(from: source, to: remote, now: MonotonicClock.now()) } catch { die("\(error)") }
} else if let text = options["listen"], let port = UInt16(text) {
    do { try tcp.listen(port: port, backlog: 4) } catch { die("\(error)") }
    listenPort = port
} else {
    die("give --connect or --listen")
}

/// "10.77.0.1:5001" or "[fd77::1]:5001".
func parseEndpoint(_ text: String) -> Endpoint? {
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
        let inside = text[text.index(after: text.startIndex)..<close]
        let rest = text[text.index(after: close)...]
        guard rest.hasPrefix(":"), let address = IPv6Address(String(inside)), let port = UInt16(rest.dropFirst()) else { return nil }
        return Endpoint(address, port)
    }
    let parts = text.split(separator: ":")
    guard parts.count == 2, let address = IPv4Address(parts[0]), let port = UInt16(parts[1]) else { return nil }
    return Endpoint(address, port)
}

/// A reproducible byte stream: xorshift64* words.
struct Pattern {
    var state: UInt64
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var i = 0
        while i + 8 <= buffer.count {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            buffer.storeBytes(of: state &* 2_685_821_657_736_338_717, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < buffer.count { buffer[i] = UInt8(truncatingIfNeeded: i); i += 1 }
    }
}

/// CRC-32 (IEEE 802.3, as the Python peer's zlib.crc32), by zlib itself. The driver's own
/// table-driven CRC took 61% of its time (perf) and held the impairment tests near 3 Gbit/s
/// each way whatever the stack did.
struct CRC32 {
    var value: UInt = 0
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        value = crc32(value, base.assumingMemoryBound(to: UInt8.self), UInt32(bytes.count))
    }
    var final: UInt32 { UInt32(truncatingIfNeeded: value) }
}

var pattern = Pattern(state: UInt64(options["seed"].flatMap { Int($0) } ?? 1) | 1)
var sentCRC = CRC32(), receivedCRC = CRC32()
var sent = 0, received = 0
var shutDown = false
let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 64)
var pending = 0 // bytes of `chunk` generated but not yet accepted by the socket
var pendingOffset = 0
var outcome = "ok"
/// Heap allocations of the whole process when the connection was established, and the
/// frames moved by then: what the transfer allocates from there on is reported.
var allocationsAtStart: UInt64? = nil
var framesAtStart: UInt64 = 0

while true {
    let now = MonotonicClock.now()
    if timeout < now - start { outcome = "timeout"; break }
    do { try loop.runOnce(maximumWait: .milliseconds(10)) } catch { outcome = "\(error)"; break }
    if socket == nil, let port = listenPort { socket = tcp.accept(port: port) }
    guard let s = socket else { continue }
    let events = s.takeEvents()
    if events.contains(.failed) { outcome = "failed: \(String(describing: s.error))"; break }
    if allocationsAtStart == nil && s.state == .established {
        allocationsAtStart = netmp_allocations()
        framesAtStart = host.counters.framesIn &+ host.counters.framesOut
    }
    while s.state != .synSent && s.state != .synReceived && s.state != .closed && sent < total {
        if pending == 0 {
            pending = min(chunk.count, total - sent)
            pendingOffset = 0
            pattern.fill(UnsafeMutableRawBufferPointer(rebasing: chunk[0..<pending]))
        }
        let piece = UnsafeRawBufferPointer(rebasing: chunk[pendingOffset..<(pendingOffset + pending)])
        let n = s.write(piece)
        if n == 0 { break }
        sentCRC.update(UnsafeRawBufferPointer(rebasing: piece[0..<n]))
        sent += n; pending -= n; pendingOffset += n
    }
    if sent == total && !shutDown && s.state != .synSent && s.state != .synReceived {
        s.shutdownWrite(now: now)
        shutDown = true
    }
    while s.readable > 0 {
        let n = s.read(into: chunk)
        receivedCRC.update(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
        received += n
    }
    tcp.settle(s, now: MonotonicClock.now(), host: host, sink: &loop.sink)
    if shutDown && s.atEndOfStream && (s.state == .timeWait || s.state == .closed) { break }
}
let allocations = allocationsAtStart.map { netmp_allocations() - $0 } ?? 0
let frames = host.counters.framesIn &+ host.counters.framesOut &- framesAtStart
let seconds = Double((MonotonicClock.now() - start).nanoseconds) / 1e9
let retransmitted = socket?.connection.segmentsRetransmitted ?? 0
let faults = loop.sink.faults
let drops = host.counters.drops
print("{\"outcome\":\"\(outcome)\",\"sent\":\(sent),\"sent_crc\":\(sentCRC.final),\"received\":\(received),"
      + "\"received_crc\":\(receivedCRC.final),\"seconds\":\(seconds),\"retransmitted\":\(retransmitted),"
      + "\"faults\":{\"dropped\":\(faults?.dropped ?? 0),\"duplicated\":\(faults?.duplicated ?? 0),"
      + "\"reordered\":\(faults?.reordered ?? 0),\"corrupted\":\(faults?.corrupted ?? 0)},"
      + "\"checksum_drops\":\(drops[.tcpBadChecksum] + drops[.ipv4BadChecksum]),\"source\":\"\(socket?.tuple.local.description ?? "")\","
      + "\"timeouts\":\(socket?.connection.timeouts ?? 0),\"recoveries\":\(socket?.connection.recoveries ?? 0),"
      + "\"spurious\":\(socket?.connection.spuriousRecoveries ?? 0),\"lost_retransmits\":\(socket?.connection.lostRetransmissions ?? 0),\"tail_loss_probes\":\(socket?.connection.tailLossProbes ?? 0),\"dupthresh\":\(socket?.connection.reorderingThreshold ?? 0),"
      + "\"cwnd\":\(socket?.connection.congestion.window ?? 0),\"srtt_us\":\((socket?.connection.rtt.smoothed ?? 0) / 1000),"
      + "\"allocations\":\(allocations),\"frames\":\(frames)}")
exit(outcome == "ok" ? 0 : 1)
