import CNetMPLinux
import Glibc
import NetMPStack
import Synchronization

/// A protocol thread's message port: many application threads send, its one owner thread
/// receives (DragonFly's lwkt_port, lwIP's tcpip mbox). A bounded ring of slots with
/// sequence numbers (Vyukov's bounded queue, reduced to one consumer): sending is one CAS on
/// the tail and one release store; receiving takes no atomic read-modify-write at all.
///
/// Wakeups cost nothing while the owner is busy: it announces a sleep before it blocks on
/// its eventfd (its count of sleeps made odd), and a sender writes the eventfd only when it
/// sees that announcement, once per sleep for all senders of one party.
/// Both sides order "publish, then look at the other side" sequentially consistently,
/// so either the owner sees the message before it sleeps or the sender sees it sleeping:
/// no lost wakeup.
///
/// The hot methods are @inlinable: the port is generic, and without specialization in the
/// caller's module each send went through witness tables (Scripts/bench measured 64% of the
/// C reference that way, 88% inlined).
public final class MessagePort<Message>: SingleConsumerQueue, @unchecked Sendable {
    public let capacity: Int
    @usableFromInline let mask: Int
    @usableFromInline let sequences: UnsafeMutablePointer<Atomic<Int>>
    @usableFromInline let slots: UnsafeMutablePointer<Message?>
    @usableFromInline let tail = Atomic<Int>(0)
    /// Read and written by the owner only.
    @usableFromInline var head = 0
    /// The owner's count of sleeps, odd while it sleeps (a `netmp_core_wake` line: in the
    /// stack's CoreWakePage, where clients' senders read it too, or this port's own). Only
    /// the owner stores it.
    @usableFromInline let sleeps: UnsafeMutablePointer<Atomic<UInt64>>
    let ownsSleeps: Bool
    /// The owner's copy of `sleeps`.
    var announced: UInt64 = 0
    /// The sleep this port's senders last wrote the eventfd for.
    @usableFromInline let rung = RungSleep()
    /// The eventfd senders write to wake the owner, and the owner polls (with its TAP queue).
    public let wakeupDescriptor: Int32

    /// `capacity` is rounded up to a power of two; `sleeps`: the count of sleeps to announce
    /// in (a core's line of a CoreWakePage), else one of the port's own.
    public init(capacity: Int, sleeps: UnsafeMutablePointer<Atomic<UInt64>>? = nil) {
        ownsSleeps = sleeps == nil
        if let sleeps { self.sleeps = sleeps } else {
            self.sleeps = .allocate(capacity: 1)
            self.sleeps.initialize(to: Atomic<UInt64>(0))
        }
        // Counting on from a line used before, so no client's last ring matches a new sleep.
        announced = (self.sleeps.pointee.load(ordering: .relaxed) &+ 1) & ~1
        var size = 1
        while size < capacity { size <<= 1 }
        self.capacity = size
        mask = size - 1
        sequences = .allocate(capacity: size)
        slots = .allocate(capacity: size)
        for i in 0..<size {
            (sequences + i).initialize(to: Atomic(i))
            (slots + i).initialize(to: nil)
        }
        wakeupDescriptor = netmp_eventfd()
        precondition(wakeupDescriptor >= 0, "eventfd failed: errno \(-wakeupDescriptor)")
    }

    deinit {
        for i in 0..<capacity { (sequences + i).deinitialize(count: 1) }
        slots.deinitialize(count: capacity)
        sequences.deallocate()
        slots.deallocate()
        close(wakeupDescriptor)
        if ownsSleeps { sleeps.deinitialize(count: 1); sleeps.deallocate() }
    }

    /// Sends from any thread. False when the port is full (the caller backs off and retries;
    /// a full port means its owner is far behind).
    @discardableResult @inlinable
    public func send(_ message: Message) -> Bool {
        var position = tail.load(ordering: .relaxed)
        while true {
            let sequence = sequences[position & mask].load(ordering: .acquiring)
            let difference = sequence - position
            if difference == 0 {
                if tail.compareExchange(expected: position, desired: position + 1, ordering: .relaxed).exchanged { break }
                position = tail.load(ordering: .relaxed)
            } else if difference < 0 {
                return false
            } else {
                position = tail.load(ordering: .relaxed)
            }
        }
        // This slot is ours alone until the sequence store below publishes it.
        slots[position & mask] = message
        sequences[position & mask].store(position + 1, ordering: .sequentiallyConsistent)
        wakeIfSleeping()
        return true
    }

    /// Any thread, after publishing work the owner looks for before it sleeps (a message
    /// here, or a record in another queue it checks between `prepareToSleep` and its poll):
    /// writes the eventfd if the owner announced a sleep, once per sleep. The publication
    /// must be sequentially consistent, as the owner's announcement and look are.
    @inlinable
    public func wakeIfSleeping() {
        let sleep = sleeps.pointee.load(ordering: .sequentiallyConsistent)
        if sleep & 1 != 0, rung.claim(sleep) { wake() }
    }

    @usableFromInline func wake() {
        var one: UInt64 = 1
        _ = write(wakeupDescriptor, &one, 8)
    }

    /// Owner only: takes the next message, if one is published.
    @inlinable
    public func receive() -> Message? {
        let slot = head & mask
        guard sequences[slot].load(ordering: .acquiring) == head + 1 else { return nil }
        let message = slots[slot].take()
        sequences[slot].store(head + capacity, ordering: .releasing)
        head += 1
        return message
    }

    /// Owner only: a message is published and waiting (no system call: for spinning).
    public var hasMessage: Bool { sequences[head & mask].load(ordering: .acquiring) == head + 1 }

    /// Owner only, before it blocks: announces that it will sleep. Returns false (and does not
    /// announce) when a message is already waiting, so the owner must not block.
    public func prepareToSleep() -> Bool {
        if announced & 1 == 0 { announced += 1 }
        sleeps.pointee.store(announced, ordering: .sequentiallyConsistent)
        if sequences[head & mask].load(ordering: .sequentiallyConsistent) == head + 1 {
            announced += 1
            sleeps.pointee.store(announced, ordering: .relaxed)
            return false
        }
        return true
    }

    /// Owner only, after it woke (from poll on `wakeupDescriptor` or anything else).
    public func awake() {
        if announced & 1 != 0 { announced += 1; sleeps.pointee.store(announced, ordering: .relaxed) }
        var value: UInt64 = 0
        _ = read(wakeupDescriptor, &value, 8)
    }

    /// Owner only, after a poll that did not report the eventfd: withdraws the announcement
    /// without reading the eventfd (no system call). A sender that saw the announcement
    /// already wrote the eventfd; the next poll returns at once and `awake` reads it.
    public func stopSleeping() {
        if announced & 1 != 0 { announced += 1; sleeps.pointee.store(announced, ordering: .sequentiallyConsistent) }
    }

    /// Owner only: blocks until a message arrives (for owners with nothing else to poll).
    public func wait() {
        guard prepareToSleep() else { return }
        var poller = pollfd(fd: wakeupDescriptor, events: Int16(POLLIN), revents: 0)
        while poll(&poller, 1, -1) < 0 && errno == EINTR {}
        awake()
    }
}
