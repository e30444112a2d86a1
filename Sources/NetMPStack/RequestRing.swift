import CNetMPChannel
import Glibc
import NetMPTCP
import NetMPWire
import Synchronization

/// A usrreq as a value: what an application thread asks of the core that owns one of its
/// sockets. It travels as a `netmp_request` record (netmp_channel.h) and names the socket by
/// handle, so nothing but numbers crosses from the application's side to the core's.
public struct Request: Equatable, Sendable {
    public enum Kind: UInt32, Sendable {
        case connect = 1, output, window, shutdownWrite, close, query, setOption
        case datagramOutput = 16, datagramClose
    }
    public var kind: Kind
    public var handle: SocketHandle
    /// connect: the remote end; the bound local port (0: the core picks one).
    public var remote = Endpoint(IPv4Address(0), 0)
    public var localPort: UInt16 = 0
    /// close: with a RST.
    public var abort = false
    /// connect, query: a process-local reference (the options; the question and its
    /// answer), until the stack service gives them records of their own.
    public var argument: UInt64 = 0
    /// setOption: which, and its value.
    public var option: StreamOption? = nil
    public var value: Int64 = 0

    public init(_ kind: Kind, _ handle: SocketHandle) {
        self.kind = kind
        self.handle = handle
    }
}

/// A core's request ring: many application threads produce, the core alone consumes. The
/// same algorithm as `MessagePort` (Vyukov's bounded queue with one consumer), over C
/// records instead of Swift values, so that in the stack service the ring can sit in memory
/// a client process shares with the stack (docs/STACK-SERVICE.md). A record's `turn` says
/// whose it is: 2r while free for round r of the ring, 2r + 1 once published in that round;
/// zeros are an empty ring.
///
/// The ring does not wake its core: the sender rings the core's port doorbell after it
/// published (`MessagePort.wakeIfSleeping`), and the core looks at both before it sleeps.
public final class RequestRing: @unchecked Sendable {
    public let capacity: Int
    let memory: UnsafeMutableRawPointer
    let tail: UnsafeMutablePointer<Atomic<Int>>
    let head: UnsafeMutablePointer<Atomic<Int>>
    /// Records the core dropped because their kind, or a set-option's option, was unknown
    /// (never from this process's own threads; a scribbling client's, once clients are
    /// other processes).
    public private(set) var malformed: UInt64 = 0

    static let recordSize = MemoryLayout<netmp_request>.size
    static let blockSize = MemoryLayout<netmp_request_ring>.size

