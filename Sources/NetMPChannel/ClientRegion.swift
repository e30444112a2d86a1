import CNetMPChannel
import Synchronization
import func Glibc.sysconf
import var Glibc._SC_PAGESIZE

/// Everything one client shares with the stack, in one memory (`netmp_region`): the head
/// (sizes, where each part starts, the free socket slots and reply slots), one request
/// ring per core, the reply slots, the socket table's entries, and one stride of socket
/// memory per slot, at `stride * slot`, where the socket's rings lie. The slot number alone
/// says where a socket's rings are, so either side of a socket (and, with the stack
/// service, either process) finds them from a handle, and nothing that says where they
/// lie is read from memory the other side writes (docs/STACK-SERVICE.md).
///
/// Anonymous memory serves one process; a memfd can be mapped again (`init(mapping:)`), at
/// another address or in another process, and both mappings see one region. Making and
/// mapping the memory are system calls, so they are NetMPSystem's (ClientRegion+Mapping,
/// and the `RegionMapping` each region holds); what is here is the layout.
///
/// The strides are mapped in chunks of `slotsPerChunk`, each the first time one of its
/// slots is used, with MAP_NORESERVE: a stride costs address space, and memory only for
/// the pages its socket touches. A stride's rings start on page boundaries, so a freed
/// socket's heavily used pages can be given back without touching its neighbours'.
public final class ClientRegion: @unchecked Sendable {
    public let capacity: Int
    /// Bytes of socket memory per slot (0: a table of names only).
    public let stride: Int
    /// Request rings (one per core) and the records each holds.
    public let cores: Int
    public let requestCapacity: Int
    /// The memfd, for a region that can be mapped again; nil for anonymous memory.
    public var descriptor: Int32? { mapping.descriptor }
    /// The memory this mapping of the region is in.
    let mapping: any RegionMapping
    /// The head, the request rings, the reply slots and the entries, mapped once.
    let front: UnsafeMutableRawPointer
    let frontBytes: Int
    package let layout: Layout
    /// Each chunk's address once mapped (0 before).
    let chunks: UnsafeMutablePointer<Atomic<UInt>>
    let chunkCount: Int
    static let slotsPerChunk = 64

    public static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    public static func pageAligned(_ bytes: Int) -> Int { (bytes + pageSize - 1) / pageSize * pageSize }

    public enum MemoryError: Error, Equatable { case system(errno: Int32), notARegion }

    /// Where each part starts, a function of the sizes alone (so a second mapping checks
    /// the head's offsets against it rather than trusting them).
    package struct Layout: Equatable {
        package let requestsOffset, requestRingBytes, repliesOffset, entriesOffset, memoryOffset: Int
        package init(capacity: Int, cores: Int, requestCapacity: Int) {
            requestsOffset = ClientRegion.pageSize
            requestRingBytes = MemoryLayout<netmp_request_ring>.size + requestCapacity * MemoryLayout<netmp_request>.size
            repliesOffset = requestsOffset + cores * requestRingBytes
            entriesOffset = ClientRegion.pageAligned(repliesOffset + Int(NETMP_REPLY_SLOTS) * MemoryLayout<netmp_reply>.size)
            memoryOffset = ClientRegion.pageAligned(entriesOffset + capacity * MemoryLayout<netmp_socket_entry>.size)
        }
    }

    /// This process's mapping of a region whose sizes are these (checked against its head
    /// when it was mapped again: `checked(_:)`); its front (the head, the request rings, the
    /// reply slots and the entries) is mapped here, the strides as used.
    package init(mapping: any RegionMapping, capacity: Int, stride: Int, cores: Int, requestCapacity: Int) throws(MemoryError) {
        self.capacity = capacity
        self.stride = stride
        self.cores = cores
        self.requestCapacity = requestCapacity
        self.mapping = mapping
        layout = Layout(capacity: capacity, cores: cores, requestCapacity: requestCapacity)
        frontBytes = layout.memoryOffset
        front = try mapping.map(at: 0, bytes: frontBytes)
        chunkCount = stride > 0 ? (capacity + Self.slotsPerChunk - 1) / Self.slotsPerChunk : 0
        chunks = .allocate(capacity: max(chunkCount, 1))
        for index in 0..<chunkCount { (chunks + index).initialize(to: Atomic<UInt>(0)) }
    }

