import Glibc
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire

/// A copy of another process's stats page, read through /proc/PID/fd.
public struct StatsSnapshot: Sendable {
    public struct CoreStats: Sendable {
        public var core: Int, cpu: Int, node: Int
        public var framesIn: UInt64, framesOut: UInt64, bytesIn: UInt64, bytesOut: UInt64
        public var messages: UInt64, forwarded: UInt64, connections: UInt64, neighbours: UInt64
        public var forwardOverflows: UInt64
        /// TCP super-frames (TSO/GRO: several MSS in one frame) received and sent; the frame
        /// counts above count the wire segments they stand for.
        public var superFramesIn: UInt64, superFramesOut: UInt64
        /// Frames sent to the stack's own address and received again, never on the TAP.
        public var looped: UInt64
        /// Fragmented packets put back together, and fragments sent.
        public var reassembled: UInt64 = 0, fragmentsOut: UInt64 = 0
        /// The groups the stack belongs to (as this core counts them), and the IGMP and MLD
        /// reports this core sent.
        public var groups: UInt64 = 0, igmpReportsOut: UInt64 = 0
        /// Frames whose TCP payload the core read straight into its connection's receive
        /// buffer, and frames read so in vain (another connection's, out of order, not a
        /// plain segment: copied once, as every frame was before).
        public var landed: UInt64 = 0, landingMisses: UInt64 = 0
        /// The TAP's TUNSETOFFLOAD flags in force, nil where no TAP was negotiated with.
        public var offloads: UInt32?
        /// How the TAP picks a frame's queue: "program" (netmp's steering program),
        /// "flow-table" (the kernel's: the program was refused, `steeringRefusal` says
        /// why) or "single-queue"; nil where no TAP was negotiated with.
        public var steering: String? = nil
        public var steeringRefusal: Int32 = 0
        /// (reason, count) for every drop reason, zero counts included.
        public var drops: [(reason: String, count: UInt64)]
    }
    public var pid: Int32
    public var address: IPv4Address
    public var prefixLength: Int
    public var mac: MACAddress
    public var cores: [CoreStats]
    public var connections: [ConnectionStats]
    /// Programs attached to this process, a stack service (none for a program's own stack).
    public var clients: [ClientStats] = []
    /// The IPv6 addresses (the link-local one first) and what duplicate address detection
    /// said of each: tentative, preferred or duplicate.
    public var ipv6Addresses: [(address: IPv6InterfaceAddress, state: String)] = []
    /// The listening and UDP sockets, with the client whose each is (`ss -lu -p`).
    public var sockets: [StatsPage.SocketRow] = []
    /// The attached programs' live processes, which a socket's holders bits name.
    public var processes: [ProcessStats] = []

    /// A process of an attached program: its client, its number there (its bit in a
    /// socket's holders), its pid and command (read from /proc when the snapshot is taken).
    public struct ProcessStats: Sendable, Equatable {
        public var client: UInt32, number: Int, pid: Int32
        public var command: String
    }

    /// A program attached to the stack service: its first process (and its command, read
    /// from /proc when the snapshot is taken), how many processes it has, its sockets, and
    /// the records it wrote that the stack could not take (faults).
    public struct ClientStats: Sendable {
        public var id: UInt32, pid: Int32, uid: UInt32, processes: Int, sockets: Int, faults: UInt64
        public var command: String
    }

    /// One connection as its owner core last published it.
    public struct ConnectionStats: Sendable {
        public var local: Endpoint, remote: Endpoint
        public var state: String
        public var core: Int
        public var sendQueue: UInt64, receiveQueue: UInt64, cwnd: UInt64, rttNanoseconds: UInt64, mss: UInt64
        /// The attached program's client number (0: the stack's own, or none).
        public var client: UInt32
        /// ssthresh in bytes: Int32.max and above is "infinite" (not yet set), which the
        /// table leaves out and the JSON gives as null, as ss and Linux do.
        public var rttVariationNanoseconds: UInt64 = 0, rtoNanoseconds: UInt64 = 0, ssthresh: UInt64 = 0
        public var retransmitted: UInt64 = 0
        /// Bytes per second acknowledged over the core's last listing interval (0.1 s).
        public var deliveryRate: UInt64 = 0
        public var congestionControl = ""
        /// Send and receive window scale shifts (nil: not negotiated).
        public var windowScales: (send: Int, receive: Int)? = nil
        public var bytesAcked: UInt64 = 0, bytesReceived: UInt64 = 0
        /// Which of the client's processes hold the socket (bit i: process number i).
        public var holders: UInt64 = 0
    }

