/// A byte ring owned by one thread: the socket buffers of a connection while the stack runs
/// on its protocol thread alone. Data is copied in once and out once; out-of-order data is
/// written in place past the readable end and becomes readable when the gap fills.
/// (The per-core runtime replaces this with its MPSC/SPMC rings.)
public final class ByteRing {
    var storage: RingStorage
    public var capacity: Int { storage.capacity }
    /// Absolute positions: bytes [head, tail) are held.
    public private(set) var head = 0
    public private(set) var tail = 0

    public init(capacity: Int) {
        precondition(capacity > 0)
        storage = RingStorage(capacity: capacity)
    }
    deinit { storage.deallocate() }

    public var count: Int { tail - head }
    public var free: Int { capacity - count }

    /// Copies `bytes` to `offset` bytes past the tail, without moving the tail.
    /// Precondition: the bytes fit in the free space.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= free, "write past the ring's free space")
        storage.copyIn(bytes, at: tail + offset)
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
        storage.copyOut(from: head + offset, count: count, into: destination)
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
        let bigger = RingStorage(capacity: newCapacity)
        let linear = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
        storage.copyOut(from: head, count: capacity, into: linear)
        bigger.copyIn(UnsafeRawBufferPointer(linear), at: head)
        linear.deallocate()
        storage.deallocate()
        storage = bigger
    }

    /// Moves up to `destination.count` bytes out; returns how many.
    public func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(count, destination.count)
        copy(from: 0, count: n, into: destination)
        head += n
        return n
    }
}
