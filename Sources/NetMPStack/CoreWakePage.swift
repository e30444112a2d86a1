import CNetMPChannel
import CNetMPLinux
import Glibc
import Synchronization

/// Where each core announces that it sleeps (`netmp_core_wake`, a line per core), so that
/// whoever queued work for it (a message in its port, a record in a client's request ring)
/// wakes it only then. In the stack service every client maps the page (a memfd, mapped
/// again with `init(mapping:)`) and is given its bells, an eventfd per core, once; in-process it is
/// anonymous memory beside the ports.
public final class CoreWakePage: @unchecked Sendable {
    public let cores: Int
    let memory: UnsafeMutableRawPointer
    let bytes: Int
    /// The memfd, for a page that can be mapped again; nil for anonymous memory.
    public let descriptor: Int32?

    /// A page for `cores` cores; `shared`: in a memfd.
    public init?(cores: Int, shared: Bool = false) {
        precondition(cores > 0)
        self.cores = cores
        bytes = ClientRegion.pageAligned(cores * MemoryLayout<netmp_core_wake>.size)
        var fd: Int32? = nil
        if shared {
            let made = netmp_memfd("netmp-cores")
            guard made >= 0 else { return nil }
            guard ftruncate(made, off_t(bytes)) == 0, netmp_seal_size(made) == 0 else { _ = netmp_close_descriptor(made); return nil }
            fd = made
        }
        guard let mapped = ClientRegion.map(fd, at: 0, bytes: bytes) else {
            if let fd { _ = netmp_close_descriptor(fd) }
            return nil
        }
        memory = mapped
        descriptor = fd
    }

    /// The page in memfd `fd`, for `cores` cores (which this object then holds, dup'ed);
    /// nil if the memfd is smaller than that.
    public init?(mapping fd: Int32, cores: Int) {
        var status = stat()
        let needed = ClientRegion.pageAligned(cores * MemoryLayout<netmp_core_wake>.size)
        guard cores > 0, fstat(fd, &status) == 0, Int(status.st_size) >= needed else { return nil }
        // Up among the library's other descriptors; raw calls, never the interposed ones.
        let own = netmp_duplicate_high(fd)
        guard own >= 0, let mapped = ClientRegion.map(own, at: 0, bytes: needed) else {
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

    /// Core `core`'s announcement word.
    public func sleeping(_ core: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        precondition(core < cores)
        return (memory + core * MemoryLayout<netmp_core_wake>.size)
            .atomic(UInt32.self, at: MemoryLayout<netmp_core_wake>.offset(of: \netmp_core_wake.sleeping)!)
    }
}

/// What a sender needs to wake one core: its announcement word and its eventfd.
public struct CoreWaker: @unchecked Sendable {
    let sleeping: UnsafeMutablePointer<Atomic<UInt32>>
    public let eventfd: Int32
    /// Keeps the announcement word's memory.
    public let page: AnyObject

    public init(sleeping: UnsafeMutablePointer<Atomic<UInt32>>, eventfd: Int32, page: AnyObject) {
        self.sleeping = sleeping
        self.eventfd = eventfd
        self.page = page
    }

    /// After publishing work the core looks for before it sleeps (sequentially consistent,
    /// as the core's announcement and look are): writes the eventfd if the core announced
    /// a sleep, once for all the senders that find it.
    @inline(__always)
    public func wakeIfSleeping() {
        if sleeping.pointee.load(ordering: .sequentiallyConsistent) != 0,
           sleeping.pointee.exchange(0, ordering: .sequentiallyConsistent) != 0 {
            _ = netmp_doorbell_ring(eventfd) // the raw call: in a client, write() is the shim's
        }
    }
}
