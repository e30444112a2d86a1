import Glibc

/// The memory of a byte ring addressed by absolute positions (which grow forever and are
/// taken modulo the capacity): the wrap-around copies every ring in netmp needs, in one place.
///
/// A ring of a page or more is mapped on its own (anonymous memory): its pages cost nothing
/// until the stream reaches them, so an idle connection's two 4 MiB rings take no memory at
/// all (through malloc each would touch a page for its chunk header). A ring little of which
/// was used is kept for the next connection (`RingCache`); the others are unmapped.
public struct RingStorage {
    public let bytes: UnsafeMutableRawBufferPointer
    let mapped: Bool
    public var capacity: Int { bytes.count }

    public init(capacity: Int) {
        if capacity >= Self.pageSize, let region = RingCache.take(capacity: capacity) ?? Self.map(capacity) {
            bytes = UnsafeMutableRawBufferPointer(start: region, count: capacity)
            mapped = true
        } else {
            bytes = .allocate(byteCount: capacity, alignment: 64)
            mapped = false
        }
    }

    static func map(_ capacity: Int) -> UnsafeMutableRawPointer? {
        let region = mmap(nil, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        return region == MAP_FAILED ? nil : region
    }

    /// Gives the memory back. A mapped ring of which at most `touched` bytes (from its
    /// start) were ever written, few enough, is kept for the next ring of its size.
    public func deallocate(touched: Int = .max) {
        guard mapped else { bytes.deallocate(); return }
        if touched <= RingCache.keepTouched, RingCache.keep(bytes.baseAddress!, capacity: capacity) { return }
        munmap(bytes.baseAddress, bytes.count)
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
/// short life touched (`keepTouched` at most), and nothing needs zeroing: a ring's bytes are
/// always written before they are read.
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
