import CNetMPChannel
import CNetMPLinux
import Glibc
import Synchronization

/// The memory of a socket table: its head (`netmp_socket_table`: sizes and free slots),
/// its entries, and one stride of socket memory per slot, at `stride * slot`, where the
/// socket's rings lie. The slot number alone says where a socket's rings are, so either
/// side of a socket (and, with the stack service, either process) finds them from a
/// handle, and nothing that says where they lie is read from memory the other side writes
/// (docs/STACK-SERVICE.md).
///
/// Anonymous memory serves one process (and is copied, not shared, by fork, as the
/// in-process runtime needs); a memfd can be mapped again (`init(mapping:)`), at another
/// address or in another process, and both mappings see one table.
///
/// The strides are mapped in chunks of `slotsPerChunk`, each the first time one of its
/// slots is used, with MAP_NORESERVE: a stride costs address space, and memory only for
/// the pages its socket touches. A stride's rings start on page boundaries, so a freed
/// socket's heavily used pages can be given back without touching its neighbours'.
public final class SocketMemory: @unchecked Sendable {
    public let capacity: Int
    /// Bytes of socket memory per slot (0: a table of names only).
    public let stride: Int
    /// The memfd, for a table that can be mapped again; nil for anonymous memory.
    public let descriptor: Int32?
    /// The head and the entries, mapped once.
    let front: UnsafeMutableRawPointer
    let frontBytes: Int
    let entriesOffset: Int
    let memoryOffset: Int
    /// Each chunk's address once mapped (0 before).
    let chunks: UnsafeMutablePointer<Atomic<UInt>>
    let chunkCount: Int
    static let slotsPerChunk = 64

    public static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    public static func pageAligned(_ bytes: Int) -> Int { (bytes + pageSize - 1) / pageSize * pageSize }

    public enum MemoryError: Error, Equatable { case system(errno: Int32), notATable }

    /// New memory for `capacity` slots of at least `stride` bytes each (rounded up to
    /// pages); `shared`: in a memfd that can be mapped again.
    public convenience init(capacity: Int, stride: Int, shared: Bool = false) throws(MemoryError) {
        let stride = stride > 0 ? Self.pageAligned(stride) : 0
        let entriesOffset = Self.pageSize
        let memoryOffset = Self.pageAligned(entriesOffset + capacity * MemoryLayout<netmp_socket_entry>.size)
        var fd: Int32? = nil
        if shared {
            let made = netmp_memfd("netmp-sockets")
            guard made >= 0 else { throw .system(errno: -made) }
            guard ftruncate(made, off_t(memoryOffset + capacity * stride)) == 0 else {
                let e = errno
                close(made)
                throw .system(errno: e)
            }
            fd = made
        }
        try self.init(descriptor: fd, capacity: capacity, stride: stride, entriesOffset: entriesOffset, memoryOffset: memoryOffset)
        typealias Head = netmp_socket_table
        front.storeBytes(of: UInt64(capacity), toByteOffset: MemoryLayout<Head>.offset(of: \Head.capacity)!, as: UInt64.self)
        front.storeBytes(of: UInt64(stride), toByteOffset: MemoryLayout<Head>.offset(of: \Head.stride)!, as: UInt64.self)
        front.storeBytes(of: UInt64(entriesOffset), toByteOffset: MemoryLayout<Head>.offset(of: \Head.entries_offset)!, as: UInt64.self)
        front.storeBytes(of: UInt64(memoryOffset), toByteOffset: MemoryLayout<Head>.offset(of: \Head.memory_offset)!, as: UInt64.self)
        front.storeBytes(of: NETMP_SOCKET_TABLE_MAGIC, toByteOffset: MemoryLayout<Head>.offset(of: \Head.magic)!, as: UInt64.self)
    }

    /// A second mapping of the table in memfd `fd` (which this object then holds, dup'ed).
    public convenience init(mapping fd: Int32) throws(MemoryError) {
        typealias Head = netmp_socket_table
        var head = netmp_socket_table()
        guard pread(fd, &head, MemoryLayout<Head>.size, 0) == MemoryLayout<Head>.size else { throw .system(errno: errno) }
        guard head.magic == NETMP_SOCKET_TABLE_MAGIC, head.capacity > 0, head.capacity < UInt64(UInt32.max),
              head.stride % UInt64(Self.pageSize) == 0, head.entries_offset == UInt64(Self.pageSize),
              head.memory_offset == UInt64(Self.pageAligned(Self.pageSize + Int(head.capacity) * MemoryLayout<netmp_socket_entry>.size))
        else { throw .notATable }
        let own = dup(fd)
        guard own >= 0 else { throw .system(errno: errno) }
        try self.init(descriptor: own, capacity: Int(head.capacity), stride: Int(head.stride),
                      entriesOffset: Int(head.entries_offset), memoryOffset: Int(head.memory_offset))
    }

    init(descriptor: Int32?, capacity: Int, stride: Int, entriesOffset: Int, memoryOffset: Int) throws(MemoryError) {
        self.capacity = capacity
        self.stride = stride
        self.descriptor = descriptor
        self.entriesOffset = entriesOffset
        self.memoryOffset = memoryOffset
        frontBytes = memoryOffset
        guard let mapped = Self.map(descriptor, at: 0, bytes: memoryOffset) else {
            let e = errno
            if let descriptor { close(descriptor) }
            throw .system(errno: e)
        }
        front = mapped
        chunkCount = stride > 0 ? (capacity + Self.slotsPerChunk - 1) / Self.slotsPerChunk : 0
        chunks = .allocate(capacity: max(chunkCount, 1))
        for index in 0..<chunkCount { (chunks + index).initialize(to: Atomic<UInt>(0)) }
    }

