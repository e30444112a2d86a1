import CNetMPChannel
import Glibc
import Synchronization

/// A socket's name in requests: its slot in the socket table and the slot's generation. A
/// handle outlives the socket harmlessly: once the slot is released its generation moves on,
/// and a request naming the old one finds nothing.
public struct SocketHandle: Hashable, Sendable {
    public var slot: UInt32
    public var generation: UInt32
    public init(slot: UInt32, generation: UInt32) {
        self.slot = slot
        self.generation = generation
    }

    /// The handle as one word, laid out as C's (slot, generation) pair in memory (what a
    /// `netmp_accepted` record holds): for storing it atomically.
    public var word: UInt64 { UInt64(slot) | UInt64(generation) << 32 }
    public init(word: UInt64) {
        self.init(slot: UInt32(truncatingIfNeeded: word), generation: UInt32(truncatingIfNeeded: word >> 32))
    }
}

/// The stack's sockets by handle: what a core finds when a request names one. Application
/// threads register a socket before its first request (a listener's core registers what it
/// accepted); the core that owns it resolves handles and, at the socket's last request
/// (close), releases the slot. Besides the owner only `accept` resolves, once, a handle no
/// close can have named yet. So a release never races a resolve.
///
/// Entries are `netmp_socket_entry` records in memory mapped once for the table's full
/// capacity and touched only as slots are first used. Free slots form a lock-free stack
/// whose head carries a tag against ABA; a slot never used is taken from the high-water
/// mark instead, so a fresh table needs no initialising pass.
public final class SocketTable: @unchecked Sendable {
    public enum Kind: UInt32, Sendable {
        case stream = 1   // NETMP_SOCKET_STREAM: a SocketChannel
        case datagram = 2 // NETMP_SOCKET_DATAGRAM: a DatagramChannel
    }
    public let capacity: Int
    let entries: UnsafeMutableRawPointer
    /// The free stack: tag << 32 | (slot + 1), 0 when empty.
    let freeHead = Atomic<UInt64>(0)
    /// Slots below this have been used.
    let highWater = Atomic<Int>(0)

    static let entrySize = MemoryLayout<netmp_socket_entry>.size

    /// A million sockets: 16 MiB of address space, resident only as far as it is used.
    public init(capacity: Int = 1 << 20) {
        precondition(capacity > 0 && capacity < Int(UInt32.max))
        self.capacity = capacity
        let region = mmap(nil, capacity * Self.entrySize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        precondition(region != MAP_FAILED, "socket table: mmap failed, errno \(errno)")
        entries = region!
    }
    deinit {
        // Entries still in use hold their objects: let them go with the table.
        for slot in 0..<min(highWater.load(ordering: .acquiring), capacity) where kind(UInt32(slot)).pointee.load(ordering: .relaxed) != 0 {
            let raw = object(UInt32(slot)).pointee.load(ordering: .relaxed)
            if let pointer = UnsafeRawPointer(bitPattern: UInt(raw)) { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        }
        munmap(entries, capacity * Self.entrySize)
    }

    typealias Entry = netmp_socket_entry
    func generation(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (entries + Int(slot) * Self.entrySize).atomic(UInt32.self, at: MemoryLayout<Entry>.offset(of: \Entry.generation)!)
    }
    func kind(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (entries + Int(slot) * Self.entrySize).atomic(UInt32.self, at: MemoryLayout<Entry>.offset(of: \Entry.kind)!)
    }
    /// The object while the slot is in use; the next free slot + 1 while it is free.
    func object(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (entries + Int(slot) * Self.entrySize).atomic(UInt64.self, at: MemoryLayout<Entry>.offset(of: \Entry.object)!)
    }

    /// Any thread: a handle for `object`, which the table holds until the handle is
    /// released; nil when the table is full (the call fails with ENFILE, as Linux's does
    /// when the system's file table is).
    public func register(_ object: AnyObject, kind: Kind) -> SocketHandle? {
        guard let slot = takeSlot() else { return nil }
        self.object(slot).pointee.store(UInt64(UInt(bitPattern: Unmanaged.passRetained(object).toOpaque())), ordering: .relaxed)
        self.kind(slot).pointee.store(kind.rawValue, ordering: .releasing)
        // Published to the core by the request ring that carries the handle.
        return SocketHandle(slot: slot, generation: generation(slot).pointee.load(ordering: .relaxed))
    }

    /// The owner core (or `accept`, for the handle it just took): what `handle` names, if it
    /// is still in use and of `kind` (a stale or forged handle gives nil). The table holds the object; the caller must not keep it
    /// past releasing the handle.
    public func resolve(_ handle: SocketHandle, as kind: Kind) -> AnyObject? {
        guard Int(handle.slot) < capacity, Int(handle.slot) < highWater.load(ordering: .acquiring),
              generation(handle.slot).pointee.load(ordering: .acquiring) == handle.generation,
              self.kind(handle.slot).pointee.load(ordering: .acquiring) == kind.rawValue,
              let pointer = UnsafeRawPointer(bitPattern: UInt(object(handle.slot).pointee.load(ordering: .acquiring))) else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// The owner core (or the registering thread, for a socket no request ever named):
    /// frees the slot and lets the object go. False, and nothing changes, for a stale handle.
    @discardableResult
    public func release(_ handle: SocketHandle) -> Bool {
        guard Int(handle.slot) < capacity, Int(handle.slot) < highWater.load(ordering: .acquiring),
              generation(handle.slot).pointee.load(ordering: .acquiring) == handle.generation,
              kind(handle.slot).pointee.load(ordering: .acquiring) != 0 else { return false }
        let slot = handle.slot
        let raw = object(slot).pointee.load(ordering: .acquiring)
        kind(slot).pointee.store(0, ordering: .relaxed)
        generation(slot).pointee.store(handle.generation &+ 1, ordering: .relaxed)
        if let pointer = UnsafeRawPointer(bitPattern: UInt(raw)) { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        // Push: the generation bump is published with the slot.
        var head = freeHead.load(ordering: .relaxed)
        while true {
            object(slot).pointee.store(head & 0xffff_ffff, ordering: .relaxed)
            let pushed = (head >> 32 &+ 1) << 32 | UInt64(slot + 1)
            let (exchanged, current) = freeHead.compareExchange(expected: head, desired: pushed, ordering: .releasing)
            if exchanged { return true }
            head = current
        }
    }

    /// Sockets in use, counted (for tests and `netmp stat`; not for the hot path).
    public var inUse: Int {
        (0..<min(highWater.load(ordering: .acquiring), capacity)).reduce(0) { $0 + (kind(UInt32($1)).pointee.load(ordering: .acquiring) != 0 ? 1 : 0) }
    }

    func takeSlot() -> UInt32? {
        var head = freeHead.load(ordering: .acquiring)
        while head & 0xffff_ffff != 0 {
            let slot = UInt32(head & 0xffff_ffff) - 1
            // Read before the exchange: if another thread took the slot meanwhile, the tag
            // moved and the exchange fails, whatever this read saw.
            let next = object(slot).pointee.load(ordering: .relaxed) & 0xffff_ffff
            let popped = (head >> 32 &+ 1) << 32 | next
            let (exchanged, current) = freeHead.compareExchange(expected: head, desired: popped, ordering: .acquiringAndReleasing)
            if exchanged { return slot }
            head = current
        }
        let fresh = highWater.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue
        guard fresh < capacity else {
            highWater.wrappingSubtract(1, ordering: .relaxed) // so the table is not walked past its end
            return nil
        }
        return UInt32(fresh)
    }
}
