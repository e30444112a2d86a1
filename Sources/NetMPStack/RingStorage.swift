import Glibc

/// The memory of a byte ring addressed by absolute positions (which grow forever and are
/// taken modulo the capacity): the wrap-around copies every ring in netmp needs, in one place.
///
/// A ring's memory starts with `headerLength` bytes for its control block (the C layout of
/// netmp_channel.h: positions and wait words), and its data follows: one object, which a
/// later step places in memory another process maps (docs/STACK-SERVICE.md).
///
/// A ring of a page or more is mapped on its own (anonymous memory): its pages cost nothing
/// until the stream reaches them, and a fresh control block is zero without a write, so an
/// idle connection's two 4 MiB rings take no memory at all. A ring little of which was used
/// is kept for the next connection (`RingCache`); the others are unmapped.
public struct RingStorage {
    /// The control block, `headerLength` bytes, zero when made (a fresh map is, without a
    /// write; a reused or allocated one is cleared).
    public let block: UnsafeMutableRawPointer
    /// The data: `capacity` bytes right after the control block.
    public let bytes: UnsafeMutableRawBufferPointer
    let headerLength: Int
    let mapped: Bool
    public var capacity: Int { bytes.count }

    public init(capacity: Int, headerLength: Int = 0) {
        let total = headerLength + capacity
        if total >= Self.pageSize, let cached = RingCache.take(capacity: total) {
            block = cached
            mapped = true
            cached.initializeMemory(as: UInt8.self, repeating: 0, count: headerLength) // its last user's positions
        } else if total >= Self.pageSize, let fresh = Self.map(total) {
            block = fresh
            mapped = true
        } else {
            block = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 64)
            block.initializeMemory(as: UInt8.self, repeating: 0, count: headerLength)
            mapped = false
        }
        self.headerLength = headerLength
        bytes = UnsafeMutableRawBufferPointer(start: block + headerLength, count: capacity)
    }

    static func map(_ capacity: Int) -> UnsafeMutableRawPointer? {
        let region = mmap(nil, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        return region == MAP_FAILED ? nil : region
    }

    /// Gives the memory back. A mapped ring of which at most `touched` bytes (from its
    /// start) were ever written, few enough, is kept for the next ring of its size.
    public func deallocate(touched: Int = .max) {
        guard mapped else { block.deallocate(); return }
        let total = headerLength + capacity
        if headerLength + min(touched, capacity) <= RingCache.keepTouched, RingCache.keep(block, capacity: total) { return }
        munmap(block, total)
    }

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Copies `source` to positions [position, position + source.count).
    public func copyIn(_ source: UnsafeRawBufferPointer, at position: Int) {
        var done = 0
        while done < source.count {
            let at = (position + done) % capacity
            let n = min(source.count - done, capacity - at)
            UnsafeMutableRawBufferPointer(rebasing: bytes[at..<(at + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[done..<(done + n)]))
            done += n
        }
    }

    /// Copies positions [position, position + count) into the start of `destination`.
    public func copyOut(from position: Int, count: Int, into destination: UnsafeMutableRawBufferPointer) {
        var done = 0
        while done < count {
            let at = (position + done) % capacity
            let n = min(count - done, capacity - at)
            UnsafeMutableRawBufferPointer(rebasing: destination[done..<(done + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)]))
            done += n
        }
    }
}

/// Freed rings kept for reuse, by size. Unmapping a ring costs a TLB shootdown on every CPU
/// the process runs on, which made a fifth of the CPU of a connections-per-second load
/// (wrk with `Connection: close` through netmp); a kept ring costs only the few pages its
/// short life touched (`keepTouched` at most), and only its control block needs zeroing
/// (RingStorage does it): a ring's data is always written before it is read.
enum RingCache {
    static let keepTouched = 64 << 10
    static let limit = 512
    /// Kept regions by capacity, under `lock` (a pthread mutex, which ThreadSanitizer sees).
    nonisolated(unsafe) static var regions: [Int: [UInt]] = [:]
    static let lock = PthreadLock()

    static func take(capacity: Int) -> UnsafeMutableRawPointer? {
        let address = lock.locked { regions[capacity]?.popLast() }
        return address.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
    }

    static func keep(_ region: UnsafeMutableRawPointer, capacity: Int) -> Bool {
        lock.locked {
            guard regions[capacity, default: []].count < limit else { return false }
            regions[capacity, default: []].append(UInt(bitPattern: region))
            return true
        }
    }
}