    public enum ReadError: Error, CustomStringConvertible {
        case noProcess(Int32)
        case notRunningNetmp(Int32)
        case unreadable(Int32, String)
        public var description: String {
            switch self {
            case .noProcess(let p): "no process \(p) (or no permission to look at it)"
            case .notRunningNetmp(let p): "process \(p) is not running netmp (no stats page)"
            case .unreadable(let p, let why): "cannot read process \(p)'s stats page: \(why)"
            }
        }
    }

    /// PIDs of every process with a netmp stats page.
    public static func runningProcesses() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let pid = Int32(name), (try? statsDescriptor(of: pid)) != nil { pids.append(pid) }
        }
        return pids.sorted()
    }

    static func statsDescriptor(of pid: Int32) throws(ReadError) -> String {
        let fdDirectory = "/proc/\(pid)/fd"
        guard let dir = opendir(fdDirectory) else { throw .noProcess(pid) }
        defer { closedir(dir) }
        var target = [CChar](repeating: 0, count: 256)
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard Int(name) != nil else { continue }
            let path = fdDirectory + "/" + name
            let n = readlink(path, &target, target.count - 1)
            guard n > 0 else { continue }
            let link = String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if link.hasPrefix("/memfd:" + StatsLayout.memfdName) { return path }
        }
        throw .notRunningNetmp(pid)
    }

    public static func read(pid: Int32) throws(ReadError) -> StatsSnapshot {
        try read(path: try statsDescriptor(of: pid), pid: pid)
    }

    static func read(path: String, pid: Int32) throws(ReadError) -> StatsSnapshot {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(pid, String(cString: strerror(errno))) }
        defer { close(fd) }
        var header = [UInt64](repeating: 0, count: StatsLayout.headerWords)
        let h = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard h == StatsLayout.headerWords * 8, header[StatsLayout.Header.magic] == StatsLayout.magic else {
            throw .unreadable(pid, "the page is not complete yet")
        }
        guard header[StatsLayout.Header.version] == StatsLayout.version,
              header[StatsLayout.Header.drops] == UInt64(StatsLayout.dropWords) else {
            throw .unreadable(pid, "it was written by another version of netmp")
        }
        let coreCount = Int(min(header[StatsLayout.Header.cores], 4096))
        var words = [UInt64](repeating: 0, count: StatsLayout.size(cores: coreCount) / 8)
        let n = words.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n == words.count * 8 else { throw .unreadable(pid, "short read") }
        let names = DropCounters.names
        var cores = (0..<coreCount).map { c -> CoreStats in
            let b = StatsLayout.headerWords + c * StatsLayout.coreWords
            let w = { (i: Int) in words[b + i] }
            let drops = names.enumerated().map { ($1, words[b + StatsLayout.coreFixedWords + $0]) }
            typealias K = StatsLayout.Core
            return CoreStats(core: Int(w(K.index)), cpu: Int(w(K.cpu)), node: Int(w(K.node)),
                             framesIn: w(K.framesIn), framesOut: w(K.framesOut), bytesIn: w(K.bytesIn),
                             bytesOut: w(K.bytesOut), messages: w(K.messages), forwarded: w(K.forwarded),
                             connections: w(K.connections), neighbours: w(K.neighbours),
                             forwardOverflows: w(K.forwardOverflows), superFramesIn: w(K.superFramesIn),
                             superFramesOut: w(K.superFramesOut), looped: w(K.looped),
                             reassembled: w(K.reassembled), fragmentsOut: w(K.fragmentsOut),
                             groups: w(K.groups), igmpReportsOut: w(K.igmpReportsOut),
                             landed: w(K.landed), landingMisses: w(K.landingMisses),
                             offloads: w(K.offloads) & StatsLayout.offloadsNegotiated != 0
                                 ? UInt32(truncatingIfNeeded: w(K.offloads)) : nil,
                             drops: drops)
        }
        for c in cores.indices where cores[c].offloads != nil {
            let word = words[StatsLayout.headerWords + c * StatsLayout.coreWords + StatsLayout.Core.offloads]
            let refusal = Int32(truncatingIfNeeded: word >> StatsLayout.steeringRefusalShift & 0xFFFF)
            cores[c].steering = word & StatsLayout.steeringByProgram != 0 ? "program" : refusal != 0 ? "flow-table" : "single-queue"
            cores[c].steeringRefusal = refusal
        }
        var connections: [ConnectionStats] = []
        let states = TCPState.allCases
        let algorithms = CongestionAlgorithm.allCases
        for c in 0..<coreCount {
            let area = StatsLayout.connectionArea(core: c, cores: coreCount)
            let rows = Int(min(words[area], UInt64(StatsLayout.connectionSlots)))
            for row in 0..<rows {
                let r = area + 1 + row * StatsLayout.connectionWords
                typealias K = StatsLayout.Connection
                func endpoint(_ port: Int, _ high: Int, _ low: Int) -> Endpoint {
                    Endpoint(IPAddress(IPv6Address(high: words[r + high], low: words[r + low])),
                             UInt16(truncatingIfNeeded: words[r + port]))
                }
                let stateIndex = Int(min(words[r + K.state], UInt64(states.count - 1)))
                var row = ConnectionStats(local: endpoint(K.local, K.localHigh, K.localLow),
                                          remote: endpoint(K.remote, K.remoteHigh, K.remoteLow),
                                          state: states[stateIndex].rawValue, core: c,
                                          sendQueue: words[r + K.sendQueue], receiveQueue: words[r + K.receiveQueue],
                                          cwnd: words[r + K.cwnd], rttNanoseconds: words[r + K.rtt], mss: words[r + K.mss],
                                          client: UInt32(truncatingIfNeeded: words[r + K.client]))
                row.rttVariationNanoseconds = words[r + K.rttVariation]
                row.rtoNanoseconds = words[r + K.rto]
                row.ssthresh = words[r + K.ssthresh]
                row.retransmitted = words[r + K.retransmitted]
                row.deliveryRate = words[r + K.deliveryRate]
                row.congestionControl = algorithms[Int(min(words[r + K.algorithm], UInt64(algorithms.count - 1)))].rawValue
                let scales = words[r + K.windowScales]
                row.windowScales = scales == 0xFFFF ? nil : (Int(scales & 0xFF), Int(scales >> 8 & 0xFF))
                row.bytesAcked = words[r + K.bytesAcked]
                row.bytesReceived = words[r + K.bytesReceived]
                row.holders = words[r + K.holders]
                connections.append(row)
            }
        }
        var clients: [ClientStats] = []
        let clientArea = StatsLayout.clientArea(cores: coreCount)
        for row in 0..<Int(min(words[clientArea], UInt64(StatsLayout.clientSlots))) {
            let r = clientArea + 1 + row * StatsLayout.clientWords
            typealias K = StatsLayout.Client
            let clientPID = Int32(bitPattern: UInt32(truncatingIfNeeded: words[r + K.pid]))
            clients.append(ClientStats(id: UInt32(truncatingIfNeeded: words[r + K.id]), pid: clientPID,
                                       uid: UInt32(truncatingIfNeeded: words[r + K.uid]),
                                       processes: Int(min(words[r + K.processes], 64)), sockets: Int(min(words[r + K.sockets], 1 << 32)),
                                       faults: words[r + K.faults],
                                       command: command(of: clientPID)))
        }
        var addresses: [(address: IPv6InterfaceAddress, state: String)] = []
        let addressArea = StatsLayout.addressArea(cores: coreCount)
        for row in 0..<Int(min(words[addressArea], UInt64(StatsLayout.addressSlots))) {
            let r = addressArea + 1 + row * StatsLayout.addressWords
            typealias K = StatsLayout.Address
            let state = StatsLayout.addressStates[Int(min(words[r + K.state], UInt64(StatsLayout.addressStates.count - 1)))]
            addresses.append((IPv6InterfaceAddress(IPv6Address(high: words[r + K.high], low: words[r + K.low]),
                                                   prefixLength: Int(min(words[r + K.prefix], 128))), state))
        }
        var sockets: [StatsPage.SocketRow] = []
        let socketArea = StatsLayout.socketArea(cores: coreCount)
        for row in 0..<Int(min(words[socketArea], UInt64(StatsLayout.socketSlots))) {
            let r = socketArea + 1 + row * StatsLayout.socketWords
            typealias K = StatsLayout.Socket
            let bound = IPv6Address(high: words[r + K.boundHigh], low: words[r + K.boundLow])
            sockets.append(StatsPage.SocketRow(udp: words[r + K.kind] == 1, port: UInt16(truncatingIfNeeded: words[r + K.port]),
                                               families: AddressFamilies(rawValue: UInt8(truncatingIfNeeded: words[r + K.families]) & 3),
                                               client: UInt32(truncatingIfNeeded: words[r + K.client]),
                                               backlog: Int(min(words[r + K.backlog], 1 << 20)),
                                               bound: bound.isUnspecified ? nil : IPAddress(bound),
                                               holders: words[r + K.holders]))
        }
        var processes: [ProcessStats] = []
        let processArea = StatsLayout.processArea(cores: coreCount)
        for row in 0..<Int(min(words[processArea], UInt64(StatsLayout.processSlots))) {
            let r = processArea + 1 + row * StatsLayout.processWords
            typealias K = StatsLayout.Process
            let processPID = Int32(bitPattern: UInt32(truncatingIfNeeded: words[r + K.pid]))
            processes.append(ProcessStats(client: UInt32(truncatingIfNeeded: words[r + K.client]),
                                          number: Int(min(words[r + K.number], 64)), pid: processPID,
                                          command: command(of: processPID)))
        }
        return StatsSnapshot(pid: pid, address: IPv4Address(UInt32(truncatingIfNeeded: header[StatsLayout.Header.address])),
                             prefixLength: Int(header[StatsLayout.Header.prefix]),
                             mac: MACAddress(value: header[StatsLayout.Header.mac]), cores: cores,
                             connections: connections, clients: clients, ipv6Addresses: addresses, sockets: sockets,
                             processes: processes)
    }

    /// {"pid", "connections": [...]}: `netmp stat --connections --json`.
    public var connectionsJSON: String { "{\"pid\":\(pid),\"connections\":[\(connectionArrayJSON)]}" }

    /// The connections as JSON objects, comma-separated.
    var connectionArrayJSON: String {
        connections.map { c in
            "{\"local\":\"\(c.local)\",\"remote\":\"\(c.remote)\",\"state\":\"\(c.state)\",\"core\":\(c.core),"
                + "\"send_queue\":\(c.sendQueue),\"receive_queue\":\(c.receiveQueue),\"cwnd\":\(c.cwnd),"
                + "\"rtt_us\":\(c.rttNanoseconds / 1000),\"rttvar_us\":\(c.rttVariationNanoseconds / 1000),"
                + "\"rto_us\":\(c.rtoNanoseconds / 1000),\"mss\":\(c.mss),\"ssthresh\":\(c.ssthresh < UInt64(Int32.max) ? String(c.ssthresh) : "null"),"
                + "\"retransmitted\":\(c.retransmitted),\"delivery_rate\":\(c.deliveryRate),"
                + "\"congestion_control\":\"\(c.congestionControl)\","
                + "\"wscale\":\(c.windowScales.map { "[\($0.send),\($0.receive)]" } ?? "null"),"
                + "\"bytes_acked\":\(c.bytesAcked),\"bytes_received\":\(c.bytesReceived),\"client\":\(c.client),"
                + "\"holders\":\(holdersJSON(of: c.client, c.holders))}"
        }.joined(separator: ",")
    }

    /// One JSON object: {"pid", "address", "mac", "cores": [{"core", "node", "frames_in", ...,
    /// "drops": {reason: count}}], "connections": [{"local", "remote", "state", "core", ...}]}.
    public var json: String {
        let coreObjects = cores.map { c in
            let drops = c.drops.map { "\"\($0.reason)\":\($0.count)" }.joined(separator: ",")
            return "{\"core\":\(c.core),\"cpu\":\(c.cpu),\"node\":\(c.node),\"frames_in\":\(c.framesIn),"
                + "\"frames_out\":\(c.framesOut),\"bytes_in\":\(c.bytesIn),\"bytes_out\":\(c.bytesOut),"
                + "\"messages\":\(c.messages),\"forwarded\":\(c.forwarded),\"connections\":\(c.connections),"
                + "\"neighbours\":\(c.neighbours),\"forward_overflows\":\(c.forwardOverflows),"
                + "\"super_frames_in\":\(c.superFramesIn),\"super_frames_out\":\(c.superFramesOut),"
                + "\"looped\":\(c.looped),\"reassembled\":\(c.reassembled),\"fragments_out\":\(c.fragmentsOut),"
                + "\"groups\":\(c.groups),\"igmp_reports_out\":\(c.igmpReportsOut),"
                + "\"landed\":\(c.landed),\"landing_misses\":\(c.landingMisses),"
                + "\"offloads\":\(c.offloads.map { "\"\(offloadNames($0))\"" } ?? "null"),"
                + "\"steering\":\(c.steering.map { "\"\($0)\"" } ?? "null"),\"drops\":{\(drops)}}"
        }.joined(separator: ",")
        let connectionObjects = connectionArrayJSON
        let clientObjects = clients.map { c in
            "{\"client\":\(c.id),\"pid\":\(c.pid),\"uid\":\(c.uid),\"processes\":\(c.processes),\"sockets\":\(c.sockets),"
                + "\"faults\":\(c.faults),"
                + "\"pids\":[\(processes.filter { $0.client == c.id }.map { String($0.pid) }.joined(separator: ","))],"
                + "\"command\":\(jsonString(c.command))}"
        }.joined(separator: ",")
        let addressObjects = ipv6Addresses.map { "{\"address\":\"\($0.address)\",\"state\":\"\($0.state)\"}" }
            .joined(separator: ",")
        let socketObjects = sockets.map { s in
            "{\"kind\":\"\(s.udp ? "udp" : "listen")\",\"local\":\"\(socketName(s))\",\"port\":\(s.port),"
                + (s.udp ? "" : "\"backlog\":\(s.backlog),") + "\"client\":\(s.client),"
                + "\"holders\":\(holdersJSON(of: s.client, s.holders))}"
        }.joined(separator: ",")
        return "{\"pid\":\(pid),\"address\":\"\(address)/\(prefixLength)\",\"mac\":\"\(mac)\","
            + "\"ipv6\":[\(addressObjects)],"
            + "\"cores\":[\(coreObjects)],\"connections\":[\(connectionObjects)],\"sockets\":[\(socketObjects)],"
            + "\"clients\":[\(clientObjects)]}"
    }

    /// A listening or UDP socket's local address as `ss` writes it: the bound address, or
    /// the wildcard of the families it takes (`*` for both).
    func socketName(_ socket: StatsPage.SocketRow) -> String {
        if let bound = socket.bound { return Endpoint(bound, socket.port).description }
        let wildcard = socket.families == .both ? "*" : socket.families == .ipv6 ? "[::]" : "0.0.0.0"
        return "\(wildcard):\(socket.port)"
    }

    /// The processes of `client` that `holders` names (bit i: process number i).
    public func holding(of client: UInt32, _ holders: UInt64) -> [ProcessStats] {
        guard client != 0, holders != 0 else { return [] }
        return processes.filter { $0.client == client && $0.number < 64 && holders & (1 << UInt64($0.number)) != 0 }
    }

    /// Who holds a socket, as `ss -p` says it: each process holding it as pid/command
    /// ("1201/nginx,1202/nginx"); the attached program's first pid and command where no
    /// process is named (a socket being set up or handed over); "-" for the stack's own,
    /// or a program gone since.
    func program(of client: UInt32, _ holders: UInt64) -> String {
        let named = holding(of: client, holders)
        if !named.isEmpty { return named.map { "\($0.pid)/\($0.command)" }.joined(separator: ",") }
        guard client != 0, let row = clients.first(where: { $0.id == client }) else { return "-" }
        return "\(row.pid)/\(row.command)"
    }

    /// [{"pid", "command"}] of the processes holding a socket.
    func holdersJSON(of client: UInt32, _ holders: UInt64) -> String {
        "[" + holding(of: client, holders).map { "{\"pid\":\($0.pid),\"command\":\(jsonString($0.command))}" }
            .joined(separator: ",") + "]"
    }

    /// Each connection as `ss -tin` shows it: a line of state, addresses, queues, owner
    /// core and program, and a line of its TCP detail.
    public var connectionsText: String {
        guard !connections.isEmpty else { return "netmp process \(pid): no TCP connections\n" }
        var lines = ["netmp process \(pid): \(connections.count) TCP connection\(connections.count == 1 ? "" : "s")",
                     "state         recv-q    send-q    local                  remote                 core  program"]
        for c in connections {
            lines.append("\(c.state.padding(13)) \(pad(c.receiveQueue, 8))  \(pad(c.sendQueue, 8))  "
                         + "\(c.local.description.padding(22)) \(c.remote.description.padding(22)) \(pad(c.core, 4))  \(program(of: c.client, c.holders))")
            let mss = max(c.mss, 1)
            var detail = "\t \(c.congestionControl)"
            if let scales = c.windowScales { detail += " wscale:\(scales.send),\(scales.receive)" }
            detail += " rto:\(milliseconds(c.rtoNanoseconds)) rtt:\(milliseconds(c.rttNanoseconds))/\(milliseconds(c.rttVariationNanoseconds))"
            detail += " mss:\(c.mss) cwnd:\(c.cwnd / mss)"
            if c.ssthresh < UInt64(Int32.max) { detail += " ssthresh:\(c.ssthresh / mss)" }
            detail += " bytes_acked:\(c.bytesAcked) bytes_received:\(c.bytesReceived)"
            detail += " retrans:\(c.retransmitted) delivery_rate:\(bitRate(c.deliveryRate))"
            lines.append(detail)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Nanoseconds as ss prints times: milliseconds with up to three decimals.
    func milliseconds(_ nanoseconds: UInt64) -> String {
        let micro = nanoseconds / 1000
        var text = "\(micro / 1000)"
        let fraction = micro % 1000
        if fraction != 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: 3 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text
    }

    /// Bytes per second as ss prints rates: bits per second with a unit.
    func bitRate(_ bytesPerSecond: UInt64) -> String {
        let bits = Double(bytesPerSecond) * 8
        for (unit, scale) in [("Gbps", 1e9), ("Mbps", 1e6), ("Kbps", 1e3)] where bits >= scale {
            let tenths = Int((bits / scale * 10).rounded())
            return "\(tenths / 10).\(tenths % 10)\(unit)"
        }
        return "\(Int(bits))bps"
    }

    /// A table for people.
    public var text: String {
        var lines = ["netmp process \(pid): \(address)/\(prefixLength) at \(mac)"]
        if !ipv6Addresses.isEmpty {
            lines.append("ipv6: " + ipv6Addresses.map { "\($0.address) \($0.state)" }.joined(separator: ", "))
        }
        lines += [
                     "core  cpu  node  frames-in  frames-out  bytes-in  bytes-out  messages  forwarded  conns  neighbours  dropped"]
        for c in cores {
            let dropped = c.drops.reduce(0) { $0 &+ $1.count }
            lines.append("\(pad(c.core, 4))  \(pad(c.cpu, 3))  \(pad(c.node, 4))  \(pad(c.framesIn, 9))  "
                         + "\(pad(c.framesOut, 10))  \(pad(c.bytesIn, 8))  \(pad(c.bytesOut, 9))  "
                         + "\(pad(c.messages, 8))  \(pad(c.forwarded, 9))  \(pad(c.connections, 5))  "
                         + "\(pad(c.neighbours, 10))  \(pad(dropped, 7))")
        }
        if let flags = cores.first?.offloads {
            let inSuper = cores.reduce(0) { $0 &+ $1.superFramesIn }, outSuper = cores.reduce(0) { $0 &+ $1.superFramesOut }
            lines.append("TAP offloads: \(offloadNames(flags)); super-frames in \(inSuper), out \(outSuper)")
            switch cores.first?.steering {
            case "program": lines.append("TAP steering: netmp's hash (eBPF program): each flow's frames arrive on its owner's queue")
            case "flow-table":
                let reason = String(cString: strerror(cores.first?.steeringRefusal ?? 0))
                lines.append("TAP steering: the kernel's flow table (the eBPF program was refused: \(reason)); misses are forwarded")
            default: break
            }
        }
        let looped = cores.reduce(0) { $0 &+ $1.looped }
        if looped > 0 { lines.append("frames to the stack's own address (looped, not on the TAP): \(looped)") }
        let reassembled = cores.reduce(0) { $0 &+ $1.reassembled }, fragmentsOut = cores.reduce(0) { $0 &+ $1.fragmentsOut }
        if reassembled > 0 || fragmentsOut > 0 {
            lines.append("IP fragments: packets reassembled \(reassembled), fragments sent \(fragmentsOut)")
        }
        let groups = cores.map(\.groups).max() ?? 0, reports = cores.reduce(0) { $0 &+ $1.igmpReportsOut }
        if groups > 0 || reports > 0 { lines.append("multicast: groups joined \(groups), IGMP and MLD reports sent \(reports)") }
        let landed = cores.reduce(0) { $0 &+ $1.landed }, misses = cores.reduce(0) { $0 &+ $1.landingMisses }
        if landed > 0 || misses > 0 {
            lines.append("TCP payloads read straight into their receive buffer: \(landed); read there in vain and copied: \(misses)")
        }
        let forwarded = cores.reduce(0) { $0 &+ $1.forwarded }, arrived = cores.reduce(0) { $0 &+ $1.framesIn }
        if arrived > 0 {
            lines.append("frames forwarded to their owner core: \(forwarded) of \(arrived) "
                         + "(\(forwarded * 1000 / arrived / 10).\(forwarded * 1000 / arrived % 10)%)")
        }
        if !connections.isEmpty {
            lines.append("local                  remote                 state         core  send-q    recv-q    cwnd      rtt-us  program")
            for c in connections {
                lines.append("\(c.local.description.padding(22)) \(c.remote.description.padding(22)) \(c.state.padding(13)) "
                             + "\(pad(c.core, 4))  \(pad(c.sendQueue, 8))  \(pad(c.receiveQueue, 8))  "
                             + "\(pad(c.cwnd, 8))  \(pad(c.rttNanoseconds / 1000, 6))  \(program(of: c.client, c.holders))")
            }
        }
        if !sockets.isEmpty {
            lines.append("listening and UDP sockets:")
            lines.append("kind    local                  backlog  program")
            for s in sockets {
                lines.append("\((s.udp ? "udp" : "listen").padding(6))  \(socketName(s).padding(22)) "
                             + "\((s.udp ? "-" : String(s.backlog)).padding(7))  \(program(of: s.client, s.holders))")
            }
        }
        if !clients.isEmpty {
            lines.append("attached programs:")
            lines.append("client  pid       uid     processes  sockets  faults  command")
            for c in clients {
                lines.append("\(pad(c.id, 6))  \(String(c.pid).padding(8))  \(String(c.uid).padding(6))  "
                             + "\(pad(c.processes, 9))  \(pad(c.sockets, 7))  \(pad(c.faults, 6))  \(c.command)")
            }
        }
        var totals: [String: UInt64] = [:]
        for c in cores { for d in c.drops where d.count > 0 { totals[d.reason, default: 0] &+= d.count } }
        if !totals.isEmpty {
            lines.append("drops by reason:")
            for (reason, count) in totals.sorted(by: { $0.key < $1.key }) { lines.append("  \(reason): \(count)") }
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

private func pad(_ value: some BinaryInteger, _ width: Int) -> String {
    let s = String(value)
    return String(repeating: " ", count: max(0, width - s.count)) + s
}

/// The command of process `pid` (/proc/PID/comm), "?" when it is gone.
func command(of pid: Int32) -> String {
    guard let text = procFile("/proc/\(pid)/comm", limit: 64), !text.isEmpty else { return "?" }
    return String(text.prefix { $0 != "\n" })
}

/// TUNSETOFFLOAD flags in words: "csum tso4 tso6", or what was refused.
func offloadNames(_ flags: UInt32) -> String {
    let names = [(UInt32(0x01), "csum"), (0x02, "tso4"), (0x04, "tso6")].filter { flags & $0.0 != 0 }.map(\.1)
    return names.isEmpty ? "none (the TAP refused checksum offload)" : names.joined(separator: " ")
        + (flags & 0x02 == 0 ? " (the TAP refused TSO)" : "")
}
