import CNetMPChannel
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

/// The stack's sockets by handle: which sockets a request may name, and the memory the
/// sockets' two sides share. No entry holds a reference: each side finds what it needs
/// from the slot number (ClientRegion). Application threads name a socket before its
/// first request (a listener's core names what it accepted); the core that owns it
/// resolves handles and, at the socket's last request (close), releases the name. Besides
/// the owner only `accept` resolves, once, a handle no close can have named yet. So a
/// release never races a resolve.
///
/// A slot is first leased (`lease()`): its shared words (`netmp_socket_entry.words`) and
/// its stride of `memory` become the socket's while any side holds it (SlotLease: each
/// side's view of the socket holds it, and the last hold frees it). Naming the slot
/// (`register`) lets requests reach the socket. A slot named without a lease (a socket
/// whose rings live elsewhere) is freed with its name.
///
/// Entries are `netmp_socket_entry` records in memory mapped once for the table's full
/// capacity and touched only as slots are first used (ClientRegion, which also holds the
/// head with the free slots, so a second mapping of a shared table takes and frees the same
/// slots). Free slots form a lock-free stack
/// whose head carries a tag against ABA; a slot never used is taken from the high-water
/// mark instead, so a fresh table needs no initialising pass.
public final class SocketTable: @unchecked Sendable {
    public enum Kind: UInt32, Sendable {
        case stream = 1   // NETMP_SOCKET_STREAM: a SocketChannel
        case datagram = 2 // NETMP_SOCKET_DATAGRAM: a DatagramChannel
        case listener = 3 // NETMP_SOCKET_LISTENER: a listening socket's accept queues
    }
    public let capacity: Int
    /// The head, the entries and the slots' strides.
    public let memory: ClientRegion
    /// The free stack, in the head: tag << 32 | (slot + 1), 0 when empty.
    let freeHead: UnsafeMutablePointer<Atomic<UInt64>>
    /// Slots below this have been used.
    let highWater: UnsafeMutablePointer<Atomic<Int>>
    /// Free slots whose rings kept their pages (SlotLease).
    let warmSlots: UnsafeMutablePointer<Atomic<Int>>
    static let warmLimit = 1024
    /// A ring that wrote at most this much keeps its pages for the next socket.
    static let keepTouched = 64 << 10

    /// In the stack process: the stack's bells for the client's doorbells, which
    /// the cores' views ring (nil: the numbers in the doorbells' words are this process's).
    public let doorbellDescriptors: (any BellCopies)?
    /// In a client of the stack service: hands the placeholder of the doorbell in a slot to
    /// the stack (false when it could not), before the doorbell's first poller, with the
    /// names count (Doorbell.naming).
    public let namingDoorbell: (@Sendable (UInt32, Int32, UInt32) -> Bool)?

    /// The socket table of `region`; `doorbellDescriptors` on the stack's side of a client
    /// process, `namingDoorbell` on the client's.
    public init(region memory: ClientRegion, doorbellDescriptors: (any BellCopies)? = nil,
                namingDoorbell: (@Sendable (UInt32, Int32, UInt32) -> Bool)? = nil) {
        self.memory = memory
        self.doorbellDescriptors = doorbellDescriptors
        self.namingDoorbell = namingDoorbell
        capacity = memory.capacity
        typealias Head = netmp_region
        freeHead = memory.head.atomic(UInt64.self, at: MemoryLayout<Head>.offset(of: \Head.free_head)!)
        highWater = memory.head.atomic(Int.self, at: MemoryLayout<Head>.offset(of: \Head.high_water)!)
        warmSlots = memory.head.atomic(Int.self, at: MemoryLayout<Head>.offset(of: \Head.warm_slots)!)
    }

    /// Whether slots have memory for rings.
    public var holdsRings: Bool { memory.stride > 0 }

    typealias Entry = netmp_socket_entry
    func entry(_ slot: UInt32) -> UnsafeMutableRawPointer { memory.entry(slot) }
    func generation(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        entry(slot).atomic(UInt32.self, at: MemoryLayout<Entry>.offset(of: \Entry.generation)!)
    }
    func kind(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        entry(slot).atomic(UInt32.self, at: MemoryLayout<Entry>.offset(of: \Entry.kind)!)
    }
    /// The next free slot + 1 while the slot is free.
    func nextFree(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        entry(slot).atomic(UInt64.self, at: MemoryLayout<Entry>.offset(of: \Entry.next_free)!)
    }
    /// The doorbell of the socket made in `slot` (`netmp_doorbell`).
    func doorbellWords(_ slot: UInt32) -> UnsafeMutableRawPointer { entry(slot) + MemoryLayout<Entry>.offset(of: \Entry.doorbell)! }
    /// NETMP_SLOT_LEASED and NETMP_SLOT_WARM.
    func flags(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        entry(slot).atomic(UInt32.self, at: MemoryLayout<Entry>.offset(of: \Entry.flags)!)
    }
    /// The shared words of `slot` (a stream or datagram slot).
    public func words(_ slot: UInt32) -> UnsafeMutableRawPointer { entry(slot) + MemoryLayout<Entry>.offset(of: \Entry.words)! }