    /// `capacity` is rounded up to a power of two.
    public init(capacity: Int) {
        var size = 1
        while size < capacity { size <<= 1 }
        self.capacity = size
        let bytes = Self.blockSize + size * Self.recordSize
        memory = .allocate(byteCount: bytes, alignment: Int(NETMP_CACHE_LINE))
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        typealias Block = netmp_request_ring
        tail = memory.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.tail)!)
        head = memory.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.head)!)
    }
    deinit { memory.deallocate() }

    /// The record at `position`, for tests that write into a ring as a faulty client would.
    public func recordForTesting(_ position: Int) -> UnsafeMutableRawPointer { record(position) }

    func record(_ position: Int) -> UnsafeMutableRawPointer {
        memory + Self.blockSize + (position & (capacity - 1)) * Self.recordSize
    }
    func turn(_ record: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        record.atomic(UInt64.self, at: MemoryLayout<netmp_request>.offset(of: \netmp_request.turn)!)
    }
    func round(_ position: Int) -> UInt64 { UInt64(position / capacity) }

    /// Any thread: queues `request`; false when the ring is full (the core is far behind).
    /// The record is published with a sequentially consistent store, so a sender that then
    /// finds the core not sleeping knows the core will see the record before it sleeps.
    @discardableResult
    public func send(_ request: Request) -> Bool {
        var position = tail.pointee.load(ordering: .relaxed)
        var slot: UnsafeMutableRawPointer
        while true {
            slot = record(position)
            let turn = turn(slot).pointee.load(ordering: .acquiring)
            let free = 2 * round(position)
            if turn == free {
                if tail.pointee.compareExchange(expected: position, desired: position + 1, ordering: .relaxed).exchanged { break }
                position = tail.pointee.load(ordering: .relaxed)
            } else if turn < free {
                return false // last round's record is still unread
            } else {
                position = tail.pointee.load(ordering: .relaxed)
            }
        }
        // The record is this thread's alone until its turn says published.
        typealias R = netmp_request
        slot.storeBytes(of: request.kind.rawValue, toByteOffset: MemoryLayout<R>.offset(of: \R.kind)!, as: UInt32.self)
        slot.storeBytes(of: request.handle.slot, toByteOffset: MemoryLayout<R>.offset(of: \R.slot)!, as: UInt32.self)
        slot.storeBytes(of: request.handle.generation, toByteOffset: MemoryLayout<R>.offset(of: \R.generation)!, as: UInt32.self)
        slot.storeBytes(of: request.remote.address.value, toByteOffset: MemoryLayout<R>.offset(of: \R.address)!, as: UInt32.self)
        slot.storeBytes(of: request.remote.port, toByteOffset: MemoryLayout<R>.offset(of: \R.port)!, as: UInt16.self)
        slot.storeBytes(of: request.localPort, toByteOffset: MemoryLayout<R>.offset(of: \R.local_port)!, as: UInt16.self)
        slot.storeBytes(of: request.abort ? NETMP_REQUEST_FLAG_ABORT : 0, toByteOffset: MemoryLayout<R>.offset(of: \R.flags)!,
                        as: UInt32.self)
        slot.storeBytes(of: request.argument, toByteOffset: MemoryLayout<R>.offset(of: \R.argument)!, as: UInt64.self)
        slot.storeBytes(of: request.option?.rawValue ?? 0, toByteOffset: MemoryLayout<R>.offset(of: \R.option)!, as: UInt32.self)
        slot.storeBytes(of: request.value, toByteOffset: MemoryLayout<R>.offset(of: \R.value)!, as: Int64.self)
        turn(slot).pointee.store(2 * round(position) + 1, ordering: .sequentiallyConsistent)
        return true
    }

    /// The core only: a record is published and waiting (no system call: for spinning, and
    /// sequentially consistent for the look before sleeping).
    public var hasRequest: Bool {
        let position = head.pointee.load(ordering: .relaxed)
        return turn(record(position)).pointee.load(ordering: .sequentiallyConsistent) == 2 * round(position) + 1
    }

    /// The core only: takes the next record, if one is published. A record of an unknown
    /// kind (or option) is consumed, counted in `malformed`, and skipped.
    public func receive() -> Request? {
        while true {
            let position = head.pointee.load(ordering: .relaxed)
            let slot = record(position)
            guard turn(slot).pointee.load(ordering: .acquiring) == 2 * round(position) + 1 else { return nil }
            typealias R = netmp_request
            let kind = Request.Kind(rawValue: slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.kind)!, as: UInt32.self))
            var request: Request? = nil
            if let kind {
                let handle = SocketHandle(slot: slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.slot)!, as: UInt32.self),
                                          generation: slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.generation)!,
                                                                as: UInt32.self))
                var r = Request(kind, handle)
                r.remote = Endpoint(IPv4Address(slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.address)!, as: UInt32.self)),
                                    slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.port)!, as: UInt16.self))
                r.localPort = slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.local_port)!, as: UInt16.self)
                let flags = slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.flags)!, as: UInt32.self)
                r.abort = flags & NETMP_REQUEST_FLAG_ABORT != 0
                r.argument = slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.argument)!, as: UInt64.self)
                r.option = StreamOption(rawValue: slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.option)!, as: UInt32.self))
                r.value = slot.load(fromByteOffset: MemoryLayout<R>.offset(of: \R.value)!, as: Int64.self)
                // A set-option record must name an option this version knows.
                if kind != .setOption || r.option != nil { request = r }
            }
            if request == nil { malformed &+= 1 }
            turn(slot).pointee.store(2 * (round(position) + 1), ordering: .releasing)
            head.pointee.store(position + 1, ordering: .relaxed)
            if let request { return request }
        }
    }

    /// The core only: a record that decoded but could not be applied (a set-option value
    /// out of range) counts as malformed too.
    public func countMalformed() { malformed &+= 1 }

    /// The core only: handles up to `limit` records; returns how many.
    @discardableResult
    public func drain(limit: Int = 512, _ handle: (Request) -> Void) -> Int {
        var count = 0
        while count < limit, let request = receive() {
            handle(request)
            count += 1
        }
        return count
    }
}
