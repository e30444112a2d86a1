import CNetMPChannel
import Synchronization

/// A socket's receive buffer as the seed describes it: one producer (the owner core) and any
/// number of consumers (application threads), no lock on the data path. The owner writes
/// bytes past the published end (in order or, for out-of-order data, further along) and
/// publishes them by moving `tail`; readers copy and then claim by CAS on `head`, so a byte
/// is copied into the ring once and out of it once. There is no shared byte count: readers
/// see `tail - head` as a lower bound of what is readable, the owner `head` as a lower bound
/// of what is free. End of stream is published after the last data, so no reader reports
/// EOF while bytes remain.
///
/// The positions, the end-of-stream word and the wait word live in the ring's control block
/// (`netmp_receive_ring`): a socket's in its table entry, a ring's made on its own in front
/// of its data.
public final class ReceiveRing: @unchecked Sendable {
    public var capacity: Int { storage.capacity }
    public let storage: RingStorage
    // The control block's words, found from its address when used (a constant offset each):
    // an object per socket on each side of the stack service, kept small.
    var tail: UnsafeMutablePointer<Atomic<Int>> { storage.block.atomic(Int.self, at: Self.tailAt) }
    var head: UnsafeMutablePointer<Atomic<Int>> { storage.block.atomic(Int.self, at: Self.headAt) }
    /// 1 once the peer's FIN is in.
    var endOfStream: UnsafeMutablePointer<Atomic<UInt32>> { storage.block.atomic(UInt32.self, at: Self.endOfStreamAt) }
    typealias Block = netmp_receive_ring

    // The offsets, constants from netmp_channel.h (SharedWords.swift's `atomic(_:at:)` says why).
    static var tailAt: Int { NETMP_RECEIVE_RING_TAIL_AT }
    static var headAt: Int { NETMP_RECEIVE_RING_HEAD_AT }
    static var endOfStreamAt: Int { NETMP_RECEIVE_RING_END_OF_STREAM_AT }
    static var readersAt: Int { NETMP_RECEIVE_RING_READERS_AT }
    /// The furthest position the owner ever wrote (owner only): how much of the ring's
    /// memory was touched, when it is given back.
    var writtenEnd = 0
    /// Readers block here; the owner wakes them after publishing.
    public var readers: WaitWord { WaitWord(zeroedAt: storage.block + Self.readersAt) }
    /// The owner's own view of the positions (a client can write the control block).
    var owner: ProducerPositions
    /// Times the owner found `head` somewhere no reader could have put it.
    public var impossiblePositions: Int { owner.impossible }
    /// Owner only: the end of what it published.
    public var ownerTail: Int { owner.tail }

    public convenience init(capacity: Int) {
        self.init(storage: RingStorage(capacity: capacity, headerLength: MemoryLayout<netmp_receive_ring>.size))
    }

    /// A ring placed in a socket table's slot, its control block at `block` and its data at
    /// `data` (right after the block when nil) (RingStorage.Owner: the slot's lease, or the
    /// mapping a view sees it through).
    convenience init(placedAt block: UnsafeMutableRawPointer, data: UnsafeMutableRawPointer? = nil, capacity: Int, owner: RingStorage.Owner) {
        self.init(storage: RingStorage(placedAt: block, data: data, capacity: capacity, headerLength: MemoryLayout<netmp_receive_ring>.size, owner: owner))
    }

    init(storage: RingStorage) {
        self.storage = storage
        let block = storage.block
        owner = ProducerPositions(tail: block.atomic(Int.self, at: Self.tailAt),
                                  head: block.atomic(Int.self, at: Self.headAt),
                                  capacity: storage.capacity)
    }
    deinit { storage.deallocate(touched: writtenEnd) }

    // MARK: Owner

    /// Bytes the owner may write past the published end (a lower bound: readers free more).
    public var free: Int { capacity - unread }

    /// Published bytes no reader has taken yet, as the owner sees it.
    public var unread: Int { owner.unread(head) }

