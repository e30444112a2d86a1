import CNetMPLinux
import Glibc
import NetMPLink
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire
import Synchronization

/// Why the stack process (or a test's stack) could not start, or attach a client.
public enum StackProcessError: Error, CustomStringConvertible {
    case link(LinkError)
    case threadFailed(errno: Int32)
    case noCPU
    case numa(NUMAError)
    case region(ClientRegion.MemoryError)
    case names(errno: Int32)
    case bells(errno: Int32)
    case capture(errno: Int32)

    public var description: String {
        switch self {
        case .link(let e): e.description
        case .threadFailed(let e): "cannot start a protocol thread (errno \(e))"
        case .noCPU: "no CPU is available to this process"
        case .numa(let e): e.description
        case .region(let e): "cannot map the memory sockets share with the cores (\(e))"
        case .names(let e): "cannot make a client's names socket (\(String(cString: strerror(e))))"
        case .bells(let e): "cannot make a client's bells (\(String(cString: strerror(e))))"
        case .capture(let e): "cannot write the capture (\(String(cString: strerror(e))))"
        }
    }
}

/// The running stack of one process: one protocol thread per core, each with its own TAP
/// queue and message port, the port table and the stats page. Application threads reach
/// the cores only through `send(_:to:)` and the socket channels.
public final class NetworkStack: @unchecked Sendable {
    public let configuration: StackConfiguration
    public let tcpConfiguration: TCPConfiguration
    /// The TAP device, when the stack attached one (tests may hand it other frame queues).
    public let device: TAPDevice?
    public let steering: FlowSteering
    let ports: [MessagePort<CoreMessage>]
    /// The cores' sleep announcements, which the ports and every client's senders read.
    let wakePage: CoreWakePage
    /// The stack's first client, 0, in its own process: its region holds each core's
    /// request ring, the reply slots and the socket table. The ports carry what the stack's
    /// own threads say to each other.
    public let primaryParts: LocalClientParts
    /// The application side that NetMPInProcess makes of `primaryParts` on first use (this
    /// module never sees the client's code; `netmp stack` never fills it).
    public let primarySide = OnceObject()
    /// The number the next attached client gets.
    let nextClientID = AtomicCounter(1)
    let threads: [ProtocolThread]
    /// A stack on a test's VirtualClock: its cores' loops, which run only in `turn()`
    /// (empty: each core runs on its thread).
    var drivenLoops: [ProtocolLoop] = []
    /// The stack's ports, which the cores reserve and release for every client
    /// (StackClient.reservePort); UDP's are a namespace of their own, as in the kernel.
    let portTable: PortTable
    let datagramPortTable: PortTable
    /// The interface's routes, for calls that must fail at once without a route (ENETUNREACH).
    public let routes: RoutingTable
    let stats: StatsPage?

    public var cores: Int { ports.count }

    /// Attaches the configured TAP with one queue per core and starts the cores.
    public static func start(_ configuration: StackConfiguration, log: Log) throws(StackProcessError) -> NetworkStack {
        let cpus = try allowedCPUs()
        // Configuration errors first: a bad NETMP_FAKE_NUMA is reported as such, not as
        // whatever the TAP attach might say.
        if case .failure(let e) = NUMATopology.system(fake: configuration.fakeNUMA) { throw .numa(e) }
        let count = configuration.cores ?? cpus.count
        let device: TAPDevice
        do { device = try TAPDevice(name: configuration.tapName, queueCount: count) } catch { throw .link(error) }
        return try start(configuration, queues: device.queues, device: device, log: log)
    }

