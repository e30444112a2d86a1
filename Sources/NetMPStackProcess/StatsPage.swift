import CNetMPLinux
import Glibc
import Synchronization
import NetMPStack
import NetMPTCP
import NetMPWire

/// A process's counters in one shared page, for `netmp stat PID`. The page is a memfd, so
/// it needs no file name, cannot be left behind, and goes away with the process; the tool
/// finds it through /proc/PID/fd. Protocol threads store counters with plain aligned 64-bit
/// stores after each batch: nothing on the hot path but those stores. A reader may see one
/// core's counters from two moments; it never sees a torn value.
public enum StatsLayout {
    public static let magic: UInt64 = 0x4E45_544D_5053_5431 // "NETMPST1"
    public static let version: UInt64 = 17
    public static let memfdName = "netmp-stats"
    public static let headerWords = 8
    /// Per core: index, cpu, node, frames in/out, bytes in/out, messages, forwarded,
    /// connections, neighbours, forward overflows, super-frames in/out, the TAP's offloads,
    /// frames looped to our own address, fragments, groups, frames whose payload was stored
    /// where it landed and frames that landed in vain, then one word per drop reason.
    public static let coreFixedWords = 22
    public static var dropWords: Int { DropCounters.names.count }
    public static var coreWords: Int { coreFixedWords + dropWords }
    /// After the core blocks, each core's connection table: a count, then up to
    /// `connectionSlots` rows (more connections than that are counted, not listed).
    public static let connectionSlots = 256
    public static let connectionWords = 23
    public static var connectionAreaWords: Int { 1 + connectionSlots * connectionWords }
    public static func connectionArea(core: Int, cores: Int) -> Int {
        headerWords + cores * coreWords + core * connectionAreaWords
    }
    /// After the connection tables, the stack service's clients: a count, then up to
    /// `clientSlots` rows (id, first pid, uid, processes, sockets named, faults: records
    /// the stack could not take).
    public static let clientSlots = 64
    public static let clientWords = 6
    public static func clientArea(cores: Int) -> Int { headerWords + cores * (coreWords + connectionAreaWords) }
    public enum Client { public static let id = 0, pid = 1, uid = 2, processes = 3, sockets = 4, faults = 5 }
    /// After the clients, the IPv6 addresses as core 0 sees them: a count, then up to
    /// `addressSlots` rows (the address's two halves, its prefix length, its state).
    public static let addressSlots = 16
    public static let addressWords = 4
    public static func addressArea(cores: Int) -> Int { clientArea(cores: cores) + 1 + clientSlots * clientWords }
    public enum Address { public static let high = 0, low = 1, prefix = 2, state = 3 }
    /// The address states, by their number in the state word.
    public static let addressStates = ["tentative", "preferred", "duplicate"]
    /// After the addresses, the listening and UDP sockets as core 0 holds them (every core
    /// holds the same ones): a count, then up to `socketSlots` rows (kind: 0 a TCP
    /// listener, 1 a UDP socket; port; the families whose peers it takes; the client whose
    /// socket it is; a listener's backlog; a UDP socket's bound address in halves, :: for
    /// none).
    public static let socketSlots = 128
    /// The last word of a row: which of the client's processes hold the socket (bit i:
    /// process number i, as the client's socket table says).
    public static let socketWords = 8
    public static func socketArea(cores: Int) -> Int { addressArea(cores: cores) + 1 + addressSlots * addressWords }
    public enum Socket { public static let kind = 0, port = 1, families = 2, client = 3, backlog = 4, boundHigh = 5, boundLow = 6,
                         holders = 7 }
    /// After the sockets, the clients' processes, which name the holders bits: a count,
    /// then up to `processSlots` rows (client, process number, pid).
    public static let processSlots = 512
    public static let processWords = 3
    public static func processArea(cores: Int) -> Int { socketArea(cores: cores) + 1 + socketSlots * socketWords }
    public enum Process { public static let client = 0, number = 1, pid = 2 }
    public static func size(cores: Int) -> Int { (processArea(cores: cores) + 1 + processSlots * processWords) * 8 }
    /// A connection row: local and remote ports, state (index in TCPState.allCases), send
    /// queue, receive queue (unread), cwnd, smoothed RTT (ns), MSS, the client whose socket
    /// it is (0: none), the local and remote addresses (IPv6, IPv4 mapped) in halves; then
    /// what `ss -tin` shows: RTT variation and RTO (ns), ssthresh (bytes), segments
    /// retransmitted, the delivery rate (bytes/s over the last listing interval), the
    /// congestion control (index in CongestionAlgorithm.allCases), the window scales (send
    /// | receive << 8; 0xFFFF: none), bytes acknowledged and bytes received; which of the
    /// client's processes hold the socket (bit i: process number i).
    public enum Connection { public static let local = 0, remote = 1, state = 2, sendQueue = 3, receiveQueue = 4,
                             cwnd = 5, rtt = 6, mss = 7, client = 8, localHigh = 9, localLow = 10,
                             remoteHigh = 11, remoteLow = 12, rttVariation = 13, rto = 14, ssthresh = 15,
                             retransmitted = 16, deliveryRate = 17, algorithm = 18, windowScales = 19,
                             bytesAcked = 20, bytesReceived = 21, holders = 22 }

