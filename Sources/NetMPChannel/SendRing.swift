import CNetMPChannel
import NetMPWire
import Synchronization
import struct Glibc.iovec

/// A socket's send buffer: any number of application threads append (many producers), the
/// owner core sends and frees (one consumer). A writer reserves space by CAS on `reserved`,
/// copies, and commits in reservation order (a writer whose predecessor is still copying
/// waits for it: concurrent writes to one stream socket are ordered, as in the kernel). The
/// owner reads committed bytes and frees them as they are acknowledged. Writers see
/// `reserved - released` as an upper bound of what is held; nothing else is shared.
///
/// The positions and the wait word live in the ring's control block (`netmp_send_ring`):
/// a stream socket's in its table entry, other rings' in front of their data.
public final class SendRing: @unchecked Sendable {
    public var capacity: Int { storage.capacity }
    public let storage: RingStorage
    // The control block's words, found from its address when used (a constant offset each):
    // an object per socket on each side of the stack service, kept small.
    var reserved: UnsafeMutablePointer<Atomic<Int>> { storage.block.atomic(Int.self, at: Self.reservedAt) }
    var committed: UnsafeMutablePointer<Atomic<Int>> { storage.block.atomic(Int.self, at: Self.committedAt) }
    var released: UnsafeMutablePointer<Atomic<Int>> { storage.block.atomic(Int.self, at: Self.releasedAt) }
    var sent: UnsafeMutablePointer<Atomic<Int>> { storage.block.atomic(Int.self, at: Self.sentAt) }
    var limit: UnsafeMutablePointer<Atomic<Int>> { storage.block.atomic(Int.self, at: Self.limitAt) }
    /// Writers waiting for space block here; the owner wakes them when it frees.
    public var writers: WaitWord { WaitWord(zeroedAt: storage.block + Self.writersAt) }
    typealias Block = netmp_send_ring

    // The offsets, constants from netmp_channel.h (SharedWords.swift's `atomic(_:at:)` says why).
    static var reservedAt: Int { NETMP_SEND_RING_RESERVED_AT }
    static var committedAt: Int { NETMP_SEND_RING_COMMITTED_AT }
    static var releasedAt: Int { NETMP_SEND_RING_RELEASED_AT }
    static var sentAt: Int { NETMP_SEND_RING_SENT_AT }
    static var limitAt: Int { NETMP_SEND_RING_LIMIT_AT }
    static var writersAt: Int { NETMP_SEND_RING_WRITERS_AT }
    /// The owner's own view of the positions. It publishes `released` but never reads it
    /// back, and takes a new `committed` only when it moved forward and within the ring:
    /// in the stack service the control block is memory the client can write, and what a
    /// client writes there must not make the owner copy past the ring or trap.
    var ownerReleased = 0, ownerCommitted = 0, ownerSent = 0
    /// Times the owner found `committed` somewhere no writer could have put it.
    public private(set) var impossiblePositions = 0

    public convenience init(capacity: Int) {
        self.init(storage: RingStorage(capacity: capacity, headerLength: MemoryLayout<netmp_send_ring>.size))
    }

    /// A ring placed in a socket table's slot, its control block at `block` and its data at
    /// `data` (right after the block when nil) (RingStorage.Owner: the slot's lease, or the
    /// mapping a view sees it through).
    convenience init(placedAt block: UnsafeMutableRawPointer, data: UnsafeMutableRawPointer? = nil, capacity: Int, owner: RingStorage.Owner) {
        self.init(storage: RingStorage(placedAt: block, data: data, capacity: capacity, headerLength: MemoryLayout<netmp_send_ring>.size, owner: owner))
    }

    init(storage: RingStorage) {
        self.storage = storage
        ownerReleased = released.pointee.load(ordering: .acquiring)
        ownerCommitted = ownerReleased
        ownerSent = sent.pointee.load(ordering: .relaxed)
    }
    deinit { storage.deallocate(touched: reserved.pointee.load(ordering: .relaxed)) }

    // MARK: Writers (any thread)

