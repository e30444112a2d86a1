import CNetMPChannel
import NetMPTCP
import NetMPWire
import Synchronization

/// A usrreq as a value: what an application thread asks of the core that owns one of its
/// sockets. It travels as a `netmp_request` record (netmp_channel.h) and names the socket by
/// handle, so nothing but numbers crosses from the application's side to the core's.
public struct Request: Equatable, Sendable {
    public enum Kind: UInt16, Sendable {
        case connect = 1, output, window, shutdownWrite, close, query, setOption
        /// On every core, answered in a reply slot (the port in `localPort`).
        case listen = 8, stopListening
        /// A port of the stack's (`localPort`, 0 for an ephemeral one; `datagram`: UDP's),
        /// answered in a reply slot.
        case reservePort = 10, releasePort
        case datagramOutput = 16, datagramClose, datagramBind, datagramUnbind
        /// A UDP socket joins or leaves the multicast group in `remote.address`, on every core.
        case datagramJoin = 20, datagramLeave
        /// A UDP socket's send to `remote` failed with EMSGSIZE (MTU in `value`): its home
        /// core queues the local error, answered in a reply slot.
        case datagramLocalError = 22
    }
    public var kind: Kind
    public var handle: SocketHandle
    /// connect: the remote end; the bound local port (0: the core picks one); the options.
    /// listen, stopListening, datagramUnbind: the port in `localPort`.
    public var remote = Endpoint(IPv4Address(0), 0)
    public var localPort: UInt16 = 0
    public var options = ConnectOptions()
    /// listen, stopListening, datagramUnbind, reservePort, releasePort: the families whose
    /// namespaces of ports the port is held in (a listener's: whose connections it takes).
    public var families: AddressFamilies = .ipv4
    /// close: with a RST.
    public var abort = false
    /// reservePort, releasePort: in UDP's namespace of ports rather than TCP's.
    public var datagram = false
    /// reservePort, listen, connect: the socket set SO_REUSEPORT and may share the port.
    public var shared = false
    /// reservePort, listen, connect: the socket set SO_REUSEADDR.
    public var reuseAddress = false
    /// setOption: which, and its value.
    public var option: StreamOption? = nil
    public var value: Int64 = 0
    /// query, and the requests set up on every core: the reply slot the answer goes to.
    public var reply: UInt32 = 0

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
extension Request.Kind {
    /// The kinds about a port, which say in which families' namespaces.
    var namesFamilies: Bool {
        switch self {
        case .listen, .stopListening, .datagramUnbind, .reservePort, .releasePort: true
        default: false
        }
    }
}

public final class RequestRing: SingleConsumerQueue, @unchecked Sendable {
    public let capacity: Int
    let memory: UnsafeMutableRawPointer
    let tail: UnsafeMutablePointer<Atomic<Int>>
    let head: UnsafeMutablePointer<Atomic<Int>>
    /// The core's own count of the records it took. It is published in `head` (senders
    /// read it for nothing; it says how far the core got), but never read back from there:
    /// in the stack service the ring is memory the client can write.
    var consumed = 0
    /// Records the core dropped because their kind, or a set-option's option, was unknown
    /// (never from this process's own threads; a scribbling client's, once clients are
    /// other processes).
    public private(set) var malformed: UInt64 = 0

    static let recordSize = MemoryLayout<netmp_request>.size
    static let blockSize = MemoryLayout<netmp_request_ring>.size

    /// Keeps the memory: nil when it is this object's, else the region it lies in.
    let region: ClientRegion?

    /// A ring in memory of its own; `capacity` is rounded up to a power of two.
    public convenience init(capacity: Int) {
        var size = 1
        while size < capacity { size <<= 1 }
        self.init(memory: .zeroed(bytes: Self.blockSize + size * Self.recordSize), capacity: size, region: nil)
    }

    /// Core `core`'s ring in `region`.
    public convenience init(in region: ClientRegion, core: Int) {
        self.init(memory: region.requestRing(core), capacity: region.requestCapacity, region: region)
    }

