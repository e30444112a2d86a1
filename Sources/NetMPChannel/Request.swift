import CNetMPChannel
import NetMPTCP
import NetMPWire

/// A usrreq as a value: what an application thread asks of the core that owns one of its
/// sockets. It travels as a `netmp_request` record (netmp_channel.h) and names the socket by
/// handle, so nothing but numbers crosses from the application's side to the core's.
///
/// The value is the record itself: each field below reads and writes its place in a
/// `netmp_request`, so posting one copies 56 bytes into the ring and taking one copies them
/// out and checks the few fields a kind needs. (A Swift struct of the same fields cost the
/// sender and the core about six times what the stack's own message port costs per message,
/// most of it in building, encoding, decoding and copying an 84-byte value.) Fields belong to
/// kinds: what a kind does not name is zero, and a connect's IPv6 destination lies over
/// `value`, `option` and `reply`, which a connect does not use.
public struct Request: Sendable {
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
    typealias Record = netmp_request

    /// The record as it travels; its `turn` is the ring's and stays 0 here.
    var record = Record()
    public let kind: Kind

    public init(_ kind: Kind, _ handle: SocketHandle) {
        self.kind = kind
        record.kind = kind.rawValue
        record.slot = handle.slot
        record.generation = handle.generation
        if kind == .connect { record.options = Self.defaultOptions }
    }
    static let defaultOptions = ConnectOptions().raw

    public var handle: SocketHandle {
        get { SocketHandle(slot: record.slot, generation: record.generation) }
        set { record.slot = newValue.slot; record.generation = newValue.generation }
    }

    /// connect: the remote end. datagramJoin, datagramLeave: the group (port 0);
    /// datagramLocalError: the destination that failed.
    public var remote: Endpoint {
        get {
            switch kind {
            case .connect where flag(NETMP_REQUEST_FLAG_IPV6):
                Endpoint(address(at: Self.valueOffset), record.port)
            case .datagramJoin, .datagramLeave, .datagramLocalError:
                Endpoint(address(at: Self.optionsOffset), record.port)
            default:
                Endpoint(IPv4Address(record.address), record.port)
            }
        }
        set {
            record.port = newValue.port
            switch kind {
            case .datagramJoin, .datagramLeave, .datagramLocalError:
                setAddress(newValue.address, at: Self.optionsOffset)
            case .connect where !newValue.address.isIPv4:
                // An IPv6 destination lies over the words a connect does not use.
                setAddress(newValue.address, at: Self.valueOffset)
                setFlag(NETMP_REQUEST_FLAG_IPV6, true)
            default:
                precondition(newValue.address.isIPv4, "only a connect or a group carries an IPv6 address")
                record.address = newValue.ipv4Value
                if kind == .connect { setFlag(NETMP_REQUEST_FLAG_IPV6, false) }
            }
        }
    }

    /// connect: the bound local port (0: the core picks one). listen, stopListening,
    /// datagramUnbind, reservePort, releasePort: the port.
    public var localPort: UInt16 {
        get { record.local_port }
        set { record.local_port = newValue }
    }

    /// connect: the options the socket set before it.
    public var options: ConnectOptions {
        get { ConnectOptions(record.options) ?? ConnectOptions() }
        set { record.options = newValue.raw }
    }

    /// listen, stopListening, datagramUnbind, reservePort, releasePort: the families whose
    /// namespaces of ports the port is held in (a listener's: whose connections it takes).
    /// IPv4 alone for every other kind.
    public var families: AddressFamilies {
        get {
            guard kind.namesFamilies else { return .ipv4 }
            var families: AddressFamilies = flag(NETMP_REQUEST_FLAG_V6ONLY) ? [] : .ipv4
            if flag(NETMP_REQUEST_FLAG_IPV6) { families.insert(.ipv6) }
            return families
        }
        set {
            precondition(kind.namesFamilies || newValue == .ipv4, "\(kind) names no families")
            guard kind.namesFamilies else { return }
            setFlag(NETMP_REQUEST_FLAG_IPV6, newValue.contains(.ipv6))
            setFlag(NETMP_REQUEST_FLAG_V6ONLY, !newValue.contains(.ipv4))
        }
    }

