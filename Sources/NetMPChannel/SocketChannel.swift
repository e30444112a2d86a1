import CNetMPChannel
import NetMPTCP
import NetMPWire
import Synchronization

/// What application threads and a connection's owner core share: the two rings and the
/// connection's published status. Everything else about the connection (the engine's
/// control block, its timers) is the owner's alone.
///
/// The owner publishes status changes after the data they concern (end of stream after the
/// last byte, a failure after the rings stop moving) and then wakes every waiter, so a thread
/// that checks the status after waking never misses a change. Application threads publish
/// only two requests, each a flag: "send what I wrote" and "I read, the window may reopen".
/// A request is sent as a message only when its flag was clear, so a stream of writes costs
/// one message per turn of the owner, not one per write.
///
/// The published state is a `netmp_stream_slot` (netmp_channel.h), in C layout like the
/// rings' control blocks.
public final class SocketChannel: @unchecked Sendable {
    public let send: SendRing
    public let receive: ReceiveRing
    /// The slot's words (one cache line): in the socket table's entry, or this object's.
    public let slot: UnsafeMutableRawPointer
    // The slot's words are found from its address when used (a constant offset each): this
    // object is made once per socket on each side of the stack service, so it stays small.
    typealias Slot = netmp_stream_slot
    // The offsets, constants from netmp_channel.h (SharedWords.swift's `atomic(_:at:)` says why).
    static var changesAt: Int { NETMP_STREAM_SLOT_CHANGES_AT }
    static var statusAt: Int { NETMP_STREAM_SLOT_STATUS_AT }
    static var errorAt: Int { NETMP_STREAM_SLOT_ERROR_AT }
    static var activeWritersAt: Int { NETMP_STREAM_SLOT_ACTIVE_WRITERS_AT }
    static var outputOptionsAt: Int { NETMP_STREAM_SLOT_OUTPUT_OPTIONS_AT }
    static var ownerAt: Int { NETMP_STREAM_SLOT_OWNER_AT }
    /// Connection-state changes (connect done, failed, closed) wake this word; data moves
    /// wake the rings' own words.
    public var changes: WaitWord { WaitWord(zeroedAt: slot + Self.changesAt) }
    /// Rung on every change that poll, select or epoll could care about (the shim's eventfd).
    public let doorbell: Doorbell
    var flags: UnsafeMutablePointer<Atomic<UInt32>> { slot.atomic(UInt32.self, at: Self.statusAt) }
    var errorNumber: UnsafeMutablePointer<Atomic<Int32>> { slot.atomic(Int32.self, at: Self.errorAt) }
    /// Application threads inside a write (between checking that writing is open and
    /// committing their bytes). shutdown and close wait for them to leave before asking the
    /// owner to send the FIN, so a write that returned a count is never cut off by it.
    package var activeWriters: UnsafeMutablePointer<Atomic<Int>> { slot.atomic(Int.self, at: Self.activeWritersAt) }
    /// NETMP_OUTPUT_* bits: TCP_CORK and TCP_NODELAY as the application last set them.
    var outputOptionWord: UnsafeMutablePointer<Atomic<UInt32>> { slot.atomic(UInt32.self, at: Self.outputOptionsAt) }
    /// The owner core's index, once a core owns the connection (-1 before).
    var ownerWord: UnsafeMutablePointer<Atomic<Int>> { slot.atomic(Int.self, at: Self.ownerAt) }
    public var owner: Int { ownerWord.pointee.load(ordering: .acquiring) }
    public func attach(to core: Int) { ownerWord.pointee.store(core, ordering: .releasing) }
    /// Owner only: the control block this channel belongs to (the host's TCPSocket, which
    /// is above the channel: `TCPSocket.of(_:)` reads it), for messages that name the
    /// channel. Application threads never read it.
    public nonisolated(unsafe) var controlBlock: AnyObject?