    /// Starts one core per queue in `queues` (frame queues: TAP queues, or in tests one end
    /// of a SEQPACKET socket pair each).
    /// `clock`: a test's time; the cores then run no threads of their own and take a turn
    /// each when the test calls `turn()` (VirtualClock).
    /// `linkOffloads`: what the link finishes where no TAP negotiates it (tests: socket
    /// pairs whose frames carry virtio headers).
    public static func start(_ configuration: StackConfiguration, queues: [TAPQueue], device: TAPDevice? = nil,
                             tcpConfiguration: TCPConfiguration = .forThisSystem(),
                             log: Log, clock: VirtualClock? = nil,
                             linkOffloads: LinkOffloads = .none) throws(StackProcessError) -> NetworkStack {
        precondition(!queues.isEmpty)
        let cpus = try allowedCPUs()
        let topology: NUMATopology
        switch NUMATopology.system(fake: configuration.fakeNUMA) {
        case .success(let t): topology = t
        case .failure(let e): throw .numa(e)
        }
        var tcp = tcpConfiguration
        tcp.maximumSegmentSize = configuration.mtu - 40
        // Checksums and TCP segmentation go to the kernel where the TAP takes them (a
        // fresh negotiation: a persistent TAP keeps its last user's flags).
        let offloads = device.map { LinkOffloads($0.negotiateOffloads()) } ?? linkOffloads
        if offloads.tcpSegmentation { tcp.segmentationLimit = TCPConfiguration.superSegmentLimit }
        if device != nil && !(offloads.checksum && offloads.tcpSegmentation) {
            log.info("the TAP refused some offloads (\(offloads)): segments go out one MSS at a time")
        }
        // Each frame on its owner core's queue, by netmp's hash (SteeringProgram); where the
        // kernel refuses the program, its flow table picks and misses are forwarded. One
        // queue needs none, but a program a previous user left is taken off.
        var steering: UInt64 = 0
        if let device {
            do {
                try device.setSteering(queues.count > 1 ? SteeringProgram(cores: queues.count).instructions : nil)
                if queues.count > 1 { steering = StatsLayout.steeringByProgram }
            } catch {
                if queues.count > 1 {
                    let e: Int32 = if case .ioctlFailed(_, let e) = error { e } else { EINVAL }
                    steering = UInt64(UInt16(truncatingIfNeeded: e)) << StatsLayout.steeringRefusalShift
                    log.info("the TAP picks queues by its own flow table (\(error)): frames that arrive on another core's queue are forwarded")
                }
            }
        }
        let stats = StatsPage(cores: queues.count, configuration: configuration, offloads: device?.offloads.rawValue,
                              steering: steering)
        if stats == nil { log.info("no stats page (memfd or mmap failed): netmp stat will not see this process") }
        let secret = SystemRandom.secret()
        // Where the cores announce a sleep: their ports' senders and every client's read it.
        guard let wakePage = CoreWakePage(cores: queues.count, shared: true) else { throw .region(.system(errno: errno)) }
        let ports = queues.indices.map { MessagePort<CoreMessage>(capacity: 4096, sleeps: wakePage.sleeps($0)) }
        // What application threads share with the cores, in one region: each core's request
        // ring, the reply slots, the socket table and the sockets' rings.
        let region: ClientRegion
        do {
            region = try ClientRegion(capacity: 1 << 20, stride: ClientRegion.streamStride(send: tcp.sendBufferSize,
                                                                                           receive: tcp.receiveBufferSize),
                                      cores: queues.count, requestCapacity: 4096)
        } catch { throw .region(error) }
        let sharing = CoreSharing(configuration: configuration, tcpConfiguration: tcp, offloads: offloads, secret: secret,
                                  steering: FlowSteering(cores: queues.count), ports: ports, region: region,
                                  portTable: PortTable(seed: secret.1), datagramPortTable: PortTable(seed: secret.0, sharesOnReuseAddress: true),
                                  stats: stats, log: log)
        // Cores beyond the CPUs we may use share them round-robin (they still work, unpinned in effect).
        let threads = queues.enumerated().map { core, queue in
            let cpu = cpus[core % cpus.count]
            stats?.describe(core: core, cpu: cpu, node: topology.node(of: cpu))
            return ProtocolThread(core: core, cpu: cpu, queue: queue, sharing: sharing)
        }
        let stack = NetworkStack(configuration: configuration, tcpConfiguration: tcp, device: device,
                                 steering: sharing.steering, ports: ports, wakePage: wakePage, region: region,
                                 threads: threads, portTable: sharing.portTable, datagramPortTable: sharing.datagramPortTable,
                                 stats: stats)
        if let clock {
            stack.drivenLoops = threads.map { $0.makeLoop(clock: clock) }
        } else {
            for thread in threads { try thread.start() }
            // Up once every core made its loop: what a caller does next (serve attaches,
            // count the process's descriptors) finds each core's tables and files there.
            for thread in threads { thread.ready.wait() }
        }
        return stack
    }

