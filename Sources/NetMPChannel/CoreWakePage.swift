import CNetMPChannel
import Synchronization

/// Where each core announces that it sleeps (`netmp_core_wake`, a line per core), so that
/// whoever queued work for it (a message in its port, a record in a client's request ring)
/// wakes it only then. In the stack service every client maps the page (a memfd, mapped
/// again with `init(mapping:)`) read-only, and is given its bells, an eventfd per core, once;
/// in-process it is anonymous memory beside the ports. Each line is the core's count of
/// sleeps, odd while it sleeps, written by the core alone: before the page was read-only a
/// client could clear another's announcement, and the core slept on with work queued.
public final class CoreWakePage: @unchecked Sendable {
    public let cores: Int
    let memory: UnsafeMutableRawPointer
    let bytes: Int
    /// The memory the page is in (NetMPSystem's CoreWakePage+Mapping makes and maps it).
    let mapping: any RegionMapping
    /// The memfd, for a page that can be mapped again; nil for anonymous memory.
    public var descriptor: Int32? { mapping.descriptor }

    /// The bytes a page for `cores` cores takes.
    public static func bytes(cores: Int) -> Int { ClientRegion.pageAligned(cores * MemoryLayout<netmp_core_wake>.size) }

    /// The page at `memory` (`bytes(cores:)` long, mapped by `mapping`, which unmaps it when
    /// the page goes).
    package init(cores: Int, memory: UnsafeMutableRawPointer, mapping: any RegionMapping) {
        self.cores = cores
        self.memory = memory
        self.mapping = mapping
        bytes = Self.bytes(cores: cores)
    }

    deinit { mapping.unmap(memory, bytes: bytes) }

    /// Core `core`'s count of sleeps: the core's port stores it; on a client's page (mapped
    /// read-only) it may only be loaded.
    public func sleeps(_ core: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        precondition(core < cores)
        return (memory + core * MemoryLayout<netmp_core_wake>.size)
            .atomic(UInt64.self, at: MemoryLayout<netmp_core_wake>.offset(of: \netmp_core_wake.sleeps)!)
    }
}

/// The count of a core's sleeps for which one waking party (a client, or the stack's own
/// senders to a port) last wrote its bell: its threads ring once per sleep among them.
public final class RungSleep: @unchecked Sendable {
    public let sleeps = Atomic<UInt64>(0)
    public init() {}

    /// Whether `announced`, an odd count read from the core's line, is one this party has
    /// not rung for yet (and now the one it rings for).
    @inline(__always)
    public func claim(_ announced: UInt64) -> Bool {
        sleeps.load(ordering: .relaxed) != announced && sleeps.exchange(announced, ordering: .relaxed) != announced
    }
}

/// What a sender needs to wake one core: its count of sleeps, its eventfd, and what this
/// sender's party last rang for.
public struct CoreWaker: @unchecked Sendable {
    let sleeps: UnsafePointer<Atomic<UInt64>>
    public let eventfd: Int32
    let rung = RungSleep()
    /// Keeps the count's memory.
    public let page: AnyObject

    public init(sleeps: UnsafePointer<Atomic<UInt64>>, eventfd: Int32, page: AnyObject) {
        self.sleeps = sleeps
        self.eventfd = eventfd
        self.page = page
    }

    /// After publishing work the core looks for before it sleeps (sequentially consistent,
    /// as the core's announcement and look are): writes the eventfd if the core announced
    /// a sleep, once per sleep for all the threads that find it.
    @inline(__always)
    public func wakeIfSleeping() {
        let announced = sleeps.pointee.load(ordering: .sequentiallyConsistent)
        if announced & 1 != 0, rung.claim(announced) {
            ChannelCalls.current.pointee.ring(eventfd)
        }
    }
}