    public enum Header { public static let magic = 0, version = 1, pid = 2, cores = 3, drops = 4, address = 5, mac = 6, prefix = 7 }
    public enum Core { public static let index = 0, cpu = 1, node = 2, framesIn = 3, framesOut = 4, bytesIn = 5,
                       bytesOut = 6, messages = 7, forwarded = 8, connections = 9, neighbours = 10,
                       forwardOverflows = 11, superFramesIn = 12, superFramesOut = 13, offloads = 14,
                       looped = 15, reassembled = 16, fragmentsOut = 17,
                       groups = 18, igmpReportsOut = 19, landed = 20, landingMisses = 21 }
    /// The offloads word: TUNSETOFFLOAD's flags the TAP accepted, with this bit set once
    /// they were negotiated (a stack on test queues has no TAP and leaves the word 0).
    public static let offloadsNegotiated: UInt64 = 1 << 32
    /// In the same word: the TAP picks queues with netmp's steering program, or (the
    /// errno at this shift) the program was refused and the TAP's flow table picks them.
    public static let steeringByProgram: UInt64 = 1 << 33
    public static let steeringRefusalShift: UInt64 = 40
}

public final class StatsPage: @unchecked Sendable {
    let words: UnsafeMutablePointer<UInt64>
    let cores: Int
    let fd: Int32