    init(memory: UnsafeMutableRawPointer, capacity: Int, region: ClientRegion?) {
        precondition(capacity > 0 && capacity.nonzeroBitCount == 1)
        self.capacity = capacity
        self.memory = memory
        self.region = region
        typealias Block = netmp_request_ring
        tail = memory.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.tail)!)
        head = memory.atomic(Int.self, at: MemoryLayout<Block>.offset(of: \Block.head)!)
    }
    deinit { if region == nil { memory.deallocate() } }

    /// The record at `position`, for tests that write into a ring as a faulty client would.
    public func recordForTesting(_ position: Int) -> UnsafeMutableRawPointer { record(position) }

    func record(_ position: Int) -> UnsafeMutableRawPointer {
        memory + Self.blockSize + (position & (capacity - 1)) * Self.recordSize
    }
    func turn(_ record: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        record.atomic(UInt64.self, at: MemoryLayout<netmp_request>.offset(of: \netmp_request.turn)!)
    }
    /// Wrapping, so that a position the client wrote (the tail) cannot trap.
    func round(_ position: Int) -> UInt64 { UInt64(bitPattern: Int64(position)) / UInt64(capacity) }

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
            let free = 2 &* round(position)
            if turn == free {
                if tail.pointee.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed).exchanged { break }
                position = tail.pointee.load(ordering: .relaxed)
            } else if turn < free {
                return false // last round's record is still unread
            } else {
                position = tail.pointee.load(ordering: .relaxed)
            }
        }
        // The record is this thread's alone until its turn says published.
        request.encode(into: slot)
        turn(slot).pointee.store(2 &* round(position) &+ 1, ordering: .sequentiallyConsistent)
        return true
    }

    /// The core only: a record is published and waiting (no system call: for spinning, and
    /// sequentially consistent for the look before sleeping).
    public var hasRequest: Bool {
        turn(record(consumed)).pointee.load(ordering: .sequentiallyConsistent) == 2 &* round(consumed) &+ 1
    }

    /// The most records of unknown kind `receive` skips in one call: a client that fills
    /// its ring with them as fast as the core takes them holds the core only that long.
    static let malformedPerCall = 64

    /// The core only: takes the next record, if one is published. A record of an unknown
    /// kind (or option) is consumed, counted in `malformed`, and skipped.
    public func receive() -> Request? {
        for _ in 0...Self.malformedPerCall {
            let position = consumed
            let slot = record(position)
            guard turn(slot).pointee.load(ordering: .acquiring) == 2 &* round(position) &+ 1 else { return nil }
            let request = Request(decoding: slot)
            if request == nil { malformed &+= 1 }
            turn(slot).pointee.store(2 &* (round(position) &+ 1), ordering: .releasing)
            consumed = position &+ 1
            head.pointee.store(consumed, ordering: .relaxed)
            if let request { return request }
        }
        return nil
    }

    /// The core only: a record that decoded but could not be applied (a set-option value
    /// out of range) counts as malformed too.
    public func countMalformed(_ count: Int = 1) { malformed &+= UInt64(clamping: count) }
}

extension Request {
    /// How the asking socket shares its port, as the client running as `uid` asked.
    public func reuse(uid: UInt32) -> PortReuse { PortReuse(address: reuseAddress, port: shared, uid: uid) }
}

extension Request {
    typealias Record = netmp_request
    static func offset(_ field: PartialKeyPath<Record>) -> Int { MemoryLayout<Record>.offset(of: field)! }

