/// A byte ring owned by one thread: the socket buffers of a connection while the stack runs
/// on its protocol thread alone. Data is copied in once and out once; out-of-order data is
/// written in place past the readable end and becomes readable when the gap fills.
/// (The per-core runtime replaces this with its MPSC/SPMC rings.)
public final class ByteRing {
    var storage: UnsafeMutableRawBufferPointer
    public private(set) var capacity: Int
    /// Absolute positions: bytes [head, tail) are held.
    public private(set) var head = 0
    public private(set) var tail = 0

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        storage = .allocate(byteCount: capacity, alignment: 64)
    }
    deinit { storage.deallocate() }

    public var count: Int { tail - head }
    public var free: Int { capacity - count }

    /// Copies `bytes` to `offset` bytes past the tail, without moving the tail.
    /// Precondition: the bytes fit in the free space.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= free, "write past the ring's free space")
        var done = 0
        while done < bytes.count {
            let position = (tail + offset + done) % capacity
            let n = min(bytes.count - done, capacity - position)
            UnsafeMutableRawBufferPointer(rebasing: storage[position..<(position + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[done..<(done + n)]))
            done += n
        }
    }

    /// Makes `count` bytes past the tail part of the held data.
    public func advanceTail(_ count: Int) {
        precondition(count >= 0 && count <= free)
        tail += count
    }

    /// Appends as much of `bytes` as fits; returns how much.
    public func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = min(bytes.count, free)
        write(UnsafeRawBufferPointer(rebasing: bytes[0..<n]), at: 0)
        tail += n
        return n
    }

    /// Copies `count` held bytes starting `offset` past the head into `destination`.
    public func copy(from offset: Int, count: Int, into destination: UnsafeMutableRawBufferPointer) {
        precondition(offset >= 0 && offset + count <= self.count && count <= destination.count)
        var done = 0
        while done < count {
            let position = (head + offset + done) % capacity
            let n = min(count - done, capacity - position)
            UnsafeMutableRawBufferPointer(rebasing: destination[done..<(done + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[position..<(position + n)]))
            done += n
        }
    }

    /// Drops `count` bytes from the head.
    public func discard(_ count: Int) {
        precondition(count >= 0 && count <= self.count)
        head += count
    }

    /// Enlarges the ring, keeping every byte at its absolute position: the held bytes and the
    /// out-of-order bytes written past the tail.
    public func grow(to newCapacity: Int) {
        guard newCapacity > capacity else { return }
        let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: newCapacity, alignment: 64)
        var position = head
        while position < head + capacity {
            let from = position % capacity, to = position % newCapacity
            let n = min(head + capacity - position, capacity - from, newCapacity - to)
            UnsafeMutableRawBufferPointer(rebasing: bigger[to..<(to + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[from..<(from + n)]))
            position += n
        }
        storage.deallocate()
        storage = bigger
        capacity = newCapacity
    }

    /// Moves up to `destination.count` bytes out; returns how many.
    public func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(count, destination.count)
        copy(from: 0, count: n, into: destination)
        head += n
        return n
    }
}