    func holds(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        entry(slot).atomic(UInt32.self, at: MemoryLayout<Entry>.offset(of: \Entry.holds)!)
    }

    /// Any thread: a slot and its memory for a new socket, with the first hold on it; nil
    /// when the table is full or has no memory.
    public func lease() -> SlotLease? {
        guard holdsRings, let (slot, wasWarm) = takeSlot() else { return nil }
        guard memory.base(of: slot) != nil else { // its chunk mapped, for the lease's `base`
            free(slot, heavy: false)
            return nil
        }
        flags(slot).pointee.store(NETMP_SLOT_LEASED, ordering: .relaxed)
        holders(slot).pointee.store(0, ordering: .relaxed)
        holds(slot).pointee.store(1, ordering: .releasing)
        return SlotLease(slot: slot, table: self, wasWarm: wasWarm, adopted: false)
    }

    func holders(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        entry(slot).atomic(UInt64.self, at: MemoryLayout<Entry>.offset(of: \Entry.holders)!)
    }

    /// The processes of the client that hold the socket whose doorbell is in `slot`
    /// (`holders`, bit i: process number i). A socket no process claimed holds none, and is
    /// closed only by its close or the end of the whole client.
    public func addHolder(_ process: UInt32, to slot: UInt32) {
        guard Int(slot) < capacity, process < 64 else { return }
        holders(slot).pointee.bitwiseOr(1 << UInt64(process), ordering: .acquiringAndReleasing)
    }

    /// The processes holding the socket whose doorbell is in `slot` (bit i: process
    /// number i), for `netmp stat`; 0 for a slot outside the table. The client writes
    /// these bits: they name only its own processes, so a lie misleads only its own rows.
    public func holding(_ slot: UInt32) -> UInt64 {
        guard Int(slot) < capacity else { return 0 }
        return holders(slot).pointee.load(ordering: .relaxed)
    }

    /// The processes holding the listener whose accept queues are in `listenSlot`: the
    /// holders of its socket's doorbell slot, which the listen slot names.
    public func holding(listener listenSlot: UInt32) -> UInt64 {
        guard Int(listenSlot) < capacity else { return 0 }
        let named = words(listenSlot).load(fromByteOffset: MemoryLayout<netmp_listen_slot>.offset(of: \netmp_listen_slot.doorbell_slot)!,
                                           as: UInt32.self)
        return named == 0 ? 0 : holding(named &- 1)
    }

    /// Process `process` lets the socket whose doorbell is in `slot` go: whether it held
    /// it, and whether another process still does (then the socket stays as it is).
    public func dropHolder(_ process: UInt32, from slot: UInt32) -> (held: Bool, othersHold: Bool) {
        guard Int(slot) < capacity, process < 64 else { return (false, false) }
        let bit: UInt64 = 1 << UInt64(process)
        let before = holders(slot).pointee.bitwiseAnd(~bit, ordering: .acquiringAndReleasing).oldValue
        return (before & bit != 0, before & ~bit != 0)
    }

    /// The client's process numbers in use (the region head's `processes`).
    var processes: UnsafeMutablePointer<Atomic<UInt64>> {
        memory.head.atomic(UInt64.self, at: MemoryLayout<netmp_region>.offset(of: \netmp_region.processes)!)
    }

    /// A free process number for a forked child (nil when all 64 are in use).
    public func takeProcessNumber() -> UInt32? {
        var current = processes.pointee.load(ordering: .acquiring)
        while current != .max {
            let number = UInt32((~current).trailingZeroBitCount)
            let (done, now) = processes.pointee.compareExchange(expected: current, desired: current | 1 << UInt64(number),
                                                                 ordering: .acquiringAndReleasing)
            if done { return number }
            current = now
        }
        return nil
    }

