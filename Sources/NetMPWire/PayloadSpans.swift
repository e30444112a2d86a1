/// A frame's payload left where it lies (a socket's send ring) rather than copied behind the
/// headers: the link's write gathers it from there, so the bytes a program sent are copied
/// once on their way out of the stack (by the kernel, into its buffer) instead of twice. A
/// ring that wraps holds the payload in two pieces; `none` is a frame written whole.
///
/// Only pointers: the memory must stay as it is until the frame is written (a send ring's
/// unacknowledged bytes do, as only the acknowledgment frees them).
public struct PayloadSpans {
    public let first: UnsafeRawBufferPointer
    public let second: UnsafeRawBufferPointer

    /// `second` follows `first`; an empty `first` gives way to `second`.
    public init(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        self.first = first.isEmpty ? second : first
        self.second = first.isEmpty ? UnsafeRawBufferPointer(start: nil, count: 0) : second
    }

    public static var none: PayloadSpans { PayloadSpans(UnsafeRawBufferPointer(start: nil, count: 0)) }

    public var count: Int { first.count + second.count }
    public var isEmpty: Bool { count == 0 }

    /// Copies the payload into the last `count` bytes of `frame`, which are kept for it, for
    /// a frame that must be whole (looped back, queued for a neighbour, captured, completed
    /// in software).
    public func place(atEndOf frame: UnsafeMutableRawBufferPointer) {
        precondition(count <= frame.count)
        let start = frame.count - count
        if !first.isEmpty {
            UnsafeMutableRawBufferPointer(rebasing: frame[start..<(start + first.count)]).copyMemory(from: first)
        }
        if !second.isEmpty {
            UnsafeMutableRawBufferPointer(rebasing: frame[(start + first.count)...]).copyMemory(from: second)
        }
    }
}