    /// Waits, at most `limit`, until duplicate address detection has decided on every IPv6
    /// address (a second after the start), so that programs attach to a stack whose IPv6
    /// sources are usable: one that connected earlier would find its source tentative and
    /// be refused, as on Linux right after an address is added. Returns the addresses
    /// another node holds.
    public func waitForIPv6Addresses(limit: Interval = .seconds(3)) -> [IPv6Address] {
        guard !configuration.ipv6Addresses.isEmpty else { return [] }
        let deadline = MonotonicClock.now() + limit
        while MonotonicClock.now() < deadline {
            if let published = stats?.publishedAddresses, !published.contains(where: { $0.state == "tentative" }) {
                return published.filter { $0.state == "duplicate" }.map(\.address)
            }
            usleep(20_000)
        }
        return []
    }

    static func allowedCPUs() throws(StackProcessError) -> [Int] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let available = Int(netmp_allowed_cpus(&cpus, 1024))
        guard available > 0 else { throw .noCPU }
        return cpus[0..<available].map { Int($0) }
    }

    init(configuration: StackConfiguration, tcpConfiguration: TCPConfiguration, device: TAPDevice?,
         steering: FlowSteering, ports: [MessagePort<CoreMessage>], wakePage: CoreWakePage, region: ClientRegion,
         threads: [ProtocolThread], portTable: PortTable, datagramPortTable: PortTable, stats: StatsPage?) {
        self.configuration = configuration; self.tcpConfiguration = tcpConfiguration; self.device = device
        self.steering = steering; self.ports = ports; self.wakePage = wakePage
        self.threads = threads
        self.portTable = portTable; self.datagramPortTable = datagramPortTable; self.stats = stats
        routes = RoutingTable(interface: configuration.address, prefixLength: configuration.prefixLength,
                              gateway: configuration.gateway)
        primaryParts = LocalClientParts(id: 0, region: region, configuration: configuration, tcpConfiguration: tcpConfiguration,
                                        steering: steering, wakers: Self.wakers(ports, wakePage))
    }

    /// Another client of this stack, with a region of its own that every core now serves
    /// beside the others (what the stack process does for each program that attaches; here,
    /// a second side in one process, for tests).
    public func attachLocalClient(uid: UInt32 = getuid()) throws(StackProcessError) -> LocalClientParts {
        let region = try clientRegion(shared: false)
        return LocalClientParts(id: addClient(region, descriptors: nil, uid: uid), region: region, configuration: configuration,
                                tcpConfiguration: tcpConfiguration, steering: steering, wakers: Self.wakers(ports, wakePage))
    }

    /// A client in another process (the stack service): its region is a memfd the client
    /// maps, and the cores ring the stack's copies of its doorbells' eventfds.
    /// `privileged`: the program may bind ports below ip_unprivileged_port_start (root, or
    /// CAP_NET_BIND_SERVICE), as on Linux.
    public func attachProcess(privileged: Bool = true, uid: UInt32 = getuid()) throws(StackProcessError) -> AttachedProcess {
        let region = try clientRegion(shared: true)
        let descriptors = DoorbellDescriptors(capacity: region.capacity)
        // Core 0 reads its end without blocking; the client's end blocks a sender while
        // the queue is full (core 0, marked and woken, is on its way to drain it).
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0,
              fcntl(ends[0], F_SETFL, O_NONBLOCK) == 0 else { throw .names(errno: errno) }
        // A bell per core of the client's own: a client can do what it likes to its files
        // (make them blocking, fill their counts) and only its own wakeups suffer.
        var bells: [Int32] = []
        for _ in 0..<cores {
            let bell = netmp_eventfd()
            guard bell >= 0 else {
                for fd in bells + ends { Glibc.close(fd) }
                throw .bells(errno: -bell)
            }
            bells.append(bell)
        }
        let faults = ClientFaults()
        let id = addClient(region, descriptors: descriptors, names: ends[0], bells: bells,
                           portStart: privileged ? 0 : Self.unprivilegedPortStart(), uid: uid, faults: faults)
        return AttachedProcess(id: id, region: region, sockets: SocketTable(region: region, doorbellDescriptors: descriptors),
                               descriptors: descriptors, names: ends[1], bells: bells, faults: faults)
    }

    func clientRegion(shared: Bool) throws(StackProcessError) -> ClientRegion {
        do {
            return try ClientRegion(capacity: 1 << 16, stride: ClientRegion.streamStride(send: tcpConfiguration.sendBufferSize,
                                                                                         receive: tcpConfiguration.receiveBufferSize),
                                    cores: cores, requestCapacity: 4096, shared: shared)
        } catch { throw .region(error) }
    }

    /// Every core serves `region` from now on; the client's number.
    /// `names`: the stack's end of the client's names socket, which core 0 reads and closes.
    /// `bells`: the client's eventfd for each core, which that core watches and closes.
    /// `portStart`: the lowest port the client may bind (0: any).
    func addClient(_ region: ClientRegion, descriptors: DoorbellDescriptors?, names: Int32? = nil, bells: [Int32]? = nil,
                   portStart: UInt16 = 0, uid: UInt32 = getuid(), faults: ClientFaults = ClientFaults()) -> UInt32 {
        let id = UInt32(nextClientID.increment() - 1)
        let completion = Completion(count: cores)
        for core in 0..<cores {
            send(.attach(client: id, region, descriptors, core == 0 ? names : nil, bell: bells?[core], portStart, uid, faults,
                         completion), to: core)
        }
        completion.wait()
        return id
    }

    /// How a client in this process wakes each core: through the core's line of the wake
    /// page and the port's eventfd, as a client process does.
    static func wakers(_ ports: [MessagePort<CoreMessage>], _ wakePage: CoreWakePage) -> [CoreWaker] {
        ports.indices.map { CoreWaker(sleeps: wakePage.sleeps($0), eventfd: ports[$0].wakeupDescriptor, page: wakePage) }
    }

    /// The cores stop serving client `id`; `closing`: its process is gone, and what it
    /// held is closed and its ports go back (ProtocolLoop.detach).
    public func detach(client id: UInt32, closing: Bool) {
        tellEveryCore { .detach(client: id, closing: closing, $0) }
        if closing {
            portTable.releaseAll(of: id)
            datagramPortTable.releaseAll(of: id)
        }
    }

    /// Every core closes its part of client `id`'s sockets `handles` (their last holding
    /// process ended while the client goes on).
    public func close(_ handles: [SocketHandle], of id: UInt32) {
        tellEveryCore { .closeSockets(client: id, handles, reset: false, $0) }
    }

    /// What a client process maps: the cores' wake page (a memfd; its bells come with its
    /// AttachedProcess).
    public var wakePageDescriptor: Int32? { wakePage.descriptor }

    /// Sends every core the message `make` builds around one completion, and waits until
    /// every core has done it.
    func tellEveryCore(_ make: (Completion) -> CoreMessage) {
        let completion = Completion(count: cores)
        for core in 0..<cores { send(make(completion), to: core) }
        if drivenLoops.isEmpty { completion.wait() } else { while completion.remaining.value != 0 { turn() } }
    }

    /// A stack on a VirtualClock: each core takes one turn, in core order, at the clock's
    /// time: it handles what its port, its clients' rings and its queue hold, and fires
    /// the timers that are due. Never waits.
    public func turn() {
        precondition(!drivenLoops.isEmpty, "turn() drives a stack started with a VirtualClock")
        for loop in drivenLoops where !loop.stopped { try? loop.runOnce(maximumWait: .zero) }
    }

    /// Sends a message to core `core`. A full port means the core is far behind: the sender
    /// yields its CPU until there is room rather than lose a usrreq.
    func send(_ message: CoreMessage, to core: Int) {
        while !ports[core].send(message) { sched_yield() }
    }


    /// This stack's own counters and connections, as `netmp stat` would show them.
    public func statsSnapshot() -> StatsSnapshot? {
        guard let stats else { return nil }
        return try? StatsSnapshot.read(path: "/proc/self/fd/\(stats.fd)", pid: getpid())
    }

    /// Where each core's memory is: for each core, the node its CPU belongs to and the node
    /// that holds its frame buffer (move_pages), asked of the core itself.
    public func memoryPlacement() -> [(core: Int, expected: Int, actual: Int)] {
        let nodes = askEveryCore { loop in netmp_node_of_address(loop.buffer.baseAddress) }
        let topology = (try? NUMATopology.system(fake: configuration.fakeNUMA).get())
        return (0..<cores).map { core in
            let cpu = threads[core].cpu
            // A fake topology's nodes all live on the real node 0.
            let expected = topology.map { $0.isFake ? 0 : $0.node(of: cpu) } ?? 0
            return (core, expected, Int(nodes[core]))
        }
    }

    /// net.ipv4.ip_unprivileged_port_start of the stack's network namespace (Linux's
    /// default, 1024, when it cannot be read).
    static func unprivilegedPortStart() -> UInt16 {
        UInt16(clamping: procInteger("/proc/sys/net/ipv4/ip_unprivileged_port_start") ?? 1024)
    }

    /// How many clients each core serves (diagnostics: a stack whose programs all went
    /// serves only its own `primary`).
    public var clientsServed: [Int] { askEveryCore { $0.clients.count } }

    /// Connections that have not yet delivered everything written on them (TIME_WAIT and
    /// a connection waiting only for its peer's FIN have): a stack started for programs
    /// ends only once this is 0 (StackService.serve).
    public var connectionsStillSending: Int { askEveryCore({ $0.tcp.connectionsStillSending }).reduce(0, +) }

    /// Tests: core `core` hears `error` (and the datagram's quoted payload) as if an ICMP
    /// error had arrived on its queue, which the TAP's steering, not the socket, chooses.
    public func hearDatagramErrorForTesting(on core: Int, _ error: DatagramError, quoted: [UInt8]) {
        _ = askEveryCore { loop in
            if loop.core == core { quoted.withUnsafeBytes { loop.host.datagramErrorHandler?(error, $0) } }
        }
    }

    /// Tests: core `core` handles nothing more until `released` says so (an `inspect`
    /// message that waits on its thread), as a core far behind would.
    public func stallCoreForTesting(_ core: Int, until released: @escaping @Sendable () -> Bool) {
        send(.inspect({ _ in while !released() { usleep(1_000) } }, Completion(count: 1)), to: core)
    }

    /// Runs `question` on every core's own thread (an `inspect` message) and returns the
    /// answers, by core.
    func askEveryCore<Answer: Sendable>(_ question: @escaping @Sendable (ProtocolLoop) -> Answer) -> [Answer] {
        let answers = CoreAnswers<Answer>(cores: cores)
        tellEveryCore { .inspect({ loop in answers.set(question(loop), for: loop.core) }, $0) }
        return answers.all
    }

    /// Stops every protocol thread and waits for them (tests; a process just exits).
    public func stop() {
        tellEveryCore { .stop($0) }
        if drivenLoops.isEmpty { for thread in threads { thread.finished.wait() } }
    }
}

