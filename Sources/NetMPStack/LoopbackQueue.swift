/// The frames a host sent to its own address, waiting for the host to receive them: its
/// loopback interface. Programs on one stack that connect to the stack's address talk
/// through here, never through the TAP (the kernel on the TAP's other side would not send
/// them back).
///
/// A byte ring of whole frames, each stored contiguously with a small header (a frame that
/// would cross the end starts again at the front, behind a skip mark), so a frame costs one
/// copy in and is received in place. Frames are taken in the order they were put; frames
/// put while one is being received (its answer, say) wait for the next `take`, and never
/// overwrite the frame being received, whose bytes stay held until it returns. The memory
/// is taken on the first frame: a stack whose programs never talk to themselves pays
/// nothing. Not thread-safe: one owner core uses it.
final class LoopbackQueue {
    /// Twice a connection's largest window (4 MiB, TCPConfiguration's receive buffer):
    /// two sockets exchanging full windows both ways, in 64 KiB super-segments, and their
    /// ACKs fit. A frame that finds no room is dropped (and counted), as a full device
    /// queue drops, and TCP sends it again. Its pages are touched only as far as it fills.
    static let capacity = 8 << 20
    static let headerLength = 8
    static let skipMark: UInt32 = .max

    private var storage: UnsafeMutableRawBufferPointer?
    /// Free-running byte counts: what was put, and what was taken.
    private var written = 0
    private var read = 0

    deinit { storage?.deallocate() }

    var isEmpty: Bool { written == read }

    /// Stores a copy of `frame`, which stands for `wireSegments` segments; false if there
    /// is no room for it.
    func put(_ frame: UnsafeRawBufferPointer, wireSegments: Int) -> Bool {
        let need = Self.headerLength + (frame.count + 7) & ~7
        guard need <= Self.capacity / 2 else { return false }
        let bytes = storage ?? allocate()
        var at = written % Self.capacity
        let toEnd = Self.capacity - at
        let skip = need > toEnd ? toEnd : 0
        guard written + skip + need - read <= Self.capacity else { return false }
        if skip > 0 {
            bytes.storeBytes(of: Self.skipMark, toByteOffset: at, as: UInt32.self)
            written += skip
            at = 0
        }
        bytes.storeBytes(of: UInt32(frame.count), toByteOffset: at, as: UInt32.self)
        bytes.storeBytes(of: UInt32(clamping: wireSegments), toByteOffset: at + 4, as: UInt32.self)
        if let base = frame.baseAddress {
            (bytes.baseAddress! + at + Self.headerLength).copyMemory(from: base, byteCount: frame.count)
        }
        written += need
        return true
    }

    /// Hands each frame that was waiting when the call began to `receive` (its bytes and
    /// the segments it stands for), oldest first; returns how many.
    func take(_ receive: (UnsafeRawBufferPointer, Int) -> Void) -> Int {
        guard let bytes = storage else { return 0 }
        let end = written
        var taken = 0
        while read < end {
            let at = read % Self.capacity
            let length = bytes.load(fromByteOffset: at, as: UInt32.self)
            if length == Self.skipMark { read += Self.capacity - at; continue }
            let segments = bytes.load(fromByteOffset: at + 4, as: UInt32.self)
            let start = at + Self.headerLength
            receive(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + Int(length))]), Int(segments))
            read += Self.headerLength + (Int(length) + 7) & ~7
            taken += 1
        }
        return taken
    }

    private func allocate() -> UnsafeMutableRawBufferPointer {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.capacity, alignment: 64)
        storage = bytes
        return bytes
    }
}
