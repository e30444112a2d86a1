/// The memory of a byte ring addressed by absolute positions (which grow forever and are
/// taken modulo the capacity): the wrap-around copies every ring in netmp needs, in one place.
public struct RingStorage {
    public let bytes: UnsafeMutableRawBufferPointer
    public var capacity: Int { bytes.count }

    public init(capacity: Int) { bytes = .allocate(byteCount: capacity, alignment: 64) }
    public func deallocate() { bytes.deallocate() }

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
