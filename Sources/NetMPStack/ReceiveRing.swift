import Synchronization

/// A socket's receive buffer as the seed describes it: one producer (the owner core) and any
/// number of consumers (application threads), no lock on the data path. The owner writes
/// bytes past the published end (in order or, for out-of-order data, further along) and
/// publishes them by moving `tail`; readers copy and then claim by CAS on `head`, so a byte
/// is copied into the ring once and out of it once. There is no shared byte count: readers
/// see `tail - head` as a lower bound of what is readable, the owner `head` as a lower bound
/// of what is free. End of stream is published after the last data, so no reader reports
/// EOF while bytes remain.
public final class ReceiveRing: @unchecked Sendable {
    public var capacity: Int { storage.capacity }
    let storage: RingStorage
    let tail = Atomic<Int>(0)
    let head = Atomic<Int>(0)
    let endOfStream = Atomic<Bool>(false)
    /// The furthest position the owner ever wrote (owner only): how much of the ring's
    /// memory was touched, when it is given back.
    var writtenEnd = 0
    /// Readers block here; the owner wakes them after publishing.
    public let readers = WaitWord()

    public init(capacity: Int) {
        storage = RingStorage(capacity: capacity)
    }
    deinit { storage.deallocate(touched: writtenEnd) }

    // MARK: Owner

    /// Bytes the owner may write past the published end (a lower bound: readers free more).
    public var free: Int { capacity - (tail.load(ordering: .relaxed) - head.load(ordering: .acquiring)) }

    /// Copies `bytes` to `offset` bytes past the published end. Precondition: they fit in `free`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= free, "write past the ring's free space")
        let position = tail.load(ordering: .relaxed) + offset
        storage.copyIn(bytes, at: position)
        writtenEnd = max(writtenEnd, position + bytes.count)
    }

    /// How far readers have consumed (an absolute position): the owner reopens the window by
    /// the difference from what it saw last.
    public var consumedPosition: Int { head.load(ordering: .acquiring) }
    /// Bytes ever published: it moves when data arrives (epoll's edge-triggered EPOLLIN).
    public var publishedPosition: Int { tail.load(ordering: .acquiring) }

    /// Makes `count` more bytes readable and wakes blocked readers.
    public func publish(_ count: Int) {
        tail.add(count, ordering: .releasing)
        readers.wakeAll()
    }

    /// The peer finished: readers drain what is published, then see end of stream.
    public func publishEndOfStream() {
        endOfStream.store(true, ordering: .releasing)
        readers.wakeAll()
    }

    // MARK: Readers (any thread)

    /// Bytes readable now, a lower bound (FIONREAD).
    public var readable: Int { tail.load(ordering: .acquiring) - head.load(ordering: .acquiring) }

    /// Reads up to `destination.count` bytes; 0 when nothing is published (see `atEnd`).
    public func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let h = head.load(ordering: .acquiring)
            let available = tail.load(ordering: .acquiring) - h
            let n = min(available, destination.count)
            guard n > 0 else { return 0 }
            storage.copyOut(from: h, count: n, into: destination)
            // The owner never writes below `head`, so the copy is valid if nobody claimed first.
            if head.compareExchange(expected: h, desired: h + n, ordering: .acquiringAndReleasing).exchanged { return n }
        }
    }

    /// Copies up to `destination.count` readable bytes without consuming them (MSG_PEEK).
    public func peek(into destination: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let h = head.load(ordering: .acquiring)
            let n = min(tail.load(ordering: .acquiring) - h, destination.count)
            guard n > 0 else { return 0 }
            storage.copyOut(from: h, count: n, into: destination)
            // Valid if nobody consumed meanwhile: the owner reuses space only below a moved head.
            if head.load(ordering: .acquiring) == h { return n }
        }
    }

    /// True once end of stream is published and every byte before it has been read.
    /// The end of the stream was published (the peer's FIN), whether or not data before it
    /// is still unread.
    public var endOfStreamArrived: Bool { endOfStream.load(ordering: .acquiring) }
    public var atEnd: Bool { endOfStream.load(ordering: .acquiring) && readable == 0 }

    /// Blocks until something is readable or the stream ended (or `timeout` passed).
    @discardableResult
    public func waitReadable(timeout: Int? = nil) -> Bool {
        readers.wait(timeout: timeout) { readable > 0 || endOfStream.load(ordering: .acquiring) }
    }
}
