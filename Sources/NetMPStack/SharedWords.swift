import Synchronization

extension UnsafeMutableRawPointer {
    /// The word at `offset` in a C-layout block of netmp_channel.h (an offset from
    /// `MemoryLayout<Block>.offset(of:)`), seen as an atomic. The block's bytes must already
    /// hold the value (zero bytes are Atomic(0)): nothing is written, so binding a word of a
    /// freshly mapped ring leaves its page untouched.
    func atomic<Value: AtomicRepresentable>(_: Value.Type, at offset: Int) -> UnsafeMutablePointer<Atomic<Value>> {
        (self + offset).bindMemory(to: Atomic<Value>.self, capacity: 1)
    }
}
