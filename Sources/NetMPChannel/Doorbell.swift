import CNetMPChannel
import Synchronization

/// How poll, select and epoll in other threads learn that a netmp socket changed: an
/// eventfd stands behind the socket's file descriptor (the shim's design), and whoever
/// changes the socket's readiness rings it, but only while someone polls. A poller
/// registers, checks readiness, and only then sleeps in the kernel on the eventfd; the
/// changer publishes the change before it looks for pollers. Either the poller sees the
/// change or the changer sees the poller, so no wakeup is lost.
///
/// The eventfd is emptied only when the last poller leaves (under `lock`, which only
/// pollers take): emptying it while another poller sleeps on it could swallow that
/// poller's wakeup. Epoll registrations count as pollers for as long as they last, and
/// see the eventfd edge-triggered.
///
/// The words (`netmp_doorbell`: the eventfd, the pollers, the rings) lie in the socket table
/// entry of the slot the socket was made in, so that the owner core's view of the socket
/// rings them without any object of the application's: the slot's words name the doorbell's
/// slot (`doorbell_slot`). The application's doorbell holds that slot; a socket that
/// connects again after a failed connect keeps its doorbell, so pollers and epoll
/// registrations carry over.
///
/// In the stack service the eventfd number in the words is the client's: a client's
/// doorbell names its placeholder to the stack before its first poller registers
/// (`SocketTable.namingDoorbell`), and the cores' views ring the bell the stack put into it
/// (`SocketTable.doorbellDescriptors`). The stack rings a doorbell once more as the bell
/// is made, so a change a core made before it had one is not lost.
///
/// In a preloaded program the socket's descriptor is not the eventfd but a placeholder
/// (an epoll instance, `standInPlaceholders`), so that a program reaching it without libc
/// gets EINVAL rather than an eventfd's count: pollers sleep on the placeholder. The
/// client names the placeholder; the stack puts an eventfd of its own into it, which no
/// client holds (so none can stall a core through it), and rings that. The application's
/// own rings go to the process's common bell, which every placeholder also holds. Both are
/// edge-triggered inside, so emptying is an epoll_wait on the placeholder that does not
/// wait.
public final class Doorbell: @unchecked Sendable {
    let words: UnsafeMutableRawPointer
    /// The eventfd's number: in the words, or the stack's own copy (`BellCopies`).
    let eventfd: UnsafeMutablePointer<Atomic<Int32>>
    // The other words are found from `words` when used (a constant offset each): a doorbell
    // is made per socket on each side of the stack service, so it stays small.
    typealias Words = netmp_doorbell
    // The offsets, constants from netmp_channel.h (SharedWords.swift's `atomic(_:at:)` says why).
    static var pollersAt: Int { NETMP_DOORBELL_POLLERS_AT }
    static var ringsAt: Int { NETMP_DOORBELL_RINGS_AT }
    static var namesAt: Int { NETMP_DOORBELL_NAMES_AT }
    package var pollers: UnsafeMutablePointer<Atomic<UInt32>> { words.atomic(UInt32.self, at: Self.pollersAt) }
    var ringCount: UnsafeMutablePointer<Atomic<UInt32>> { words.atomic(UInt32.self, at: Self.ringsAt) }
    /// The hold that keeps the slot (the application's doorbell; a view holds nothing).
    let lease: SlotLease?
    /// The pollers' lock (NetMPSystem's Doorbell+Pollers), made by the first poller and kept
    /// here by its retained address (the owner core's view never has one).
    package let pollersLock = Atomic<UInt>(0)
    /// A client's doorbell in the stack service: how it names its placeholder to the stack
    /// (once, before the first poller: the slot, the placeholder, the names count), and
    /// whether it has.
    package let naming: (@Sendable (UInt32, Int32, UInt32) -> Bool)?
    /// The slot whose entry holds the words (nil: memory of this object's own). Declared
    /// here, beside the flags, so that the object packs into 72 bytes.
    public let slot: UInt32?
    package let named = Atomic<Bool>(false)
    /// The names sent for this doorbell (`netmp_doorbell.names`), by any process of the
    /// client: each naming counts one, so a copy of a named file is known to be the one
    /// the stack rings while the count is what it was when the copy was kept.
    package var names: UnsafeMutablePointer<Atomic<UInt32>> { words.atomic(UInt32.self, at: Self.namesAt) }
    /// A poller of this process saw the eventfd readable since it was last emptied (under
    /// `lock`).
    package var countSeen = false
    /// Pollers sleep on the socket's descriptor, a placeholder, and `fd` is the common
    /// bell (set before the socket is published).
    public private(set) var placeheld = false