    /// A new region's head: its sizes and where each part starts.
    package func writeHead() {
        typealias Head = netmp_region
        func put<T>(_ value: T, _ field: PartialKeyPath<Head>) {
            front.storeBytes(of: value, toByteOffset: MemoryLayout<Head>.offset(of: field)!, as: T.self)
        }
        put(UInt64(capacity), \Head.capacity)
        put(UInt64(stride), \Head.stride)
        put(UInt32(cores), \Head.cores)
        put(UInt32(requestCapacity), \Head.request_capacity)
        put(UInt64(layout.requestsOffset), \Head.requests_offset)
        put(UInt64(layout.repliesOffset), \Head.replies_offset)
        put(UInt64(layout.entriesOffset), \Head.entries_offset)
        put(UInt64(layout.memoryOffset), \Head.memory_offset)
        put(NETMP_REGION_MAGIC, \Head.magic)
    }

    /// The sizes in a region's head, read from memory another process made: each within
    /// bounds, and its offsets the ones the sizes give, or `notARegion`.
    package static func checked(_ head: netmp_region) throws(MemoryError)
        -> (capacity: Int, stride: Int, cores: Int, requestCapacity: Int) {
        guard head.magic == NETMP_REGION_MAGIC, head.capacity > 0, head.capacity < 1 << 24, head.cores <= 4096,
              head.request_capacity <= 1 << 16, head.request_capacity == 0 || head.request_capacity.nonzeroBitCount == 1,
              head.stride % UInt64(Self.pageSize) == 0, head.stride <= 1 << 30 else { throw .notARegion }
        let layout = Layout(capacity: Int(head.capacity), cores: Int(head.cores), requestCapacity: Int(head.request_capacity))
        guard head.requests_offset == UInt64(layout.requestsOffset), head.replies_offset == UInt64(layout.repliesOffset),
              head.entries_offset == UInt64(layout.entriesOffset), head.memory_offset == UInt64(layout.memoryOffset)
        else { throw .notARegion }
        return (Int(head.capacity), Int(head.stride), Int(head.cores), Int(head.request_capacity))
    }

    deinit {
        for index in 0..<chunkCount {
            let address = chunks[index].load(ordering: .acquiring)
            if let mapped = UnsafeMutableRawPointer(bitPattern: address) { mapping.unmap(mapped, bytes: chunkBytes) }
        }
        chunks.deinitialize(count: chunkCount)
        chunks.deallocate()
        mapping.unmap(front, bytes: frontBytes)
    }

