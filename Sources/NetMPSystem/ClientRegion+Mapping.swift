import CNetMPChannel
import Glibc
import NetMPChannel

/// Making a region and mapping one another process made: memfd calls and a read of its head,
/// so NetMPSystem's (the channel keeps the layout and checks the head).
extension ClientRegion {
    /// New memory for `capacity` socket slots of at least `stride` bytes each (rounded up
    /// to pages) and `cores` request rings of `requestCapacity` records (a power of two);
    /// `shared`: in a memfd that can be mapped again.
    public convenience init(capacity: Int, stride: Int, cores: Int = 0, requestCapacity: Int = 0,
                            shared: Bool = false) throws(MemoryError) {
        let stride = stride > 0 ? Self.pageAligned(stride) : 0
        precondition(requestCapacity == 0 || requestCapacity.nonzeroBitCount == 1, "request rings: a power of two")
        let layout = Layout(capacity: capacity, cores: cores, requestCapacity: requestCapacity)
        let fd = shared ? try RegionFile.made("netmp-region", bytes: layout.memoryOffset + capacity * stride, sealedAtSize: true) : nil
        try self.init(mapping: RegionFile(descriptor: fd), capacity: capacity, stride: stride, cores: cores,
                      requestCapacity: requestCapacity)
        writeHead()
    }

    /// A second mapping of the region in memfd `fd` (which this object then holds, dup'ed).
    /// Its head's sizes are checked and its offsets must be the ones the sizes give.
    public convenience init(mapping fd: Int32) throws(MemoryError) {
        var head = netmp_region()
        guard pread(fd, &head, MemoryLayout<netmp_region>.size, 0) == MemoryLayout<netmp_region>.size else {
            throw .system(errno: errno)
        }
        let sizes = try Self.checked(head)
        try self.init(mapping: RegionFile(descriptor: try RegionFile.duplicate(fd)), capacity: sizes.capacity,
                      stride: sizes.stride, cores: sizes.cores, requestCapacity: sizes.requestCapacity)
    }
}

extension SocketTable {
    /// A table of `capacity` sockets whose slots have `stride` bytes of memory each (0:
    /// none, a table of names); `shared`: in a memfd that `init(mapping:)` maps again. A
    /// million sockets' entries take 128 MiB of address space, resident only as far as used.
    public convenience init(capacity: Int = 1 << 20, stride: Int = 0, shared: Bool = false) {
        precondition(capacity > 0 && capacity < Int(UInt32.max))
        let memory: ClientRegion
        do { memory = try ClientRegion(capacity: capacity, stride: stride, shared: shared) } catch {
            preconditionFailure("socket table: cannot map its memory (\(error))")
        }
        self.init(region: memory)
    }

    /// The table in memfd `fd`, mapped again (tests: another address in this process; the
    /// stack service: another process).
    public convenience init(mapping fd: Int32) throws(ClientRegion.MemoryError) {
        self.init(region: try ClientRegion(mapping: fd))
    }
}
