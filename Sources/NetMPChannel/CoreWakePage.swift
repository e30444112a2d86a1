import CNetMPChannel
import CNetMPLinux
import Glibc
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
    /// The memfd, for a page that can be mapped again; nil for anonymous memory.
    public let descriptor: Int32?

    /// A page for `cores` cores; `shared`: in a memfd, sealed so that only this mapping
    /// writes it.
    public init?(cores: Int, shared: Bool = false) {
        precondition(cores > 0)
        self.cores = cores
        bytes = ClientRegion.pageAligned(cores * MemoryLayout<netmp_core_wake>.size)
        var fd: Int32? = nil
        if shared {
            let made = netmp_memfd("netmp-cores")
            guard made >= 0 else { return nil }
            guard ftruncate(made, off_t(bytes)) == 0 else { _ = netmp_close_descriptor(made); return nil }
            fd = made
        }
        // The stack's own mapping is made before the seal, which refuses every later one
        // that could write.
        guard let mapped = ClientRegion.map(fd, at: 0, bytes: bytes), fd.map({ netmp_seal_read_only($0) == 0 }) ?? true else {
            if let fd { _ = netmp_close_descriptor(fd) }
            return nil
        }
        memory = mapped
        descriptor = fd
    }

    /// The page in memfd `fd`, for `cores` cores (which this object then holds, dup'ed),
    /// mapped read-only; nil if the memfd is smaller than that.
    public init?(mapping fd: Int32, cores: Int) {
        var status = stat()
        let needed = ClientRegion.pageAligned(cores * MemoryLayout<netmp_core_wake>.size)
        guard cores > 0, fstat(fd, &status) == 0, Int(status.st_size) >= needed else { return nil }
        // Up among the library's other descriptors; raw calls, never the interposed ones.
        let own = netmp_duplicate_high(fd)
        let mapped = own < 0 ? MAP_FAILED : mmap(nil, needed, PROT_READ, MAP_SHARED, own, 0)
        guard let mapped, mapped != MAP_FAILED else {
            if own >= 0 { _ = netmp_close_descriptor(own) }
            return nil
        }
        self.cores = cores
        bytes = needed
        memory = mapped
        descriptor = own
    }

    deinit {
        munmap(memory, bytes)
        if let descriptor { _ = netmp_close_descriptor(descriptor) }
    }

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
            _ = netmp_doorbell_ring(eventfd) // the raw call: in a client, write() is the shim's
        }
    }
}