    /// A doorbell in memory of its own (sockets outside a socket table, tests).
    public convenience init() {
        self.init(words: .zeroed(netmp_doorbell.self), slot: nil, lease: nil, table: nil)
    }

    /// The doorbell of the socket made in `lease`'s slot, held with it.
    public convenience init(in lease: SlotLease) {
        self.init(words: lease.table.doorbellWords(lease.slot), slot: lease.slot, lease: lease, table: lease.table)
    }

    /// A view of the doorbell in `slot`'s entry (the owner core's, or an accepting
    /// application's), which the socket's holds keep; nil for a slot past the table.
    public convenience init?(viewing slot: UInt32, in table: SocketTable) {
        guard Int(slot) < table.capacity else { return nil }
        self.init(words: table.doorbellWords(slot), slot: slot, lease: nil, table: table)
    }

    /// The doorbell in `slot`'s entry, on a hold its holder took for this view
    /// (`SocketTable.hold`); nil when there is none to adopt.
    public convenience init?(adopting slot: UInt32, in table: SocketTable) {
        guard let lease = table.adopt(slot) else { return nil }
        self.init(words: table.doorbellWords(slot), slot: slot, lease: lease, table: table)
    }

    /// The doorbell a slot's words name (`doorbell_slot` + 1 at `offset` in them).
    public convenience init?(namedBy words: UnsafeMutableRawPointer, at offset: Int, in table: SocketTable) {
        let named = words.load(fromByteOffset: offset, as: UInt32.self)
        guard named > 0 else { return nil }
        self.init(viewing: named - 1, in: table)
    }

    /// `table`: the table the words are in, whose stack-side copies of the eventfds a view
    /// rings, or whose client names its eventfds to the stack.
    init(words: UnsafeMutableRawPointer, slot: UInt32?, lease: SlotLease?, table: SocketTable?) {
        self.words = words
        self.slot = slot
        self.lease = lease
        if let slot, let copy = table?.doorbellDescriptors?.word(slot) {
            eventfd = copy
        } else {
            eventfd = words.atomic(Int32.self, at: MemoryLayout<Words>.offset(of: \Words.eventfd)!)
        }
        naming = slot == nil ? nil : table?.namingDoorbell
    }

    deinit {
        if let lock = UnsafeRawPointer(bitPattern: pollersLock.load(ordering: .acquiring)) {
            Unmanaged<AnyObject>.fromOpaque(lock).release()
        }
        if slot == nil { words.deallocate() }
    }

    /// Writes this doorbell's slot into a socket's words (`doorbell_slot` + 1 at `offset`).
    public func name(in socketWords: UnsafeMutableRawPointer, at offset: Int) {
        socketWords.storeBytes(of: slot.map { $0 + 1 } ?? 0, toByteOffset: offset, as: UInt32.self)
    }

    /// The eventfd this view rings (-1: none yet): on the stack's side its copy of the
    /// client's bell; on the application's side the common bell (`standInPlaceholders`),
    /// or in tests and a stack in the program's process the socket's own eventfd.
    public var fd: Int32 {
        get { eventfd.pointee.load(ordering: .acquiring) - 1 }
        set { eventfd.pointee.store(newValue + 1, ordering: .releasing) }
    }

    /// The socket's descriptors are placeholders (netmp_placeholder_bell): `common` is the
    /// process's bell that this doorbell's application side rings.
    public func standInPlaceholders(common: Int32) {
        fd = common
        placeheld = true
    }

    /// Rings made while someone polled: a datagram socket's stand-in for "something
    /// arrived" (epoll's edge-triggered mode).
    public var rings: UInt32 { ringCount.pointee.load(ordering: .relaxed) }

    /// After a change that may make the socket readable or writable, or end it.
    public func ring() {
        guard pollers.pointee.load(ordering: .sequentiallyConsistent) > 0 else { return }
        ringCount.pointee.wrappingAdd(1, ordering: .relaxed)
        let fd = self.fd
        if fd >= 0 { ChannelCalls.current.pointee.ring(fd) }
    }

    /// The names counted for this doorbell so far.
    public var namesSent: UInt32 { names.pointee.load(ordering: .acquiring) }

    /// The socket's eventfd is a file the stack already rings for this slot (a kept copy
    /// of one named before): no name is sent for it.
    public func markNamed() { named.store(true, ordering: .releasing) }
}