    /// Process number `number` is in use (the first process's, given at attach).
    public func addProcessNumber(_ number: UInt32) {
        guard number < 64 else { return }
        processes.pointee.bitwiseOr(1 << UInt64(number), ordering: .acquiringAndReleasing)
    }

    /// The current generation of `slot`'s name.
    public func generationOf(_ slot: UInt32) -> UInt32 { generation(slot).pointee.load(ordering: .acquiring) }

    /// The process numbers in use, as a mask.
    public var processNumbersTaken: UInt64 { processes.pointee.load(ordering: .acquiring) }

    /// Whether process number `number` is in use.
    public func processNumberTaken(_ number: UInt32) -> Bool {
        number < 64 && processes.pointee.load(ordering: .acquiring) & (1 << UInt64(number)) != 0
    }

    /// Process number `number` is free again (the stack, once it has let that process's
    /// sockets go).
    public func freeProcessNumber(_ number: UInt32) {
        guard number < 64 else { return }
        processes.pointee.bitwiseAnd(~(1 << UInt64(number)), ordering: .acquiringAndReleasing)
    }

    /// The named slots below the high-water mark, each with its kind and the slot of its
    /// doorbell (the stack, sweeping a gone process's sockets; read from the client's
    /// memory, so checked against the table's size).
    public func namedSlots() -> [(slot: UInt32, kind: Kind, doorbell: UInt32)] {
        var found: [(slot: UInt32, kind: Kind, doorbell: UInt32)] = []
        for slot in everUsed {
            guard let kind = Kind(rawValue: self.kind(slot).pointee.load(ordering: .acquiring)) else { continue }
            let offset = switch kind {
            case .stream: MemoryLayout<netmp_stream_slot>.offset(of: \netmp_stream_slot.doorbell_slot)!
            case .datagram: MemoryLayout<netmp_datagram_slot>.offset(of: \netmp_datagram_slot.doorbell_slot)!
            case .listener: MemoryLayout<netmp_listen_slot>.offset(of: \netmp_listen_slot.doorbell_slot)!
            }
            let named = words(slot).load(fromByteOffset: offset, as: UInt32.self)
            guard named > 0, Int(named - 1) < capacity else { continue }
            found.append((slot, kind, named - 1))
        }
        return found
    }

    /// A holder of `slot`: one more hold, for a view the other side of the socket will
    /// make (`adopt`) when the handle reaches it. Taken before the handle is handed over,
    /// so the slot cannot be freed in between.
    /// (Never a trap: the stack takes holds in a client's table, whose counts the client
    /// can write; a count it broke only keeps or frees its own slot early.)
    public func hold(_ slot: UInt32) {
        guard Int(slot) < capacity else { return }
        let before = holds(slot).pointee.wrappingAdd(1, ordering: .relaxed).oldValue
        assert(before > 0, "hold on a free slot \(slot)")
    }

    /// One more hold on `slot` if it is held at all (a slot being freed is left alone):
    /// for a view made of a socket found by a scan of the table. A count at its maximum
    /// (only a client writing its own table gets there) takes no more.
    public func tryHold(_ slot: UInt32) -> Bool {
        guard Int(slot) < capacity else { return false }
        var current = holds(slot).pointee.load(ordering: .acquiring)
        while current > 0 && current < .max {
            let (done, now) = holds(slot).pointee.compareExchange(expected: current, desired: current + 1,
                                                                   ordering: .acquiringAndReleasing)
            if done { return true }
            current = now
        }
        return false
    }

    /// The hold `hold(_:)` took, now owned by the caller's view.
    public func adopt(_ slot: UInt32) -> SlotLease? {
        guard Int(slot) < capacity, holds(slot).pointee.load(ordering: .acquiring) > 0, memory.base(of: slot) != nil else { return nil }
        return SlotLease(slot: slot, table: self, wasWarm: false, adopted: true)
    }