    public struct Status: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// A core took the connection (its connect was accepted, or it came from a listener).
        @inlinable public static var attached: Status { Status(rawValue: NETMP_STATUS_ATTACHED) }
        /// The handshake completed.
        @inlinable public static var established: Status { Status(rawValue: NETMP_STATUS_ESTABLISHED) }
        /// The connection failed; `error` holds the errno.
        @inlinable public static var failed: Status { Status(rawValue: NETMP_STATUS_FAILED) }
        /// The connection reached CLOSED (after a failure, a close or TIME-WAIT).
        @inlinable public static var closed: Status { Status(rawValue: NETMP_STATUS_CLOSED) }
        /// The application shut down writing (or closed): further writes get EPIPE.
        @inlinable public static var writeShut: Status { Status(rawValue: NETMP_STATUS_WRITE_SHUT) }
        /// The application shut down reading: reads return end of file.
        @inlinable public static var readShut: Status { Status(rawValue: NETMP_STATUS_READ_SHUT) }
        /// Everything written, FIN included, was acknowledged (SO_LINGER waits for it).
        @inlinable public static var drained: Status { Status(rawValue: NETMP_STATUS_DRAINED) }
        /// Requests from application threads, cleared by the owner before it acts on them.
        @inlinable public static var outputRequested: Status { Status(rawValue: NETMP_STATUS_OUTPUT_REQUESTED) }
        @inlinable public static var windowRequested: Status { Status(rawValue: NETMP_STATUS_WINDOW_REQUESTED) }
    }

    /// The slot this channel's words and rings lie in (nil: memory of its own, or a view).
    public let lease: SlotLease?
    /// The words are this object's memory.
    let ownsSlot: Bool

    /// A channel with memory of its own. `doorbell`: a socket that connects again after a
    /// failed connect keeps its pollers.
    public convenience init(sendCapacity: Int, receiveCapacity: Int, doorbell: Doorbell = Doorbell()) {
        self.init(send: SendRing(capacity: sendCapacity), receive: ReceiveRing(capacity: receiveCapacity),
                  slot: .zeroed(netmp_stream_slot.self, alignment: 64), lease: nil, ownsSlot: true, doorbell: doorbell)
    }

    /// A channel in a slot leased from `table`: its words and its rings' control blocks in
    /// the slot's entry, its send ring's data and then its receive ring's in the slot's stride, and its doorbell in the entry
    /// (or `doorbell`, a failed socket's that this one replaces). Nil when the table is full
    /// or its strides are too small for these rings.
    public convenience init?(in table: SocketTable, sendCapacity: Int, receiveCapacity: Int, doorbell: Doorbell? = nil) {
        guard ClientRegion.streamStride(send: sendCapacity, receive: receiveCapacity) <= table.memory.stride,
              let lease = table.lease() else { return nil }
        lease.words.storeBytes(of: UInt32(sendCapacity), toByteOffset: MemoryLayout<Slot>.offset(of: \Slot.send_capacity)!, as: UInt32.self)
        lease.words.storeBytes(of: UInt32(receiveCapacity), toByteOffset: MemoryLayout<Slot>.offset(of: \Slot.receive_capacity)!, as: UInt32.self)
        // A doorbell outside the table (a socket that had no slot) cannot be named: a new one.
        let doorbell = doorbell?.slot != nil ? doorbell! : Doorbell(in: lease)
        doorbell.name(in: lease.words, at: MemoryLayout<Slot>.offset(of: \Slot.doorbell_slot)!)
        self.init(lease: lease, sendCapacity: sendCapacity, receiveCapacity: receiveCapacity, doorbell: doorbell)
    }

    /// The other side's view of the channel in `slot` of `table` (the owner core's of an
    /// application's socket, an application's of a connection its listener accepted),
    /// through any mapping of the table: it adopts the hold its lessor took for it
    /// (`SocketTable.hold`) and finds the rings where the slot's words say their sizes put
    /// them, and the doorbell in the entry the words name. Nil if the slot is not held, or
    /// its sizes do not fit its stride, or it names no doorbell.
    public convenience init?(adopting slot: UInt32, in table: SocketTable) {
        guard let lease = table.adopt(slot) else { return nil }
        let send = Int(lease.words.load(fromByteOffset: MemoryLayout<Slot>.offset(of: \Slot.send_capacity)!, as: UInt32.self))
        let receive = Int(lease.words.load(fromByteOffset: MemoryLayout<Slot>.offset(of: \Slot.receive_capacity)!, as: UInt32.self))
        // The doorbell is in this slot's entry, or (a socket that connected again after a
        // failed connect) in its first slot's, on a hold taken for this view.
        let named = lease.words.load(fromByteOffset: MemoryLayout<Slot>.offset(of: \Slot.doorbell_slot)!, as: UInt32.self)
        guard named > 0, send > 0, receive > 0, ClientRegion.streamStride(send: send, receive: receive) <= table.memory.stride,
              let doorbell = named - 1 == slot ? Doorbell(viewing: slot, in: table) : Doorbell(adopting: named - 1, in: table)
        else { return nil }
        self.init(lease: lease, sendCapacity: send, receiveCapacity: receive, doorbell: doorbell)
    }

    /// The rings' control blocks in the slot's entry; the send ring's data at the slot's
    /// stride, then the receive ring's on the next page past it.
    convenience init(lease: SlotLease, sendCapacity: Int, receiveCapacity: Int, doorbell: Doorbell) {
        let receiveAt = ClientRegion.pageAligned(sendCapacity)
        self.init(send: SendRing(placedAt: lease.sendControl, data: lease.base, capacity: sendCapacity, owner: .placed(lease)),
                  receive: ReceiveRing(placedAt: lease.receiveControl, data: lease.base + receiveAt, capacity: receiveCapacity, owner: .placed(lease)),
                  slot: lease.words, lease: lease, ownsSlot: false, doorbell: doorbell)
    }

    init(send: SendRing, receive: ReceiveRing, slot: UnsafeMutableRawPointer, lease: SlotLease?, ownsSlot: Bool, doorbell: Doorbell) {
        self.send = send
        self.receive = receive
        self.lease = lease
        self.ownsSlot = ownsSlot
        self.doorbell = doorbell
        self.slot = slot
        // The socket's first side says no core owns it yet; a view adopted later must not.
        if ownsSlot || lease?.adopted == false { ownerWord.pointee.store(-1, ordering: .relaxed) }
    }
    /// The port the socket's bind (or an unbound listen) took from the client's (nil: none),
    /// written where the stack finds it if the socket's last process ends without closing
    /// it (`SocketTable.boundPort`).
    public func recordBoundPort(_ port: UInt16?, families: AddressFamilies) {
        let word = port.map { UInt32($0) | UInt32(families.rawValue) << 16 | 1 << 31 } ?? 0
        slot.storeBytes(of: word, toByteOffset: MemoryLayout<netmp_stream_slot>.offset(of: \netmp_stream_slot.bound_port)!,
                        as: UInt32.self)
    }

    // `changes` goes with this object: nobody holds it alone. A leased slot's words go
    // back with the lease.
    deinit { if ownsSlot { slot.deallocate() } }

    public var status: Status { Status(rawValue: flags.pointee.load(ordering: .acquiring)) }
    /// The send ring has a third free (`SendRing.aThirdFree`). Here, not inlined where poll
    /// asks: a ring reached through another module's object is retained around the call.
    @inline(never) public var sendHasAThirdFree: Bool { send.aThirdFree }

    /// The connection's 4-tuple as the owner wrote it into the slot when it opened the
    /// connection (it picks the local port); read it once the status shows `established`
    /// or `failed`, which the owner publishes after writing it. Nil before.
    public var publishedTuple: FourTuple? {
        let port = slot.load(fromByteOffset: MemoryLayout<Slot>.offset(of: \Slot.local_port)!, as: UInt16.self)
        guard port != 0 else { return nil }
        let local = slot.loadAddress(at: MemoryLayout<Slot>.offset(of: \Slot.local_address)!)
        let remote = slot.loadAddress(at: MemoryLayout<Slot>.offset(of: \Slot.remote_address)!)
        let remotePort = slot.load(fromByteOffset: MemoryLayout<Slot>.offset(of: \Slot.remote_port)!, as: UInt16.self)
        return FourTuple(local: Endpoint(local, port), remote: Endpoint(remote, remotePort))
    }
    /// The errno of a failed connection (0 while it has not failed).
    public var error: Int32 { errorNumber.pointee.load(ordering: .acquiring) }

    // MARK: Any thread

    /// TCP_CORK and TCP_NODELAY as the application set them (NETMP_OUTPUT_* bits).
    public var outputOptions: UInt32 { outputOptionWord.pointee.load(ordering: .acquiring) }

    /// Sets or clears an output option (NETMP_OUTPUT_*): the owner honours it for every
    /// byte written after this returns, before any record about it arrives.
    public func setOutputOption(_ bit: UInt32, _ on: Bool) {
        if on { outputOptionWord.pointee.bitwiseOr(bit | NETMP_OUTPUT_SET, ordering: .sequentiallyConsistent) }
        else {
            outputOptionWord.pointee.bitwiseAnd(~bit, ordering: .sequentiallyConsistent)
            outputOptionWord.pointee.bitwiseOr(NETMP_OUTPUT_SET, ordering: .sequentiallyConsistent)
        }
    }

    /// Takes the pending error (SO_ERROR, or the failing call): reported once, as Linux does.
    public func takeError() -> Int32 { errorNumber.pointee.exchange(0, ordering: .acquiringAndReleasing) }

    /// Sets `bits`; true if any of them was clear before (the caller then owns the request).
    @discardableResult
    public func raise(_ bits: Status) -> Bool {
        let before = Status(rawValue: flags.pointee.bitwiseOr(bits.rawValue, ordering: .sequentiallyConsistent).oldValue)
        return !before.isSuperset(of: bits)
    }

    /// Clears request bits; true if they were set (owner, before acting on a request).
    @discardableResult
    public func clear(_ bits: Status) -> Bool {
        let before = Status(rawValue: flags.pointee.bitwiseAnd(~bits.rawValue, ordering: .sequentiallyConsistent).oldValue)
        return !before.isDisjoint(with: bits)
    }

    /// Enters a write: false (and not entered) if writing is shut down.
    public func beginWrite() -> Bool {
        activeWriters.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if status.contains(.writeShut) { endWrite(); return false }
        return true
    }
    public func endWrite() { activeWriters.pointee.wrappingSubtract(1, ordering: .sequentiallyConsistent) }

    // MARK: Owner

    /// Writes the connection's 4-tuple into the slot, before any status that tells the
    /// application to read it.
    public func publishTuple(_ tuple: FourTuple) {
        slot.storeAddress(tuple.local.address, at: MemoryLayout<Slot>.offset(of: \Slot.local_address)!)
        slot.storeAddress(tuple.remote.address, at: MemoryLayout<Slot>.offset(of: \Slot.remote_address)!)
        slot.storeBytes(of: tuple.remote.port, toByteOffset: MemoryLayout<Slot>.offset(of: \Slot.remote_port)!, as: UInt16.self)
        slot.storeBytes(of: tuple.local.port, toByteOffset: MemoryLayout<Slot>.offset(of: \Slot.local_port)!, as: UInt16.self)
    }

    /// Publishes a state change and wakes every kind of waiter: a blocked reader or writer
    /// must see a failure or a close as surely as a connect waiter does.
    public func publish(_ bits: Status, error: Int32 = 0) {
        if error != 0 { errorNumber.pointee.store(error, ordering: .releasing) }
        // The status before end of stream: a reader that sees the end and then looks at the
        // status must see a failure, or it would report a reset as a clean end of file.
        raise(bits)
        if bits.contains(.failed) || bits.contains(.closed) { receive.publishEndOfStream() }
        changes.wakeAll()
        receive.readers.wakeAll()
        send.writers.wakeAll()
        doorbell.ring()
    }
}

extension UnsafeMutableRawPointer {
    /// An address as the shared layouts hold it: IPv6 (IPv4 mapped) in two host-order
    /// halves, the most significant first.
    func storeAddress(_ address: IPAddress, at offset: Int) {
        storeBytes(of: address.bits.high, toByteOffset: offset, as: UInt64.self)
        storeBytes(of: address.bits.low, toByteOffset: offset + 8, as: UInt64.self)
    }
    func loadAddress(at offset: Int) -> IPAddress {
        IPAddress(IPv6Address(high: load(fromByteOffset: offset, as: UInt64.self), low: load(fromByteOffset: offset + 8, as: UInt64.self)))
    }
}