    /// Creates the page; nil (and netmp runs without `netmp stat`) if memfd or mmap fail.
    public init?(cores: Int, configuration: StackConfiguration, offloads: UInt32? = nil, steering: UInt64 = 0) {
        let size = StatsLayout.size(cores: cores)
        let fd = netmp_memfd(StatsLayout.memfdName)
        guard fd >= 0 else { return nil }
        guard ftruncate(fd, off_t(size)) == 0,
              let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            close(fd); return nil
        }
        self.fd = fd
        self.cores = cores
        words = mapped.bindMemory(to: UInt64.self, capacity: size / 8)
        words[StatsLayout.Header.version] = StatsLayout.version
        words[StatsLayout.Header.pid] = UInt64(getpid())
        words[StatsLayout.Header.cores] = UInt64(cores)
        words[StatsLayout.Header.drops] = UInt64(StatsLayout.dropWords)
        words[StatsLayout.Header.address] = UInt64(configuration.address.value)
        words[StatsLayout.Header.mac] = configuration.mac.value
        words[StatsLayout.Header.prefix] = UInt64(configuration.prefixLength)
        if let offloads {
            for core in 0..<cores {
                words[StatsLayout.headerWords + core * StatsLayout.coreWords + StatsLayout.Core.offloads] =
                    StatsLayout.offloadsNegotiated | UInt64(offloads) | steering
            }
        }
        // The magic last: a reader that sees it sees a complete header.
        words[StatsLayout.Header.magic] = StatsLayout.magic
    }

    /// Describes core slot `core`: which CPU it is pinned to and its memory node.
    public func describe(core: Int, cpu: Int, node: Int) {
        let base = StatsLayout.headerWords + core * StatsLayout.coreWords
        words[base + StatsLayout.Core.index] = UInt64(core)
        words[base + StatsLayout.Core.cpu] = UInt64(cpu)
        words[base + StatsLayout.Core.node] = UInt64(node)
    }

    /// Publishes one core's runtime counters.
    public func publish(core: Int, messages: UInt64, forwarded: UInt64, forwardOverflows: UInt64, connections: Int,
                        landed: UInt64 = 0, landingMisses: UInt64 = 0) {
        let base = StatsLayout.headerWords + core * StatsLayout.coreWords
        words[base + StatsLayout.Core.landed] = landed
        words[base + StatsLayout.Core.landingMisses] = landingMisses
        words[base + StatsLayout.Core.messages] = messages
        words[base + StatsLayout.Core.forwarded] = forwarded
        words[base + StatsLayout.Core.forwardOverflows] = forwardOverflows
        words[base + StatsLayout.Core.connections] = UInt64(connections)
    }

    /// Publishes the IPv6 addresses and their detection states (rows first, then the count).
    /// Unlike the counters, these words are also read in this process (by the thread that
    /// waits for duplicate address detection), so they are stored and loaded atomically:
    /// rows relaxed, the count last with release, read first with acquire.
    public func publishAddresses(_ table: IPv6AddressTable) {
        let area = StatsLayout.addressArea(cores: cores)
        let entries = table.entries.prefix(StatsLayout.addressSlots)
        for (row, entry) in entries.enumerated() {
            let r = area + 1 + row * StatsLayout.addressWords
            typealias K = StatsLayout.Address
            shared(r + K.high).pointee.store(entry.address.high, ordering: .relaxed)
            shared(r + K.low).pointee.store(entry.address.low, ordering: .relaxed)
            shared(r + K.prefix).pointee.store(UInt64(entry.assigned.prefixLength), ordering: .relaxed)
            let state: UInt64 = switch entry.state { case .tentative: 0; case .preferred: 1; case .duplicate: 2 }
            shared(r + K.state).pointee.store(state, ordering: .relaxed)
        }
        shared(area).pointee.store(UInt64(entries.count), ordering: .releasing)
    }

    /// The IPv6 addresses as last published, with their states (nil before the first time).
    public var publishedAddresses: [(address: IPv6Address, state: String)]? {
        let area = StatsLayout.addressArea(cores: cores)
        let count = Int(min(shared(area).pointee.load(ordering: .acquiring), UInt64(StatsLayout.addressSlots)))
        guard count > 0 else { return nil }
        return (0..<count).map { row in
            let r = area + 1 + row * StatsLayout.addressWords
            typealias K = StatsLayout.Address
            let stateWord = shared(r + K.state).pointee.load(ordering: .relaxed)
            let state = StatsLayout.addressStates[Int(min(stateWord, UInt64(StatsLayout.addressStates.count - 1)))]
            return (IPv6Address(high: shared(r + K.high).pointee.load(ordering: .relaxed),
                                low: shared(r + K.low).pointee.load(ordering: .relaxed)), state)
        }
    }

    /// Word `index` of the page as an atomic, for the words read in this process too.
    private func shared(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        UnsafeMutableRawPointer(words + index).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Publishes the connections one core owns (rows first, then the count).
    /// `holders`: which processes of its client hold a socket (0: none known).
    public func publishConnections(core: Int, _ sockets: some Sequence<TCPSocket>, now: Instant,
                                   holders: (TCPSocket) -> UInt64 = { _ in 0 }) {
        let area = StatsLayout.connectionArea(core: core, cores: cores)
        var row = 0
        let states = TCPState.allCases
        let algorithms = CongestionAlgorithm.allCases
        for socket in sockets where row < StatsLayout.connectionSlots {
            let c = socket.connection
            let r = area + 1 + row * StatsLayout.connectionWords
            typealias K = StatsLayout.Connection
            words[r + K.local] = UInt64(c.tuple.local.port)
            words[r + K.remote] = UInt64(c.tuple.remote.port)
            words[r + K.localHigh] = c.tuple.local.address.bits.high
            words[r + K.localLow] = c.tuple.local.address.bits.low
            words[r + K.remoteHigh] = c.tuple.remote.address.bits.high
            words[r + K.remoteLow] = c.tuple.remote.address.bits.low
            words[r + K.state] = UInt64(states.firstIndex(of: c.state) ?? 0)
            words[r + K.sendQueue] = UInt64(c.sendQueued)
            words[r + K.receiveQueue] = UInt64(c.unread)
            words[r + K.cwnd] = UInt64(c.congestion.window)
            words[r + K.rtt] = c.rtt.smoothed ?? 0
            words[r + K.mss] = UInt64(c.sendMSS)
            words[r + K.client] = UInt64(socket.client)
            let info = c.info
            words[r + K.rttVariation] = c.rtt.variation
            words[r + K.rto] = c.rtt.timeout.nanoseconds
            words[r + K.ssthresh] = UInt64(max(0, c.congestion.slowStartThreshold))
            words[r + K.retransmitted] = c.segmentsRetransmitted
            let elapsed = (now - socket.listedAt).nanoseconds
            let acknowledged = c.bytesAcknowledged
            if socket.listedAt != .zero && elapsed > 0 {
                words[r + K.deliveryRate] = UInt64(Double(acknowledged &- socket.listedAcknowledged) * 1e9 / Double(elapsed))
            } else {
                words[r + K.deliveryRate] = 0
            }
            socket.listedAcknowledged = acknowledged
            socket.listedAt = now
            words[r + K.algorithm] = UInt64(algorithms.firstIndex(of: c.congestion.algorithm) ?? 0)
            words[r + K.windowScales] = info.options & TCPInfo.optionWindowScale != 0
                ? UInt64(info.sendWindowScale) | UInt64(info.receiveWindowScale) << 8 : 0xFFFF
            words[r + K.bytesAcked] = acknowledged
            words[r + K.bytesReceived] = c.bytesReceived
            words[r + K.holders] = holders(socket)
            row += 1
        }
        words[area] = UInt64(row)
    }

    /// The stack service's clients and each one's processes by number (rows first, then
    /// the counts).
    public func publishClients(_ clients: [(id: UInt32, pid: Int32, uid: UInt32, processes: Int, sockets: Int, faults: UInt64)],
                               processes: [(client: UInt32, number: UInt32, pid: Int32)] = []) {
        let processArea = StatsLayout.processArea(cores: cores)
        var processRow = 0
        for process in processes where processRow < StatsLayout.processSlots {
            let r = processArea + 1 + processRow * StatsLayout.processWords
            typealias P = StatsLayout.Process
            words[r + P.client] = UInt64(process.client)
            words[r + P.number] = UInt64(process.number)
            words[r + P.pid] = UInt64(UInt32(bitPattern: process.pid))
            processRow += 1
        }
        words[processArea] = UInt64(processRow)
        let area = StatsLayout.clientArea(cores: cores)
        var row = 0
        for client in clients where row < StatsLayout.clientSlots {
            let r = area + 1 + row * StatsLayout.clientWords
            typealias K = StatsLayout.Client
            words[r + K.id] = UInt64(client.id)
            words[r + K.pid] = UInt64(UInt32(bitPattern: client.pid))
            words[r + K.uid] = UInt64(client.uid)
            words[r + K.processes] = UInt64(client.processes)
            words[r + K.sockets] = UInt64(client.sockets)
            words[r + K.faults] = client.faults
            row += 1
        }
        words[area] = UInt64(row)
    }

    /// A listening or UDP socket, as `netmp stat` lists it.
    public struct SocketRow: Sendable, Equatable {
        public var udp: Bool, port: UInt16, families: AddressFamilies, client: UInt32, backlog: Int, bound: IPAddress?
        /// Which of the client's processes hold the socket (bit i: process number i).
        public var holders: UInt64
        public init(udp: Bool, port: UInt16, families: AddressFamilies, client: UInt32, backlog: Int = 0, bound: IPAddress? = nil,
                    holders: UInt64 = 0) {
            self.udp = udp; self.port = port; self.families = families; self.client = client; self.backlog = backlog; self.bound = bound
            self.holders = holders
        }
    }

    /// The listening and UDP sockets (core 0's; rows first, then the count).
    public func publishSockets(_ sockets: [SocketRow]) {
        let area = StatsLayout.socketArea(cores: cores)
        var row = 0
        for socket in sockets where row < StatsLayout.socketSlots {
            let r = area + 1 + row * StatsLayout.socketWords
            typealias K = StatsLayout.Socket
            words[r + K.kind] = socket.udp ? 1 : 0
            words[r + K.port] = UInt64(socket.port)
            words[r + K.families] = UInt64(socket.families.rawValue)
            words[r + K.client] = UInt64(socket.client)
            words[r + K.backlog] = UInt64(socket.backlog)
            let bound = socket.bound?.bits ?? IPv6Address.any
            words[r + K.boundHigh] = bound.high
            words[r + K.boundLow] = bound.low
            words[r + K.holders] = socket.holders
            row += 1
        }
        words[area] = UInt64(row)
    }

    /// Publishes one core's interface counters.
    public func publish(core: Int, counters: InterfaceCounters, neighbours: Int, groups: Int = 0) {
        let base = StatsLayout.headerWords + core * StatsLayout.coreWords
        words[base + StatsLayout.Core.framesIn] = counters.framesIn
        words[base + StatsLayout.Core.framesOut] = counters.framesOut
        words[base + StatsLayout.Core.bytesIn] = counters.bytesIn
        words[base + StatsLayout.Core.bytesOut] = counters.bytesOut
        words[base + StatsLayout.Core.superFramesIn] = counters.superFramesIn
        words[base + StatsLayout.Core.superFramesOut] = counters.superFramesOut
        words[base + StatsLayout.Core.looped] = counters.framesLooped
        words[base + StatsLayout.Core.reassembled] = counters.reassembled
        words[base + StatsLayout.Core.fragmentsOut] = counters.fragmentsOut
        words[base + StatsLayout.Core.neighbours] = UInt64(neighbours)
        words[base + StatsLayout.Core.groups] = UInt64(groups)
        words[base + StatsLayout.Core.igmpReportsOut] = counters.igmpReportsOut
        var i = base + StatsLayout.coreFixedWords
        for v in counters.drops.malformed { words[i] = v; i += 1 }
        for v in counters.drops.policy { words[i] = v; i += 1 }
        for v in counters.drops.tcp { words[i] = v; i += 1 }
    }
}