    deinit {
        for index in 0..<chunkCount {
            let address = chunks[index].load(ordering: .acquiring)
            if address != 0 { munmap(UnsafeMutableRawPointer(bitPattern: address), chunkBytes) }
        }
        chunks.deinitialize(count: chunkCount)
        chunks.deallocate()
        munmap(front, frontBytes)
        if let descriptor { close(descriptor) }
    }

    static func map(_ fd: Int32?, at offset: Int, bytes: Int) -> UnsafeMutableRawPointer? {
        let mapped = if let fd {
            mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, off_t(offset))
        } else {
            mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        }
        return mapped == MAP_FAILED ? nil : mapped
    }

    /// The table's head (`netmp_socket_table`).
    var head: UnsafeMutableRawPointer { front }
    /// The entry of `slot` (`netmp_socket_entry`).
    func entry(_ slot: UInt32) -> UnsafeMutableRawPointer {
        front + entriesOffset + Int(slot) * MemoryLayout<netmp_socket_entry>.size
    }

    var chunkBytes: Int { stride * Self.slotsPerChunk }

    /// The stride of `slot`; nil for a table without socket memory, or if the slot's chunk
    /// cannot be mapped (out of address space).
    public func base(of slot: UInt32) -> UnsafeMutableRawPointer? {
        precondition(Int(slot) < capacity)
        guard stride > 0 else { return nil }
        let index = Int(slot) / Self.slotsPerChunk
        var address = chunks[index].load(ordering: .acquiring)
        if address == 0 {
            // Two threads may map the same chunk at once; the loser gives its mapping back.
            guard let mapped = Self.map(descriptor, at: memoryOffset + index * chunkBytes, bytes: chunkBytes) else { return nil }
            let (won, current) = chunks[index].compareExchange(expected: 0, desired: UInt(bitPattern: mapped), ordering: .acquiringAndReleasing)
            if won { address = UInt(bitPattern: mapped) } else {
                munmap(mapped, chunkBytes)
                address = current
            }
        }
        return UnsafeMutableRawPointer(bitPattern: address)! + (Int(slot) % Self.slotsPerChunk) * stride
    }

    /// Gives back the pages of `slot`'s stride: they read as zero from then on, and cost
    /// nothing until touched again.
    func discard(_ slot: UInt32) {
        if let descriptor {
            _ = netmp_punch_hole(descriptor, memoryOffset + Int(slot) * stride, stride)
        } else if let base = base(of: slot) {
            madvise(base, stride, MADV_DONTNEED)
        }
    }

    /// A stream socket's stride: its send ring and then its receive ring, each a control
    /// block and its data, each starting on a page.
    public static func streamStride(send: Int, receive: Int) -> Int {
        pageAligned(MemoryLayout<netmp_send_ring>.size + send) + pageAligned(MemoryLayout<netmp_receive_ring>.size + receive)
    }
}

/// One hold on a slot's memory: the slot's words and its stride stay the socket's while
/// any hold lasts, in any mapping of the table (`netmp_socket_entry.holds`). A socket's
/// channel and its rings share one; the other side of the socket (the owner core's view
/// of an application's socket, the application's view of an accepted one) has its own,
/// taken for it by the side that hands it the handle (`SocketTable.hold`, then `adopt`).
/// The last hold to go frees the slot. Holding the memory is apart from the slot's name in
/// requests (its handle), which the owner core releases at the socket's close record
/// while the rings may still be in use by a connection finishing its FIN, or by a thread
/// still inside a call on the closed socket.
///
/// A freed slot's rings keep their pages for the next socket when they wrote little (a
/// connection that carried a short request and its response touches a few pages, and
/// giving them back costs a TLB shootdown on every CPU of the process, a fifth of the CPU
/// of a connections-per-second load when rings were unmapped): the next lessor zeroes the
/// control blocks it places (`wasWarm`). A ring that wrote more, or a table already holding
/// `SocketTable.warmLimit` warm slots, gives every page back, and they read as zero.
public final class SlotLease: @unchecked Sendable {
    public let slot: UInt32
    let table: SocketTable
    /// The slot's shared words (a `netmp_stream_slot` or `netmp_datagram_slot`).
    public let words: UnsafeMutableRawPointer
    /// The slot's stride.
    public let base: UnsafeMutableRawPointer
    /// The slot was warm: its last socket's control blocks are still in its stride, and
    /// whoever places rings there zeroes theirs first.
    public let wasWarm: Bool
    /// A hold another side took for this one (`SocketTable.adopt`): the socket's words are
    /// already set up.
    public let adopted: Bool

    init(slot: UInt32, table: SocketTable, base: UnsafeMutableRawPointer, wasWarm: Bool, adopted: Bool) {
        self.slot = slot
        self.table = table
        self.words = table.words(slot)
        self.base = base
        self.wasWarm = wasWarm
        self.adopted = adopted
    }

    /// A ring placed in the slot ends, having written at most `touched` bytes of its data.
    func retire(touched: Int) {
        if touched > SocketTable.keepTouched { table.markHeavy(slot) }
    }

    deinit { table.letGo(slot) }
}
