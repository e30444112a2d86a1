import CNetMPLinux
import Glibc
import NetMPLink
import NetMPStack

public enum RuntimeError: Error, CustomStringConvertible {
    case link(LinkError)
    case threadFailed(errno: Int32)
    case noCPU
    case numa(NUMAError)

    public var description: String {
        switch self {
        case .link(let e): e.description
        case .threadFailed(let e): "cannot start a protocol thread (errno \(e))"
        case .noCPU: "no CPU is available to this process"
        case .numa(let e): e.description
        }
    }
}

/// The running stack of one process: the TAP device, the host, the protocol threads and
/// the stats page.
///
/// Today one protocol thread runs the whole interface on one TAP queue; the per-core split
/// (one thread and one queue per core, connections owned by hash) is the runtime issue's
/// work, and `cores` is already carried for it.
public final class NetworkStack: @unchecked Sendable {
    public let configuration: StackConfiguration
    public let device: TAPDevice
    let threads: [ProtocolThread]
    let stats: StatsPage?

    public static func start(_ configuration: StackConfiguration, log: Log) throws(RuntimeError) -> NetworkStack {
        var cpus = [Int32](repeating: 0, count: 1024)
        let available = Int(netmp_allowed_cpus(&cpus, 1024))
        guard available > 0 else { throw .noCPU }
        let topology: NUMATopology
        switch NUMATopology.system(fake: configuration.fakeNUMA) {
        case .success(let t): topology = t
        case .failure(let e): throw .numa(e)
        }
        let device: TAPDevice
        do { device = try TAPDevice(name: configuration.tapName, queueCount: 1) } catch { throw .link(error) }
        let stats = StatsPage(cores: 1, configuration: configuration)
        if stats == nil { log.info("no stats page (memfd or mmap failed): netmp stat will not see this process") }
        let cpu = Int(cpus[0])
        stats?.describe(core: 0, cpu: cpu, node: topology.node(of: cpu))
        let host = Host(configuration: configuration)
        let thread = ProtocolThread(core: 0, cpu: cpu, host: host, queue: device.queues[0], stats: stats, log: log)
        let stack = NetworkStack(configuration: configuration, device: device, threads: [thread], stats: stats)
        try thread.start()
        return stack
    }

    init(configuration: StackConfiguration, device: TAPDevice, threads: [ProtocolThread], stats: StatsPage?) {
        self.configuration = configuration; self.device = device; self.threads = threads; self.stats = stats
    }
}