    /// Copies `bytes` to `offset` bytes past the published end; nothing to copy when the
    /// link read them there already (`landingZone`). Precondition: they fit in `free`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= free, "write past the ring's free space")
        let position = owner.tail &+ offset
        let at = RingStorage.index(position, capacity)
        if bytes.baseAddress != UnsafeRawPointer(storage.bytes.baseAddress! + at) || at + bytes.count > capacity {
            storage.copyIn(bytes, at: position)
        }
        writtenEnd = max(writtenEnd, position &+ bytes.count)
    }

    /// The free space from the published end up to where the ring's memory ends (at most
    /// `limit` bytes): where the link may read the next in-order payload so that `write`
    /// finds it in place (ProtocolLoop's landing). The owner may only offer it while no
    /// out-of-order data lies past the end. nil when less than `minimum` is free there.
    public func landingZone(limit: Int, minimum: Int) -> UnsafeMutableRawBufferPointer? {
        let at = RingStorage.index(owner.tail, capacity)
        let count = min(free, capacity - at, limit)
        guard count >= minimum else { return nil }
        return UnsafeMutableRawBufferPointer(rebasing: storage.bytes[at..<(at + count)])
    }

    /// The link wrote `count` bytes of the landing zone (whatever they turn out to be).
    public func landed(_ count: Int) {
        writtenEnd = max(writtenEnd, owner.tail &+ count)
    }

    /// How far readers have consumed (an absolute position), as the owner sees it: never
    /// behind what it saw last, never past what it published. The owner reopens the window
    /// by the difference from what it saw last.
    public var consumedPosition: Int { owner.takeHead(head) }
    /// Bytes ever published: it moves when data arrives (epoll's edge-triggered EPOLLIN).
    public var publishedPosition: Int { tail.pointee.load(ordering: .acquiring) }

    /// Makes `count` more bytes readable and wakes blocked readers.
    public func publish(_ count: Int) {
        owner.publish(count, at: tail)
        readers.wakeAll()
    }

    /// The peer finished: readers drain what is published, then see end of stream.
    public func publishEndOfStream() {
        endOfStream.pointee.store(1, ordering: .releasing)
        readers.wakeAll()
    }

    // MARK: Readers (any thread)

    /// Bytes readable now, a lower bound (FIONREAD).
    public var readable: Int { tail.pointee.load(ordering: .acquiring) &- head.pointee.load(ordering: .acquiring) }

    /// Reads up to `destination.count` bytes; 0 when nothing is published (see `atEnd`).
    public func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let h = head.pointee.load(ordering: .acquiring)
            let available = tail.pointee.load(ordering: .acquiring) &- h
            let n = min(available, destination.count)
            guard n > 0 else { return 0 }
            storage.copyOut(from: h, count: n, into: destination)
            // The owner never writes below `head`, so the copy is valid if nobody claimed first.
            if head.pointee.compareExchange(expected: h, desired: h &+ n, ordering: .acquiringAndReleasing).exchanged { return n }
        }
    }

    /// Copies up to `destination.count` readable bytes without consuming them (MSG_PEEK),
    /// from `skipping` bytes past the head (an urgent byte a peek looks past).
    public func peek(into destination: UnsafeMutableRawBufferPointer, skipping: Int = 0) -> Int {
        while true {
            let h = head.pointee.load(ordering: .acquiring)
            let n = min(tail.pointee.load(ordering: .acquiring) &- h &- skipping, destination.count)
            guard n > 0 else { return 0 }
            storage.copyOut(from: h &+ skipping, count: n, into: destination)
            // Valid if nobody consumed meanwhile: the owner reuses space only below a moved head.
            if head.pointee.load(ordering: .acquiring) == h { return n }
        }
    }

    /// The readers' head: the position of the next byte to read.
    public var headPosition: Int { head.pointee.load(ordering: .acquiring) }

    /// Consumes the one byte at `position` without copying it (an urgent byte a read steps
    /// over), if it is published and still the next; false otherwise.
    public func skipOne(at position: Int) -> Bool {
        guard tail.pointee.load(ordering: .acquiring) &- position > 0 else { return false }
        return head.pointee.compareExchange(expected: position, desired: position &+ 1, ordering: .acquiringAndReleasing).exchanged
    }

    /// Owner: the byte at `position`, which it wrote (an urgent byte, for the slot's word).
    func byte(at position: Int) -> UInt8 {
        storage.bytes[RingStorage.index(position, capacity)]
    }

    /// True once end of stream is published and every byte before it has been read.
    /// The end of the stream was published (the peer's FIN), whether or not data before it
    /// is still unread.
    public var endOfStreamArrived: Bool { endOfStream.pointee.load(ordering: .acquiring) != 0 }
    public var atEnd: Bool { endOfStream.pointee.load(ordering: .acquiring) != 0 && readable == 0 }
}