    /// close: with a RST.
    public var abort: Bool {
        get { flag(NETMP_REQUEST_FLAG_ABORT) }
        set { setFlag(NETMP_REQUEST_FLAG_ABORT, newValue) }
    }
    /// reservePort, releasePort: in UDP's namespace of ports rather than TCP's.
    public var datagram: Bool {
        get { flag(NETMP_REQUEST_FLAG_DATAGRAM) }
        set { setFlag(NETMP_REQUEST_FLAG_DATAGRAM, newValue) }
    }
    /// reservePort, listen, connect: the socket set SO_REUSEPORT and may share the port.
    public var shared: Bool {
        get { flag(NETMP_REQUEST_FLAG_SHARED) }
        set { setFlag(NETMP_REQUEST_FLAG_SHARED, newValue) }
    }
    /// reservePort, listen, connect: the socket set SO_REUSEADDR.
    public var reuseAddress: Bool {
        get { flag(NETMP_REQUEST_FLAG_REUSE_ADDRESS) }
        set { setFlag(NETMP_REQUEST_FLAG_REUSE_ADDRESS, newValue) }
    }

    /// setOption: which, and its value (datagramLocalError: the MTU in `value`).
    public var option: StreamOption? {
        get { kind == .connect ? nil : StreamOption(rawValue: record.option) }
        set { precondition(kind != .connect); record.option = newValue?.rawValue ?? 0 }
    }
    public var value: Int64 {
        get { kind == .connect ? 0 : record.value }
        set { precondition(kind != .connect); record.value = newValue }
    }
    /// query, and the requests set up on every core: the reply slot the answer goes to.
    public var reply: UInt32 {
        get { kind == .connect ? 0 : record.reply }
        set { precondition(kind != .connect); record.reply = newValue }
    }

    // MARK: The record's bytes

    static var optionsOffset: Int { NETMP_REQUEST_OPTIONS_AT }
    static var valueOffset: Int { NETMP_REQUEST_VALUE_AT }
    /// The bytes before the kind: `turn`, which only the ring's atomics touch. The size of
    /// the word, which netmp_channel.h asserts comes first with the kind right after it: a
    /// constant, where `offset(of:)` in a static is a lazily made global that every encode
    /// checks (and a debug build's computed one walks its key path at every call).
    static let turnLength = MemoryLayout<UInt64>.size

    func flag(_ bit: UInt16) -> Bool { record.flags & bit != 0 }
    mutating func setFlag(_ bit: UInt16, _ on: Bool) {
        if on { record.flags |= bit } else { record.flags &= ~bit }
    }
    func address(at offset: Int) -> IPAddress {
        withUnsafeBytes(of: record) {
            IPAddress(IPv6Address(high: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
                                  low: $0.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
        }
    }
    mutating func setAddress(_ address: IPAddress, at offset: Int) {
        withUnsafeMutableBytes(of: &record) {
            $0.storeBytes(of: address.bits.high, toByteOffset: offset, as: UInt64.self)
            $0.storeBytes(of: address.bits.low, toByteOffset: offset + 8, as: UInt64.self)
        }
    }

    /// Writes the record, all but its `turn`, into a ring's place.
    func encode(into place: UnsafeMutableRawPointer) {
        withUnsafeBytes(of: record) {
            (place + Self.turnLength).copyMemory(from: $0.baseAddress! + Self.turnLength, byteCount: $0.count - Self.turnLength)
        }
    }

    /// Reads a netmp_request record, which may come from a client that scribbles: nil for a
    /// kind, option or algorithm this version does not know, or a port request that names
    /// no family (the values themselves are checked where they are used).
    init?(decoding place: UnsafeMutableRawPointer) {
        var record = Record()
        withUnsafeMutableBytes(of: &record) {
            $0.baseAddress!.copyMemory(from: place, byteCount: $0.count)
        }
        record.turn = 0
        guard let kind = Kind(rawValue: record.kind) else { return nil }
        self.kind = kind
        self.record = record
        switch kind {
        case .connect:
            guard ConnectOptions(record.options) != nil else { return nil }
        case .setOption:
            guard option != nil else { return nil }
        default:
            if kind.namesFamilies && families.isEmpty { return nil } // takes nothing: not a record we wrote
        }
    }
}

extension Request: Equatable {
    /// The same record (a value of the struct's is nothing but its record).
    public static func == (a: Request, b: Request) -> Bool {
        withUnsafeBytes(of: a.record) { x in
            withUnsafeBytes(of: b.record) { y in
                stride(from: 0, to: x.count, by: 8).allSatisfy {
                    x.loadUnaligned(fromByteOffset: $0, as: UInt64.self) == y.loadUnaligned(fromByteOffset: $0, as: UInt64.self)
                }
            }
        }
    }
}

extension Request.Kind {
    /// The kinds about a port, which say in which families' namespaces.
    var namesFamilies: Bool {
        switch self {
        case .listen, .stopListening, .datagramUnbind, .reservePort, .releasePort: true
        default: false
        }
    }
}

extension Request {
    /// How the asking socket shares its port, as the client running as `uid` asked.
    public func reuse(uid: UInt32) -> PortReuse { PortReuse(address: reuseAddress, port: shared, uid: uid) }
}
