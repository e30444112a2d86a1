import CNetMPLinux
import Glibc
import NetMPChannel

/// Channel memory as this process reaches it: a memfd (which a second mapping, here or in
/// another process, shares) or anonymous memory (this process's alone). All calls are raw
/// system calls: in a client, the library never calls the interposed libc.
public final class RegionFile: RegionMapping, @unchecked Sendable {
    public let descriptor: Int32?

    /// Memory over memfd `descriptor` (which this object then holds and closes), or
    /// anonymous memory for nil.
    public init(descriptor: Int32?) {
        _ = LinuxChannelCalls.installed
        self.descriptor = descriptor
    }

    deinit { if let descriptor { _ = netmp_close_descriptor(descriptor) } }

    public func map(at offset: Int, bytes: Int) throws(ClientRegion.MemoryError) -> UnsafeMutableRawPointer {
        let mapped = if let descriptor {
            mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, descriptor, off_t(offset))
        } else {
            mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        }
        guard let mapped, mapped != MAP_FAILED else { throw .system(errno: errno) }
        return mapped
    }

    public func unmap(_ address: UnsafeMutableRawPointer, bytes: Int) { munmap(address, bytes) }

    public func discard(at offset: Int, bytes: Int, mapped address: UnsafeMutableRawPointer) {
        if let descriptor {
            _ = netmp_punch_hole(descriptor, offset, bytes)
        } else {
            madvise(address, bytes, MADV_DONTNEED)
        }
    }

    /// A new memfd of `bytes`; `sealedAtSize`: sealed at that size, for memory another
    /// process maps too, which a truncation by it would fault on this one's next access
    /// (SIGBUS). (The wake page is sealed otherwise, once the stack has mapped it.)
    static func made(_ name: String, bytes: Int, sealedAtSize: Bool) throws(ClientRegion.MemoryError) -> Int32 {
        let made = netmp_memfd(name)
        guard made >= 0 else { throw .system(errno: -made) }
        guard ftruncate(made, off_t(bytes)) == 0, !sealedAtSize || netmp_seal_size(made) == 0 else {
            let e = errno
            _ = netmp_close_descriptor(made)
            throw .system(errno: e)
        }
        return made
    }

    /// Descriptor `fd` again, up among the library's other descriptors, not at the
    /// program's lowest free number (raw: a preloaded library never calls the interposed dup).
    static func duplicate(_ fd: Int32) throws(ClientRegion.MemoryError) -> Int32 {
        let own = netmp_duplicate_high(fd)
        guard own >= 0 else { throw .system(errno: -own) }
        return own
    }
}
