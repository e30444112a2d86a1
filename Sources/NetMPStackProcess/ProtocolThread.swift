import CNetMPLinux
import CNuma
import Glibc
import NetMPLink
import NetMPStack
import NetMPSystem
import NetMPTCP

/// What every protocol thread of one stack shares: read-only after start, except the ports
/// and request rings (each a queue many threads send to), the socket table (lock-free) and
/// the port table (behind its own lock).
struct CoreSharing: @unchecked Sendable {
    let configuration: StackConfiguration
    let tcpConfiguration: TCPConfiguration
    /// What the TAP finishes for every core (one device, one set of flags).
    let offloads: LinkOffloads
    let secret: (UInt64, UInt64)
    let steering: FlowSteering
    let ports: [MessagePort<CoreMessage>]
    /// The application's region (in-process, the stack's first client).
    let region: ClientRegion
    let portTable: PortTable
    let datagramPortTable: PortTable
    let stats: StatsPage?
    let log: Log
}

/// One protocol thread: pinned to a CPU, it alone reads its TAP queue and its message port,
/// and alone touches the connections it owns. It sleeps in poll(2) until a frame or a
/// message arrives or the next timer is due.
///
/// Its host, tables and buffers are made on the thread after pinning, so the kernel's
/// first-touch policy puts them on the CPU's own NUMA node (docs/ARCHITECTURE.md).
final class ProtocolThread: @unchecked Sendable {
    let core: Int
    let cpu: Int
    let queue: TAPQueue
    let sharing: CoreSharing
    /// Released when the thread made its loop (host, tables, the bells' epoll instance).
    let ready = Completion(count: 1)
    /// Released when the thread left its loop.
    let finished = Completion(count: 1)

    init(core: Int, cpu: Int, queue: TAPQueue, sharing: CoreSharing) {
        self.core = core; self.cpu = cpu; self.queue = queue; self.sharing = sharing
    }

    func start() throws(StackProcessError) {
        pthread_detach(try startStackThread { self.run() })
    }

    /// The core's host, connection table and loop, its first frames sent. `clock`: a
    /// test's (the loop is then driven by NetworkStack.turn, not by this thread).
    func makeLoop(clock: VirtualClock? = nil) -> ProtocolLoop {
        let host = Host(configuration: sharing.configuration)
        host.offloads = sharing.offloads
        host.seedIdentifications(sharing.secret.1, core: core, of: sharing.ports.count)
        let tcp = TCPEndpoints(configuration: sharing.tcpConfiguration, secret: sharing.secret,
                               now: clock?.now ?? MonotonicClock.now())
        let loop = ProtocolLoop(host: host, tcp: tcp, queue: queue, stats: sharing.stats, core: core,
                                steering: sharing.steering, ports: sharing.ports, portTable: sharing.portTable,
                                datagramPortTable: sharing.datagramPortTable,
                                clients: [(id: 0, region: sharing.region)])
        loop.virtualClock = clock
        // A driven loop never spins: each turn looks once.
        if clock == nil { loop.spinBudget = .microseconds(UInt64(sharing.configuration.pollSpinMicroseconds)) }
        // One gratuitous ARP for the interface, not one per core.
        if core == 0 { loop.announce() }
        // Every core follows detection of the IPv6 addresses; core 0 sends the probes.
        loop.startAddressDetection(probes: core == 0)
        return loop
    }

    func run() {
        defer { finished.done() }
        let log = sharing.log
        let pinned = netmp_pin_current_thread(Int32(cpu))
        if pinned != 0 { log.info("core \(core): cannot pin to CPU \(cpu) (errno \(-pinned)); running unpinned") }
        // Everything this thread allocates from here on (its host, tables, frame buffer,
        // the control blocks and rings of connections it accepts) comes from its own node:
        // local allocation on the pinned thread, and glibc gives each thread its own arena.
        if numa_available() >= 0 { numa_set_localalloc() }
        let loop = makeLoop()
        ready.done()
        log.info("core \(core): up on CPU \(cpu), \(loop.host.address) at \(loop.host.mac), TAP queue \(queue.index)")
        var wasOffTheWire = false
        while !loop.stopped {
            do { try loop.runOnce() } catch {
                log.debug("core \(core): \(error)")
            }
            if wasOffTheWire != loop.offTheWire {
                wasOffTheWire = loop.offTheWire
                guard wasOffTheWire else { log.info("core \(core): TAP queue \(queue.index) attached again"); continue }
                // Still a device: another process (a forked child) detached this queue.
                if netmp_interface_index(sharing.configuration.tapName) > 0 {
                    log.info("core \(core): TAP queue \(queue.index) detached; another process serves the device now")
                } else {
                    log.error("core \(core): the TAP device went away; connections will time out")
                }
            }
        }
    }
}
