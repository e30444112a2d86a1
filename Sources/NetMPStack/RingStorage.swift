import Glibc

/// The memory of a byte ring addressed by absolute positions (which grow forever and are
/// taken modulo the capacity): the wrap-around copies every ring in netmp needs, in one place.
///
/// A ring of a page or more is mapped on its own (anonymous memory): its pages cost nothing
/// until the stream reaches them, so an idle connection's two 4 MiB rings take no memory at
/// all (through malloc each would touch a page for its chunk header), and they go back to
/// the system when the ring does.
public struct RingStorage {
    public let bytes: UnsafeMutableRawBufferPointer
    let mapped: Bool
    public var capacity: Int { bytes.count }

    public init(capacity: Int) {
        if capacity >= Self.pageSize,
           let region = mmap(nil, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
           region != MAP_FAILED {
            bytes = UnsafeMutableRawBufferPointer(start: region, count: capacity)
            mapped = true
        } else {
            bytes = .allocate(byteCount: capacity, alignment: 64)
            mapped = false
        }
    }

    public func deallocate() {
        if mapped { munmap(bytes.baseAddress, bytes.count) } else { bytes.deallocate() }
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
