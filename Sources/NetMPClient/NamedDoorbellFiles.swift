import CNetMPLinux
import Glibc
import NetMPStack
import Synchronization

/// A client process's copies of the placeholders whose bells it named to the stack, by
/// slot, so that a later socket in the same slot can stand on the same file and send no
/// name: the stack's copy of the slot's bell already rings the bell inside it. Naming
/// costs four system calls here (a bell made and put into the placeholder with the common
/// bell, then closed), a message with a descriptor on each side and three system calls on
/// core 0; a connections-per-second load makes a socket per connection, mostly in the same
/// few slots (freed slots are reused first).
///
/// A copy stands only while the doorbell's names count (`Doorbell.namesSent`, in the
/// shared region) is what it was when the copy was kept: any later naming of the slot, by
/// this process or another of the client, made the stack ring another file. At most
/// `limit` copies are kept, since each is a descriptor of the program's process.
final class NamedDoorbellFiles: @unchecked Sendable {
    static let limit = 64
    let capacity: Int
    /// Per slot: names count << 32 | (descriptor + 1), 0 for none.
    let entries: UnsafeMutablePointer<Atomic<UInt64>>
    let kept = Atomic<Int>(0)
    /// The slot + 1 whose copy each descriptor number below `numbers` is (0: none): the
    /// copies live among the program's descriptors, and a program that closes one (close,
    /// dup2 over it, close_range) must not leave an entry naming a number it may reuse.
    static let numbers = 1 << 16
    let slotOfNumber: UnsafeMutablePointer<Atomic<UInt32>>

    init(capacity: Int) {
        self.capacity = capacity
        let bytes = capacity * MemoryLayout<UInt64>.stride
        // Address space only: pages appear as slots are named.
        let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        precondition(mapped != MAP_FAILED, "named doorbell files: cannot map \(bytes) bytes")
        entries = mapped!.bindMemory(to: Atomic<UInt64>.self, capacity: capacity)
        let numberBytes = Self.numbers * MemoryLayout<UInt32>.stride
        let numbers = mmap(nil, numberBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        precondition(numbers != MAP_FAILED, "named doorbell files: cannot map \(numberBytes) bytes")
        slotOfNumber = numbers!.bindMemory(to: Atomic<UInt32>.self, capacity: Self.numbers)
    }

    deinit {
        for slot in 0..<capacity where entries[slot].load(ordering: .relaxed) != 0 {
            _ = netmp_close_descriptor(Int32(truncatingIfNeeded: entries[slot].load(ordering: .relaxed) & 0xffff_ffff) - 1)
        }
        munmap(UnsafeMutableRawPointer(entries), capacity * MemoryLayout<UInt64>.stride)
        munmap(UnsafeMutableRawPointer(slotOfNumber), Self.numbers * MemoryLayout<UInt32>.stride)
    }

    /// The bell in `file` was just named for `slot` as its `count`th name: a copy of the
    /// file is kept (replacing the slot's older one), unless `limit` copies are kept already.
    func keep(_ file: Int32, for slot: UInt32, count: UInt32) {
        guard Int(slot) < capacity else { return }
        let entry = entries + Int(slot)
        let replacing = entry.pointee.load(ordering: .acquiring) != 0
        guard replacing || kept.load(ordering: .relaxed) < Self.limit else { return }
        let copy = netmp_copy_descriptor(file, 1)
        guard copy >= 0 else { return }
        guard Int(copy) < Self.numbers else { _ = netmp_close_descriptor(copy); return }
        slotOfNumber[Int(copy)].store(slot + 1, ordering: .releasing)
        let old = entry.pointee.exchange(UInt64(count) << 32 | UInt64(UInt32(copy + 1)), ordering: .acquiringAndReleasing)
        if old != 0 {
            let number = Int32(truncatingIfNeeded: old & 0xffff_ffff) - 1
            slotOfNumber[Int(number)].store(0, ordering: .releasing)
            _ = netmp_close_descriptor(number)
        } else {
            kept.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// The program is closing descriptor `number` (or putting another file behind it):
    /// if it is a kept copy, the entry goes (the program's close closes it).
    func closing(_ number: Int32) {
        guard number >= 0, Int(number) < Self.numbers,
              slotOfNumber[Int(number)].load(ordering: .relaxed) != 0 else { return } // reads touch no page
        let slot = slotOfNumber[Int(number)].exchange(0, ordering: .acquiringAndReleasing)
        guard slot > 0 else { return }
        let entry = entries + Int(slot - 1)
        let stored = entry.pointee.load(ordering: .acquiring)
        guard Int32(truncatingIfNeeded: stored & 0xffff_ffff) - 1 == number,
              entry.pointee.compareExchange(expected: stored, desired: 0, ordering: .acquiringAndReleasing).exchanged else { return }
        kept.wrappingSubtract(1, ordering: .relaxed)
    }

    /// The socket whose doorbell is `doorbell` (in `slot`, its descriptor `fd`) stands on
    /// the slot's kept file, if the stack still rings that one: the file is placed behind
    /// `fd` (close-on-exec as `cloexec` says) and the doorbell marked named. False when
    /// nothing was kept or it no longer stands. An edge a previous socket left in the file
    /// stays: epoll's edge-triggered registration ignores it, and a poll() that sees it
    /// wakes once and takes it out (Doorbell.leave), so accepting costs no call.
    func adopt(into fd: Int32, cloexec: Bool, for doorbell: Doorbell) -> Bool {
        guard let file = standingFile(for: doorbell), netmp_place_file(file, fd, cloexec ? 1 : 0) == 0 else { return false }
        doorbell.markNamed()
        return true
    }

    /// As `adopt`, for a socket that has no descriptor yet: a new descriptor for the
    /// slot's kept file, at the lowest free number as socket() gives it (one call, where a
    /// placeholder made and then replaced costs two and a file made and freed); nil when
    /// nothing stands.
    func copy(cloexec: Bool, for doorbell: Doorbell) -> Int32? {
        guard let file = standingFile(for: doorbell) else { return nil }
        let copy = netmp_copy_descriptor(file, cloexec ? 1 : 0)
        guard copy >= 0 else { return nil }
        doorbell.markNamed()
        return copy
    }

    /// The kept file of the doorbell's slot, if the stack still rings the bell in it.
    private func standingFile(for doorbell: Doorbell) -> Int32? {
        guard let slot = doorbell.slot, Int(slot) < capacity else { return nil }
        let stored = entries[Int(slot)].load(ordering: .acquiring)
        guard stored != 0, UInt32(truncatingIfNeeded: stored >> 32) == doorbell.namesSent else { return nil }
        return Int32(truncatingIfNeeded: stored & 0xffff_ffff) - 1
    }
}
