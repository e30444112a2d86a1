import CNetMPLinux
import Glibc
import NetMPChannel
import Synchronization

/// The stack process's bells for one client's doorbells, by the slot whose entry holds the
/// doorbell. A client names a doorbell's placeholder (by SCM_RIGHTS) before its first
/// poller sleeps; the stack puts an eventfd of its own into it (`netmp_bell_into`), keeps
/// that here and lets the placeholder go. The cores' views of the client's sockets ring
/// the bell found here, never a descriptor number read from the client's memory, which the
/// client could set to any of the stack's own descriptors; and no client holds a bell, so
/// none can make a core's write to it block (a bell made blocking and filled to its limit).
///
/// A slot's number, once given, stays the slot's until this object goes: a new eventfd for
/// the slot (a socket made in it later) replaces the file behind the same number (dup2), so
/// a core that read the number a moment before rings one eventfd or the other, never a
/// descriptor the stack reused for something else. The copies close when the last view
/// that could ring them is gone (the cores' views hold their client's table, which holds
/// this).
public final class DoorbellDescriptors: BellCopies, @unchecked Sendable {
    public let capacity: Int
    /// Per slot: the descriptor + 1, 0 for none. Written only by the thread that serves the
    /// client's names (core 0); read by the cores.
    let words: UnsafeMutablePointer<Atomic<Int32>>
    /// Slots below this may hold a descriptor (the scan at the end stops here).
    var used = 0
    /// Copies held by every instance in this process (diagnostics: a stack whose clients
    /// all went holds none).
    public static var held: Int { heldCount.load(ordering: .relaxed) }
    static let heldCount = Atomic<Int>(0)

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        let bytes = capacity * MemoryLayout<Int32>.stride
        // Address space only: pages appear as slots are registered.
        let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        precondition(mapped != MAP_FAILED, "doorbell descriptors: cannot map \(bytes) bytes")
        words = mapped!.bindMemory(to: Atomic<Int32>.self, capacity: capacity)
    }

    deinit {
        for slot in 0..<used {
            let stored = words[slot].load(ordering: .relaxed)
            if stored > 0 {
                close(stored - 1)
                Self.heldCount.wrappingSubtract(1, ordering: .relaxed)
            }
        }
        munmap(UnsafeMutableRawPointer(words), capacity * MemoryLayout<Int32>.stride)
    }

    /// The word a view of the doorbell in `slot` reads its descriptor from (+ 1, as the
    /// shared words keep it); nil for a slot past the table.
    public func word(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<Int32>>? {
        Int(slot) < capacity ? words + Int(slot) : nil
    }

    /// Puts a bell into `placeholder` (the client's, closed here) and keeps it as the
    /// eventfd of the doorbell in `slot`; false for a slot past the table, a descriptor that
    /// is not an epoll instance, or a bell that cannot be placed.
    @discardableResult
    public func register(placeholder: Int32, for slot: UInt32) -> Bool {
        let fd = word(slot) == nil ? -EINVAL : netmp_bell_into(placeholder)
        close(placeholder)
        guard let word = word(slot), fd >= 0 else { return false }
        let current = word.pointee.load(ordering: .acquiring)
        if current > 0 {
            let placed = netmp_place_file(fd, current - 1, 1) == 0
            close(fd)
            return placed
        }
        used = max(used, Int(slot) + 1)
        Self.heldCount.wrappingAdd(1, ordering: .relaxed)
        word.pointee.store(fd + 1, ordering: .sequentiallyConsistent)
        return true
    }
}