    /// The region's head (`netmp_region`).
    package var head: UnsafeMutableRawPointer { front }
    /// Core `core`'s request ring (`netmp_request_ring` and its records).
    public func requestRing(_ core: Int) -> UnsafeMutableRawPointer {
        precondition(core < cores)
        return front + layout.requestsOffset + core * layout.requestRingBytes
    }
    /// The reply slots (NETMP_REPLY_SLOTS `netmp_reply`s).
    public var replySlots: UnsafeMutableRawPointer { front + layout.repliesOffset }
    /// The entry of `slot` (`netmp_socket_entry`).
    func entry(_ slot: UInt32) -> UnsafeMutableRawPointer {
        front + layout.entriesOffset + Int(slot) * MemoryLayout<netmp_socket_entry>.size
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
            guard let mapped = try? mapping.map(at: layout.memoryOffset + index * chunkBytes, bytes: chunkBytes) else { return nil }
            let (won, current) = chunks[index].compareExchange(expected: 0, desired: UInt(bitPattern: mapped), ordering: .acquiringAndReleasing)
            if won { address = UInt(bitPattern: mapped) } else {
                mapping.unmap(mapped, bytes: chunkBytes)
                address = current
            }
        }
        return UnsafeMutableRawPointer(bitPattern: address)! + (Int(slot) % Self.slotsPerChunk) * stride
    }

    /// Gives back the pages of `slot`'s stride: they read as zero from then on, and cost
    /// nothing until touched again.
    func discard(_ slot: UInt32) {
        if let base = base(of: slot) { mapping.discard(at: layout.memoryOffset + Int(slot) * stride, bytes: stride, mapped: base) }
    }

    /// A stream socket's stride: its send ring's data and then its receive ring's, each
    /// starting on a page (their control blocks are in the slot's entry).
    public static func streamStride(send: Int, receive: Int) -> Int {
        pageAligned(send) + pageAligned(receive)
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
/// control blocks it places in the stride (`wasWarm`; those in the entry were zeroed
/// with the slot's words). A ring that wrote more, or a table already holding
/// `SocketTable.warmLimit` warm slots, gives every page back, and they read as zero.
public final class SlotLease: @unchecked Sendable {
    // Two pointers and two flags: one lease per socket on each side of the stack service,
    // so the words and the stride are found from the slot number when used (the stride's
    // chunk was mapped when the lease was made, and stays mapped with the table).
    let table: SocketTable
    public let slot: UInt32
    /// The slot's shared words (a `netmp_stream_slot` or `netmp_datagram_slot`).
    public var words: UnsafeMutableRawPointer { table.words(slot) }
    /// The slot's stride.
    public var base: UnsafeMutableRawPointer { table.memory.base(of: slot)! }
    /// A stream socket's rings' control blocks, in the slot's entry.
    var sendControl: UnsafeMutableRawPointer { table.entry(slot) + MemoryLayout<netmp_socket_entry>.offset(of: \netmp_socket_entry.send_ring)! }
    var receiveControl: UnsafeMutableRawPointer { table.entry(slot) + MemoryLayout<netmp_socket_entry>.offset(of: \netmp_socket_entry.receive_ring)! }
    /// The slot was warm: its last socket's control blocks are still in its stride, and
    /// whoever places rings there zeroes theirs first.
    public let wasWarm: Bool
    /// A hold another side took for this one (`SocketTable.adopt`): the socket's words are
    /// already set up.
    public let adopted: Bool

    init(slot: UInt32, table: SocketTable, wasWarm: Bool, adopted: Bool) {
        self.slot = slot
        self.table = table
        self.wasWarm = wasWarm
        self.adopted = adopted
    }

    /// A ring placed in the slot ends, having written at most `touched` bytes of its data.
    func retire(touched: Int) {
        if touched > SocketTable.keepTouched { table.markHeavy(slot) }
    }

    deinit { table.letGo(slot) }
}

extension ClientRegion {
    /// The region head's `names_pending`: names a client sent over its names socket that
    /// core 0 has not taken (the client counts each after sending it).
    var namesWord: UnsafeMutablePointer<Atomic<UInt32>> {
        head.atomic(UInt32.self, at: MemoryLayout<netmp_region>.offset(of: \netmp_region.names_pending)!)
    }
    /// Client: one more name waits in the names socket (sequentially consistent, before
    /// the look at core 0's sleep announcement, as a record's publication is).
    public func countNamePending() { namesWord.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent) }
    /// Core 0: how many names wait, taking them (the count is the client's word: a
    /// receive that finds none ends the taking early).
    public func takeNamesPending() -> UInt32 { namesWord.pointee.exchange(0, ordering: .sequentiallyConsistent) }
    /// Core 0: names it could not take this turn, for the next.
    public func returnNamesPending(_ count: UInt32) { namesWord.pointee.wrappingAdd(count, ordering: .sequentiallyConsistent) }
    /// Core 0's look before it sleeps.
    public var namesPending: Bool { namesWord.pointee.load(ordering: .sequentiallyConsistent) != 0 }
}