    /// The most writers may hold, written and not yet acknowledged: the capacity, or less
    /// where SO_SNDBUF asked for less (Linux blocks a writer once the socket's queued
    /// bytes reach its sk_sndbuf). In the block, so every process holding the socket keeps
    /// to it; only writers read it, never the owner.
    public var usable: Int {
        let asked = limit.pointee.load(ordering: .relaxed)
        return asked > 0 && asked < capacity ? asked : capacity
    }

    /// Writers may hold at most `bytes` (0 or at least the capacity: all of it). Blocked
    /// writers look again: a larger limit may have made room.
    public func limitWriters(to bytes: Int) {
        limit.pointee.store(max(0, bytes), ordering: .relaxed)
        writers.wakeAll()
    }

    /// Space for writers now, a lower bound (the owner frees more).
    public var free: Int { usable &- outstanding }

    /// A third of what writers may hold is free: Linux's sk_stream_is_writeable, when poll
    /// says a stream socket is writable (the limit read once).
    public var aThirdFree: Bool {
        let usable = usable
        return usable &- outstanding >= usable / 3
    }

    /// Appends as much of `bytes` as fits; returns how much (0 when full).
    public func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        var end = 0
        return write(bytes, end: &end)
    }

    /// The same, and where the bytes written end (the position just past the last), which
    /// `beforeCommit` is told before the bytes are committed (send(MSG_OOB) marks its last
    /// byte urgent so, and the owner never sends the bytes without the mark).
    public func write(_ bytes: UnsafeRawBufferPointer, end: inout Int, beforeCommit: ((Int) -> Void)? = nil) -> Int {
        let (start, n) = reserve(upTo: bytes.count)
        guard n > 0 else { return 0 }
        storage.copyIn(UnsafeRawBufferPointer(rebasing: bytes[0..<n]), at: start)
        beforeCommit?(start + n)
        commit(start, to: start + n)
        end = start + n
        return n
    }

    /// Appends as much as fits of the bytes `pieces` hold past their first `offset`, as
    /// one reservation committed once: a gathered write (writev, sendmsg) reaches the owner
    /// whole, as one write does, never a piece before the rest. Returns how much (0 when
    /// full), and where it ends in `end`.
    public func write(gathering pieces: UnsafeBufferPointer<iovec>, from offset: Int, total: Int, end: inout Int,
                      beforeCommit: ((Int) -> Void)? = nil) -> Int {
        let (start, n) = reserve(upTo: total - offset)
        guard n > 0 else { return 0 }
        var skip = offset, at = start, left = n
        for piece in pieces where left > 0 && piece.iov_len > 0 {
            guard skip < piece.iov_len else { skip -= piece.iov_len; continue }
            let count = min(piece.iov_len - skip, left)
            storage.copyIn(UnsafeRawBufferPointer(start: piece.iov_base! + skip, count: count), at: at)
            at += count
            left -= count
            skip = 0
        }
        beforeCommit?(start + n)
        commit(start, to: start + n)
        end = start + n
        return n
    }

    /// Reserves as much of `wanted` as writers have room for (`usable` less what is held):
    /// where it starts and how much (0 when full).
    @inline(__always) func reserve(upTo wanted: Int) -> (start: Int, count: Int) {
        var start = reserved.pointee.load(ordering: .relaxed)
        while true {
            let n = min(usable &- (start &- released.pointee.load(ordering: .acquiring)), wanted)
            guard n > 0 else { return (start, 0) }
            let (exchanged, current) = reserved.pointee.compareExchange(expected: start, desired: start + n, ordering: .acquiringAndReleasing)
            if exchanged { return (start, n) }
            start = current
        }
    }

    /// Commits a reservation's bytes, `start` to `end`, once every earlier reservation is
    /// committed: the owner sees writes in reservation order.
    @inline(__always) func commit(_ start: Int, to end: Int) {
        while committed.pointee.load(ordering: .acquiring) != start { ChannelCalls.yield() }
        committed.pointee.store(end, ordering: .releasing)
    }

    /// Appends `parts` as one record, all or nothing (a datagram must not be split or
    /// interleaved with another writer's); false when they do not fit now.
    public func writeRecord(_ parts: UnsafeRawBufferPointer...) -> Bool {
        writeRecords(total: parts.reduce(0) { $0 + $1.count }) { writer in
            for part in parts { writer.append(part) }
        }
    }

    /// Where `writeRecords` puts the bytes its caller appends.
    public struct RecordWriter {
        let storage: RingStorage
        var at: Int
        let end: Int
        /// Copies `bytes` after what was appended before (never past the reservation).
        public mutating func append(_ bytes: UnsafeRawBufferPointer) {
            precondition(at + bytes.count <= end, "send ring: a record runs past its reservation")
            storage.copyIn(bytes, at: at)
            at += bytes.count
        }
    }

    /// Reserves `total` bytes, lets `fill` append exactly that many (one record or several:
    /// the datagrams of one UDP_SEGMENT send), and commits them together, all or nothing;
    /// false when they do not fit now.
    public func writeRecords(total: Int, _ fill: (inout RecordWriter) -> Void) -> Bool {
        var start = reserved.pointee.load(ordering: .relaxed)
        while true {
            guard capacity &- (start &- released.pointee.load(ordering: .acquiring)) >= total else { return false }
            let (exchanged, current) = reserved.pointee.compareExchange(expected: start, desired: start + total, ordering: .acquiringAndReleasing)
            if exchanged { break }
            start = current
        }
        var writer = RecordWriter(storage: storage, at: start, end: start + total)
        fill(&writer)
        precondition(writer.at == start + total, "send ring: a reservation left partly unwritten")
        commit(start, to: start + total)
        return true
    }

    /// Bytes written and not yet sent (TCP_NOTSENT_LOWAT): an upper bound while the owner
    /// sends, exact once it published. Never negative, whatever the owner's word says.
    public var notSent: Int {
        max(0, committed.pointee.load(ordering: .acquiring) &- sent.pointee.load(ordering: .acquiring))
    }

    /// Bytes ever released (acknowledged): it moves when space frees (edge-triggered EPOLLOUT).
    public var releasedPosition: Int { released.pointee.load(ordering: .acquiring) }
    /// Bytes written and not yet acknowledged, an upper bound (SIOCOUTQ).
    public var outstanding: Int { reserved.pointee.load(ordering: .acquiring) &- released.pointee.load(ordering: .acquiring) }

    // MARK: Owner

    /// Committed bytes not yet released (what the owner may send, and resend): never
    /// less than the owner last saw, never more than the ring holds.
    public var held: Int {
        let committedNow = committed.pointee.load(ordering: .acquiring)
        if committedNow != ownerCommitted {
            let ahead = committedNow &- ownerCommitted, filled = committedNow &- ownerReleased
            if ahead > 0 && filled >= 0 && filled <= capacity { ownerCommitted = committedNow } else { impossiblePositions &+= 1 }
        }
        return ownerCommitted &- ownerReleased
    }

    /// Owner: how far the held bytes reach (the position just past the last committed).
    public var heldEnd: Int { ownerCommitted }

    /// Copies `count` held bytes starting `offset` past the oldest unreleased byte.
    public func copy(from offset: Int, count: Int, into destination: UnsafeMutableRawBufferPointer) {
        precondition(offset >= 0 && offset + count <= held && count <= destination.count)
        storage.copyOut(from: ownerReleased &+ offset, count: count, into: destination)
    }

    /// The owner: the bytes `copy` would copy, where they lie in the ring (for a write that
    /// gathers them: they stay put until acknowledged and released).
    public func spans(from offset: Int, count: Int) -> PayloadSpans {
        precondition(offset >= 0 && offset + count <= held)
        return storage.spans(from: ownerReleased &+ offset, count: count)
    }

    /// The owner: `count` bytes past the oldest unreleased one have been sent (a retransmission
    /// timeout does not take it back). Published only when it moved.
    public func publishSent(_ count: Int) {
        let position = ownerReleased &+ count
        guard position != ownerSent else { return }
        ownerSent = position
        sent.pointee.store(position, ordering: .releasing)
    }

    /// Frees the `count` oldest bytes (acknowledged) and wakes blocked writers.
    public func release(_ count: Int) {
        precondition(count >= 0 && count <= held)
        ownerReleased &+= count
        released.pointee.store(ownerReleased, ordering: .releasing)
        writers.wakeAll()
    }
}
