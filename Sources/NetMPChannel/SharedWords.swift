import CNetMPChannel
import Synchronization

extension UnsafeMutableRawPointer {
    /// The word at `offset` in a C-layout block of netmp_channel.h (an offset from
    /// `MemoryLayout<Block>.offset(of:)`), seen as an atomic. The block's bytes must already
    /// hold the value (zero bytes are Atomic(0)): nothing is written, so binding a word of a
    /// freshly mapped ring leaves its page untouched.
    ///
    /// A type that finds its words at every use takes their offsets from netmp_channel.h's
    /// constants (`static var tailAt: Int { NETMP_RECEIVE_RING_TAIL_AT }`). Optimized code
    /// folds an `offset(of:)` written in a function, but one kept in a `static let` is a
    /// lazily made global (a swift_once call at every use), and a debug or sanitizer build
    /// walks the key path at every call.
    func atomic<Value: AtomicRepresentable>(_: Value.Type, at offset: Int) -> UnsafeMutablePointer<Atomic<Value>> {
        (self + offset).bindMemory(to: Atomic<Value>.self, capacity: 1)
    }

    /// Memory of its own for one C-layout block of netmp_channel.h, zeroed (zero bytes are
    /// each word's first value); the caller deallocates it.
    static func zeroed<Block>(_: Block.Type, alignment: Int = MemoryLayout<Block>.alignment) -> UnsafeMutableRawPointer {
        zeroed(bytes: MemoryLayout<Block>.size, alignment: alignment)
    }

    /// `bytes` of zeroed memory of its own, cache-line aligned by default (a C control
    /// block and the records after it); the caller deallocates it.
    static func zeroed(bytes: Int, alignment: Int = Int(NETMP_CACHE_LINE)) -> UnsafeMutableRawPointer {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: alignment)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return memory
    }
}