    /// A hold ends; the last frees the slot, its words and rings' control blocks zeroed (but the doorbell's names
    /// count, which outlives its sockets: a kept copy of a named file stands only while the
    /// count has not moved, NamedDoorbellFiles) and its stride kept warm or given back.
    public func letGo(_ slot: UInt32) {
        guard Int(slot) < capacity,
              holds(slot).pointee.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
        words(slot).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<netmp_stream_slot>.size)
        let rings = MemoryLayout<Entry>.offset(of: \Entry.send_ring)!
        (entry(slot) + rings).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<Entry>.size - rings)
        doorbellWords(slot).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<netmp_doorbell>.offset(of: \netmp_doorbell.names)!)
        free(slot, heavy: flags(slot).pointee.load(ordering: .relaxed) & NETMP_SLOT_HEAVY != 0)
    }

    /// A ring of `slot` wrote much: its pages go back when the slot is freed.
    func markHeavy(_ slot: UInt32) { flags(slot).pointee.bitwiseOr(NETMP_SLOT_HEAVY, ordering: .relaxed) }

    /// Any thread: names `lease`'s slot, or a slot of its own without one (a table of
    /// names), as a socket of `kind`, until the handle is released. Nil when the table is
    /// full (the call fails with ENFILE, as Linux's does when the system's file table is).
    public func register(kind: Kind, in lease: SlotLease? = nil) -> SocketHandle? {
        guard let slot = lease?.slot ?? takeSlot()?.slot else { return nil }
        // A leased slot is unnamed unless its client wrote a kind into it (the stack names
        // accepted connections in the client's table): then the name fails, not the stack.
        guard self.kind(slot).pointee.compareExchange(expected: 0, desired: kind.rawValue, ordering: .acquiringAndReleasing).exchanged else {
            assertionFailure("slot \(slot) is named already")
            if lease == nil { free(slot, heavy: false) }
            return nil
        }
        // Published to the core by the request ring (or message) that carries the handle.
        return SocketHandle(slot: slot, generation: generation(slot).pointee.load(ordering: .relaxed))
    }

    /// The owner core (or `accept`, for the handle it just took): whether `handle` names a
    /// socket of `kind` now (a stale or forged handle does not).
    public func resolves(_ handle: SocketHandle, as kind: Kind) -> Bool {
        Int(handle.slot) < capacity && Int(handle.slot) < highWater.pointee.load(ordering: .acquiring)
            && generation(handle.slot).pointee.load(ordering: .acquiring) == handle.generation
            && self.kind(handle.slot).pointee.load(ordering: .acquiring) == kind.rawValue
    }

    /// The owner core (or the registering thread, for a socket no request ever named):
    /// ends the name; a slot without a lease is free again. False, and nothing changes, for
    /// a stale handle.
    @discardableResult
    public func release(_ handle: SocketHandle) -> Bool {
        guard Int(handle.slot) < capacity, Int(handle.slot) < highWater.pointee.load(ordering: .acquiring),
              generation(handle.slot).pointee.load(ordering: .acquiring) == handle.generation,
              kind(handle.slot).pointee.load(ordering: .acquiring) != 0 else { return false }
        let slot = handle.slot
        kind(slot).pointee.store(0, ordering: .relaxed)
        generation(slot).pointee.store(handle.generation &+ 1, ordering: .releasing)
        if !isLeased(slot) { free(slot, heavy: false) }
        return true
    }

    /// The leased slots below the high-water mark that no socket is named in, whose holders
    /// include process `process`: the doorbells of sockets not yet connected or listening
    /// (the stack, sweeping a gone process's sockets; read from the client's memory, so a
    /// client that scribbles its table only loses its own slots).
    public func unnamedSlots(heldBy process: UInt32) -> [UInt32] {
        guard process < 64 else { return [] }
        return everUsed.filter {
            isUnnamedLease($0) && holders($0).pointee.load(ordering: .acquiring) & (1 << UInt64(process)) != 0
        }
    }

    /// The leased slots no socket is named in whose stream words name another slot as
    /// their doorbell, by that doorbell's slot: the channels of sockets that stand on it
    /// (one that connects again after a failed connect keeps its first slot's doorbell).
    /// One scan for a whole sweep.
    public func unnamedChannelsByDoorbell() -> [UInt32: [UInt32]] {
        let offset = MemoryLayout<netmp_stream_slot>.offset(of: \netmp_stream_slot.doorbell_slot)!
        var found: [UInt32: [UInt32]] = [:]
        for slot in everUsed where isUnnamedLease(slot) {
            let named = words(slot).load(fromByteOffset: offset, as: UInt32.self)
            guard named > 0, named - 1 != slot else { continue }
            found[named - 1, default: []].append(slot)
        }
        return found
    }

    /// The port the bind (or an unbound listen) of the socket whose channel is in `slot`
    /// took, and its families (`netmp_stream_slot.bound_port`), as the application wrote it.
    public func boundPort(_ slot: UInt32) -> (port: UInt16, families: AddressFamilies)? {
        guard Int(slot) < capacity else { return nil }
        let word = words(slot).load(fromByteOffset: MemoryLayout<netmp_stream_slot>.offset(of: \netmp_stream_slot.bound_port)!,
                                    as: UInt32.self)
        guard word & 1 << 31 != 0, UInt16(truncatingIfNeeded: word) != 0 else { return nil }
        return (UInt16(truncatingIfNeeded: word), AddressFamilies(rawValue: UInt8(truncatingIfNeeded: word >> 16)))
    }

    /// The slots below the high-water mark: every slot ever taken (read from the client's
    /// memory, so held to the table's size).
    var everUsed: Range<UInt32> { 0..<UInt32(min(capacity, max(0, highWater.pointee.load(ordering: .acquiring)))) }

    /// Sockets named, counted (for tests and `netmp stat`; not for the hot path).
    public var inUse: Int {
        everUsed.reduce(0) { $0 + (kind($1).pointee.load(ordering: .acquiring) != 0 ? 1 : 0) }
    }

    /// Slots leased or named, counted (tests: every slot comes back).
    public var slotsTaken: Int {
        var free = 0
        var head = freeHead.pointee.load(ordering: .acquiring) & 0xffff_ffff
        while head != 0 {
            free += 1
            head = nextFree(UInt32(head - 1)).pointee.load(ordering: .relaxed) & 0xffff_ffff
        }
        return everUsed.count - free
    }

    func isLeased(_ slot: UInt32) -> Bool { flags(slot).pointee.load(ordering: .relaxed) & NETMP_SLOT_LEASED != 0 }
    /// Leased, and no socket named in it: a socket's own slot before it connects or listens.
    func isUnnamedLease(_ slot: UInt32) -> Bool { isLeased(slot) && kind(slot).pointee.load(ordering: .acquiring) == 0 }

    /// Puts `slot` back on the free stack. A leased slot's memory is kept warm or given
    /// back (SlotLease).
    func free(_ slot: UInt32, heavy: Bool) {
        guard Int(slot) < capacity else { return }
        if isLeased(slot) {
            if !heavy && warmSlots.pointee.wrappingAdd(1, ordering: .relaxed).newValue <= Self.warmLimit {
                flags(slot).pointee.store(NETMP_SLOT_WARM, ordering: .relaxed)
            } else {
                if !heavy { warmSlots.pointee.wrappingSubtract(1, ordering: .relaxed) }
                flags(slot).pointee.store(0, ordering: .relaxed)
                memory.discard(slot)
            }
        }
        // Push: the slot's state is published with it.
        var head = freeHead.pointee.load(ordering: .relaxed)
        while true {
            nextFree(slot).pointee.store(head & 0xffff_ffff, ordering: .relaxed)
            let pushed = (head >> 32 &+ 1) << 32 | UInt64(slot + 1)
            let (exchanged, current) = freeHead.pointee.compareExchange(expected: head, desired: pushed, ordering: .releasing)
            if exchanged { return }
            head = current
        }
    }

    /// A free slot, and whether it was warm.
    func takeSlot() -> (slot: UInt32, wasWarm: Bool)? {
        var head = freeHead.pointee.load(ordering: .acquiring)
        // The free stack is in memory the client writes too: a top or a link that names no
        // slot of the table ends the walk (the stack's cores then take a fresh slot or none,
        // never one outside the table).
        while head & 0xffff_ffff != 0 && head & 0xffff_ffff <= UInt64(capacity) {
            let slot = UInt32(head & 0xffff_ffff) - 1
            // Read before the exchange: if another thread took the slot meanwhile, the tag
            // moved and the exchange fails, whatever this read saw.
            let next = nextFree(slot).pointee.load(ordering: .relaxed) & 0xffff_ffff
            guard next <= UInt64(capacity) else { break }
            let popped = (head >> 32 &+ 1) << 32 | next
            let (exchanged, current) = freeHead.pointee.compareExchange(expected: head, desired: popped, ordering: .acquiringAndReleasing)
            if exchanged {
                nextFree(slot).pointee.store(0, ordering: .relaxed)
                let wasWarm = flags(slot).pointee.exchange(0, ordering: .relaxed) & NETMP_SLOT_WARM != 0
                if wasWarm { warmSlots.pointee.wrappingSubtract(1, ordering: .relaxed) }
                return (slot, wasWarm)
            }
            head = current
        }
        let fresh = highWater.pointee.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue
        guard fresh >= 0 && fresh < capacity else {
            highWater.pointee.wrappingSubtract(1, ordering: .relaxed) // so the table is not walked past its end
            return nil
        }
        return (UInt32(fresh), false)
    }
}