/// Answers of every core to one question, each written by its core.
final class CoreAnswers<Answer: Sendable>: @unchecked Sendable {
    private var values: [Answer?]
    private let lock = PthreadLock()
    init(cores: Int) { values = Array(repeating: nil, count: cores) }
    func set(_ answer: Answer, for core: Int) { lock.locked { values[core] = answer } }
    /// After every core answered (the caller waited for them).
    var all: [Answer] { lock.locked { values.map { $0! } } }
}

/// What a client in the stack's own process is made of: its number, its region, what it
/// must know of the stack, and how it wakes each core (NetMPInProcess makes a StackClient
/// of it).
public struct LocalClientParts: @unchecked Sendable {
    public let id: UInt32
    public let region: ClientRegion
    public let configuration: StackConfiguration
    public let tcpConfiguration: TCPConfiguration
    public let steering: FlowSteering
    public let wakers: [CoreWaker]
}

/// The stack's side of a client in another process: its number, its region (a memfd), the
/// stack's own table of that region, whose doorbell views ring the stack's copies of the
/// client's eventfds (`descriptors`).
public struct AttachedProcess: Sendable {
    public let id: UInt32
    public let region: ClientRegion
    public let sockets: SocketTable
    public let descriptors: DoorbellDescriptors
    /// The client's end of its names socket, to send it (and then close it here); core 0
    /// holds the other end.
    public let names: Int32
    /// The client's eventfd for each core, to send it (each core holds and closes these).
    public let bells: [Int32]
    /// What the client wrote that the stack could not take, counted by every core.
    public let faults: ClientFaults
}