    /// Writes every field but `turn` into a netmp_request record.
    func encode(into record: UnsafeMutableRawPointer) {
        func put<T>(_ value: T, _ field: PartialKeyPath<Record>) {
            record.storeBytes(of: value, toByteOffset: Self.offset(field), as: T.self)
        }
        var flags: UInt16 = abort ? NETMP_REQUEST_FLAG_ABORT : 0
        if datagram { flags |= NETMP_REQUEST_FLAG_DATAGRAM }
        if shared { flags |= NETMP_REQUEST_FLAG_SHARED }
        if reuseAddress { flags |= NETMP_REQUEST_FLAG_REUSE_ADDRESS }
        if kind.namesFamilies {
            if families.contains(.ipv6) { flags |= NETMP_REQUEST_FLAG_IPV6 }
            if !families.contains(.ipv4) { flags |= NETMP_REQUEST_FLAG_V6ONLY }
        }
        put(kind.rawValue, \.kind)
        put(flags, \.flags)
        put(handle.slot, \.slot)
        put(handle.generation, \.generation)
        put(remote.ipv4Value, \.address)
        put(remote.port, \.port)
        put(localPort, \.local_port)
        put(options.raw, \.options)
        put(value, \.value)
        put(option?.rawValue ?? 0, \.option)
        put(reply, \.reply)
        if kind == .datagramJoin || kind == .datagramLeave || kind == .datagramLocalError { // an address, over the connect options
            let at = Self.offset(\.options)
            record.storeBytes(of: remote.address.bits.high, toByteOffset: at, as: UInt64.self)
            record.storeBytes(of: remote.address.bits.low, toByteOffset: at + 8, as: UInt64.self)
        }
        if kind == .connect, !remote.address.isIPv4 {
            // An IPv6 destination lies over the words a connect does not use.
            record.storeAddress(remote.address, at: Self.offset(\.value))
            put(flags | NETMP_REQUEST_FLAG_IPV6, \.flags)
        }
    }

    /// Reads a netmp_request record; nil for a kind, option or algorithm this version does
    /// not know (the values themselves are checked where they are used).
    init?(decoding record: UnsafeMutableRawPointer) {
        func get<T>(_ field: PartialKeyPath<Record>, as type: T.Type) -> T {
            record.load(fromByteOffset: Self.offset(field), as: T.self)
        }
        guard let kind = Kind(rawValue: get(\.kind, as: UInt16.self)) else { return nil }
        self.init(kind, SocketHandle(slot: get(\.slot, as: UInt32.self), generation: get(\.generation, as: UInt32.self)))
        let flags = get(\.flags, as: UInt16.self)
        abort = flags & NETMP_REQUEST_FLAG_ABORT != 0
        datagram = flags & NETMP_REQUEST_FLAG_DATAGRAM != 0
        shared = flags & NETMP_REQUEST_FLAG_SHARED != 0
        reuseAddress = flags & NETMP_REQUEST_FLAG_REUSE_ADDRESS != 0
        switch kind {
        case .connect:
            let address = flags & NETMP_REQUEST_FLAG_IPV6 != 0
                ? record.loadAddress(at: Self.offset(\.value)) : IPAddress(IPv4Address(get(\.address, as: UInt32.self)))
            remote = Endpoint(address, get(\.port, as: UInt16.self))
            localPort = get(\.local_port, as: UInt16.self)
            guard let decoded = ConnectOptions(get(\.options, as: netmp_stream_options.self)) else { return nil }
            options = decoded
        case .setOption:
            guard let option = StreamOption(rawValue: get(\.option, as: UInt32.self)) else { return nil }
            self.option = option
            value = get(\.value, as: Int64.self)
        case .query:
            reply = get(\.reply, as: UInt32.self)
        case .listen, .stopListening, .datagramBind, .datagramUnbind, .reservePort, .releasePort:
            localPort = get(\.local_port, as: UInt16.self)
            reply = get(\.reply, as: UInt32.self)
            if kind.namesFamilies {
                families = flags & NETMP_REQUEST_FLAG_V6ONLY != 0 ? [] : .ipv4
                if flags & NETMP_REQUEST_FLAG_IPV6 != 0 { families.insert(.ipv6) }
                guard !families.isEmpty else { return nil } // takes nothing: not a record we wrote
            }
        case .datagramJoin, .datagramLeave, .datagramLocalError:
            let at = Self.offset(\.options)
            remote = Endpoint(IPAddress(IPv6Address(high: record.loadUnaligned(fromByteOffset: at, as: UInt64.self),
                                                    low: record.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self))),
                              kind == .datagramLocalError ? get(\.port, as: UInt16.self) : 0)
            value = kind == .datagramLocalError ? get(\.value, as: Int64.self) : 0
            reply = get(\.reply, as: UInt32.self)
        case .output, .window, .shutdownWrite, .close, .datagramOutput, .datagramClose:
            break
        }
    }
}
