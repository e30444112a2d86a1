import NetMPWire

/// The memory of a byte ring addressed by absolute positions (which grow forever and are
/// taken modulo the capacity): the wrap-around copies every ring in netmp needs, in one place.
///
/// A ring has `headerLength` bytes of control block (the C layout of netmp_channel.h:
/// positions and wait words) and its data. A socket's rings are placed in its slot of the
/// socket table (`placed`, ClientRegion), which the slot's lease gives back: a stream
/// socket's control blocks in the slot's entry and their data in its stride, a datagram
/// socket's rings each with its control block in front of its data in the stride. A ring
/// made on its own (tests, a table that is full) is allocated, control block in front
/// (zeroed; its data is written before it is read). The channel makes no system call, so
/// the allocator, not mmap, decides where a large one's pages come from.
public struct RingStorage {
    /// The control block, `headerLength` bytes, zero when made.
    public let block: UnsafeMutableRawPointer
    /// The data: `capacity` bytes (right after the control block, unless placed apart).
    public let bytes: UnsafeMutableRawBufferPointer
    let headerLength: Int
    /// Who gives the memory back.
    enum Owner {
        case allocated
        /// The slot's lease: placed in a socket table's slot.
        case placed(SlotLease)
    }
    let owner: Owner
    public var capacity: Int { bytes.count }

    public init(capacity: Int, headerLength: Int = 0) {
        block = UnsafeMutableRawPointer.allocate(byteCount: max(headerLength + capacity, 1), alignment: 64)
        block.initializeMemory(as: UInt8.self, repeating: 0, count: headerLength)
        owner = .allocated
        self.headerLength = headerLength
        bytes = UnsafeMutableRawBufferPointer(start: block + headerLength, count: capacity)
    }

    /// A ring with its control block at `block` and its data at `data` (right after the
    /// block when nil), held by `owner` (`.placed`, with a hold on the slot): its control
    /// block is zero, or zeroed here when the lessor found the slot warm.
    init(placedAt block: UnsafeMutableRawPointer, data: UnsafeMutableRawPointer? = nil, capacity: Int, headerLength: Int, owner: Owner) {
        self.block = block
        self.headerLength = headerLength
        self.owner = owner
        if case .placed(let lease) = owner, lease.wasWarm {
            block.initializeMemory(as: UInt8.self, repeating: 0, count: headerLength) // the last socket's
        }
        bytes = UnsafeMutableRawBufferPointer(start: data ?? block + headerLength, count: capacity)
    }

    /// Gives the memory back, of which at most `touched` bytes of data (from its start)
    /// were ever written: a placed ring tells its lease, which keeps or discards the pages.
    public func deallocate(touched: Int = .max) {
        switch owner {
        case .placed(let lease): lease.retire(touched: min(max(touched, 0), capacity))
        case .allocated: block.deallocate()
        }
    }

    /// Where `position` lies in a ring of `capacity` places: any position, also one a
    /// client wrote (it wraps, it never traps), lands inside the ring.
    @inline(__always) static func index(_ position: Int, _ capacity: Int) -> Int {
        Int(UInt(bitPattern: position) % UInt(capacity))
    }

    /// Copies `source` to positions [position, position + source.count).
    /// Where it wraps, the part at the ring's start is copied first: a source in the ring's
    /// own free space (a payload the link read in place, to be stored further along) is
    /// then read before any of it is overwritten (each part copies as memmove does).
    public func copyIn(_ source: UnsafeRawBufferPointer, at position: Int) {
        let at = Self.index(position, capacity)
        let first = capacity - at
        if source.count > first && source.count - first <= at {
            UnsafeMutableRawBufferPointer(rebasing: bytes[0..<(source.count - first)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[first...]))
            UnsafeMutableRawBufferPointer(rebasing: bytes[at...])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<first]))
            return
        }
        var done = 0
        while done < source.count {
            let at = Self.index(position &+ done, capacity)
            let n = min(source.count - done, capacity - at)
            UnsafeMutableRawBufferPointer(rebasing: bytes[at..<(at + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[done..<(done + n)]))
            done += n
        }
    }

    /// Positions [position, position + count) where they lie: one span, or two where the
    /// ring wraps (`count` at most the capacity).
    public func spans(from position: Int, count: Int) -> PayloadSpans {
        precondition(count >= 0 && count <= capacity)
        let at = Self.index(position, capacity)
        let n = min(count, capacity - at)
        let first = UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)])
        guard n < count else { return PayloadSpans(first) }
        return PayloadSpans(first, UnsafeRawBufferPointer(rebasing: bytes[0..<(count - n)]))
    }

    /// Copies positions [position, position + count) into the start of `destination`.
    public func copyOut(from position: Int, count: Int, into destination: UnsafeMutableRawBufferPointer) {
        var done = 0
        while done < count {
            let at = Self.index(position &+ done, capacity)
            let n = min(count - done, capacity - at)
            UnsafeMutableRawBufferPointer(rebasing: destination[done..<(done + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)]))
            done += n
        }
    }
}
