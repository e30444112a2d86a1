import CNetMPLinux
import CNuma
import Glibc

/// Which memory node each CPU belongs to, and memory from a chosen node.
///
/// Placement: each protocol thread's pools, rings and control blocks come from
/// `allocate(bytes:node:)`, i.e. numa_alloc_onnode, rather than first touch: first touch would
/// place a ring on the node of whichever thread touched it first, which for a socket buffer is
/// often the application's. On a machine without NUMA (numa_available() < 0) every CPU is
/// node 0 and allocation falls back to plain page-aligned memory.
///
/// NETMP_FAKE_NUMA assigns CPUs to nodes ("0-3:0,4-7:1") so that the multi-node code paths
/// run on a one-node machine; memory then still comes from the real node the kernel has.
public struct NUMATopology: Equatable, Sendable {
    /// node[cpu]
    public let nodeOfCPU: [Int]
    public let isFake: Bool

    public static func system(fake: String? = nil) -> Result<NUMATopology, NUMAError> {
        if let fake { return parse(fake) }
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_CONF)))
        guard numa_available() >= 0 else { return .success(NUMATopology(nodeOfCPU: Array(repeating: 0, count: cpus), isFake: false)) }
        return .success(NUMATopology(nodeOfCPU: (0..<cpus).map { max(0, Int(numa_node_of_cpu(Int32($0)))) }, isFake: false))
    }

    /// Parses "FIRST-LAST:NODE,..." (or "CPU:NODE").
    public static func parse(_ text: String) -> Result<NUMATopology, NUMAError> {
        var map: [Int: Int] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let node = Int(parts[1]), node >= 0 else { return .failure(NUMAError(text: text)) }
            let range = parts[0].split(separator: "-").compactMap { Int($0) }
            guard (1...2).contains(range.count), range.count == parts[0].split(separator: "-").count,
                  let first = range.first, let last = range.last, first <= last, first >= 0, last < 4096 else {
                return .failure(NUMAError(text: text))
            }
            for cpu in first...last { map[cpu] = node }
        }
        guard let highest = map.keys.max(), map.count == highest + 1 else { return .failure(NUMAError(text: text)) }
        return .success(NUMATopology(nodeOfCPU: (0...highest).map { map[$0]! }, isFake: true))
    }

    public func node(of cpu: Int) -> Int { cpu < nodeOfCPU.count ? nodeOfCPU[cpu] : 0 }
    public var nodes: Int { (nodeOfCPU.max() ?? 0) + 1 }

    /// `bytes` of memory from `node` (a fake node maps to the real node 0). Free with `free`.
    public func allocate(bytes: Int, node: Int) -> UnsafeMutableRawBufferPointer {
        let real = isFake ? 0 : node
        if numa_available() >= 0, let memory = numa_alloc_onnode(bytes, Int32(real)) {
            return UnsafeMutableRawBufferPointer(start: memory, count: bytes)
        }
        var memory: UnsafeMutableRawPointer? = nil
        precondition(posix_memalign(&memory, 4096, bytes) == 0, "out of memory")
        return UnsafeMutableRawBufferPointer(start: memory, count: bytes)
    }

    public func free(_ memory: UnsafeMutableRawBufferPointer) {
        if numa_available() >= 0 { numa_free(memory.baseAddress, memory.count) } else { Glibc.free(memory.baseAddress) }
    }
}

public struct NUMAError: Error, Equatable, CustomStringConvertible {
    public var text: String
    public var description: String { "NETMP_FAKE_NUMA: '\(text)' is not a CPU-to-node map like 0-3:0,4-7:1 covering CPUs from 0" }
}
