import NetMPStack
import NetMPTCP
import NetMPWire

/// What a program's old image leaves its new one across exec, so that the sockets it held
/// through descriptors without close-on-exec stay what they were (connections, listeners,
/// bound UDP sockets, and sockets not yet connected or bound, made again): the process's
/// connection to the stack and its names socket (both kept open across the exec), and per
/// socket its descriptors, handle, 4-tuple, blocking mode and the options the program set
/// (the new image sets them again, so that getsockopt reads what it read before). Carried
/// in a memfd whose number the environment names (docs/SHIM.md, exec); a pure value with
/// its own byte layout, read back with every length checked.
public struct ExecHandoff: Equatable, Sendable {
    public struct Option: Equatable, Sendable {
        public var level: Int32, name: Int32, value: [UInt8]
        public init(level: Int32, name: Int32, value: [UInt8]) { self.level = level; self.name = name; self.value = value }
    }

    /// What a listening socket keeps beside its name (the handle): the slot of its own
    /// channel (its doorbell), its port and the address bind() named (nil: the wildcard),
    /// the bind flags that weigh against later binds, and its kernel twin on loopback
    /// (a descriptor kept open across the exec too; -1: none).
    public struct Listener: Equatable, Sendable {
        public var channelSlot: UInt32, port: UInt16, bound: IPAddress?
        public var v6Only: Bool, reusePort: Bool, reuseAddress: Bool
        public var twin: Int32
        public init(channelSlot: UInt32, port: UInt16, bound: IPAddress?, v6Only: Bool, reusePort: Bool, reuseAddress: Bool, twin: Int32) {
            self.channelSlot = channelSlot; self.port = port; self.bound = bound
            self.v6Only = v6Only; self.reusePort = reusePort; self.reuseAddress = reuseAddress; self.twin = twin
        }
    }

    /// What a bound UDP socket keeps beside its name (the handle) that its slot does not
    /// hold: the address bind() named (nil: its family's wildcard), the source a connect
    /// chose (getsockname shows it), the bind flags, and the groups it joined.
    public struct Datagram: Equatable, Sendable {
        public var bound: IPAddress?, connectedSource: IPAddress?
        public var v6Only: Bool, reusePort: Bool, reuseAddress: Bool
        public var groups: [IPAddress]
        public init(bound: IPAddress?, connectedSource: IPAddress?, v6Only: Bool, reusePort: Bool, reuseAddress: Bool, groups: [IPAddress]) {
            self.bound = bound; self.connectedSource = connectedSource
            self.v6Only = v6Only; self.reusePort = reusePort; self.reuseAddress = reuseAddress; self.groups = groups
        }
    }

    /// What a socket not yet connected or listening (a stream socket) or not yet bound to a
    /// port (a UDP socket) keeps, which the new image makes again: a stream socket's port
    /// from bind (0: none; the client still holds it, as the socket did) and whether the
    /// program named it, and the address bind named (nil: none, or the wildcard); a UDP
    /// socket's address from a bind under IP_BIND_ADDRESS_NO_PORT.
    public struct Fresh: Equatable, Sendable {
        public var datagram: Bool, port: UInt16, portNamed: Bool, bound: IPAddress?, addressOnly: IPAddress?
        public init(datagram: Bool, port: UInt16 = 0, portNamed: Bool = false, bound: IPAddress? = nil, addressOnly: IPAddress? = nil) {
            self.datagram = datagram; self.port = port; self.portNamed = portNamed; self.bound = bound; self.addressOnly = addressOnly
        }
    }

    public struct Socket: Equatable, Sendable {
        /// Every descriptor of the program that names it (dup'ed ones share the socket).
        public var descriptors: [Int32]
        /// The slot whose entry says which processes hold it: what the stack is told to keep
        /// (a fresh UDP socket has none: `keptSlot` is nil).
        public var doorbellSlot: UInt32
        /// A connection's handle, or a listener's name.
        public var handle: SocketHandle
        /// A connection's 4-tuple (a listener's is unused).
        public var tuple: FourTuple
        public var ipv6: Bool
        public var nonBlocking: Bool
        public var options: [Option]
        /// Set for a listening socket.
        public var listener: Listener?
        /// Set for a bound UDP socket.
        public var datagram: Datagram?
        /// Set for a socket the new image makes again (its handle and tuple are unused).
        public var fresh: Fresh?
        /// Set for a connection whose handshake was under way (or whose failure connect()
        /// had not reported yet): its tuple's remote end is where it connects to, and its
        /// local end what was known (the port may be 0).
        public var connecting: Bool
        public init(descriptors: [Int32], doorbellSlot: UInt32, handle: SocketHandle, tuple: FourTuple, ipv6: Bool,
                    nonBlocking: Bool, options: [Option], listener: Listener? = nil, datagram: Datagram? = nil,
                    fresh: Fresh? = nil, connecting: Bool = false) {
            self.descriptors = descriptors; self.doorbellSlot = doorbellSlot; self.handle = handle; self.tuple = tuple
            self.ipv6 = ipv6; self.nonBlocking = nonBlocking; self.options = options; self.listener = listener
            self.datagram = datagram; self.fresh = fresh; self.connecting = connecting
        }

        /// A socket not yet connected, listening or bound, by the family and kind of the old
        /// image's: the options it set come across, a stream socket's doorbell (and so its
        /// slot) and its bind too.
        public static func fresh(_ fresh: Fresh, descriptors: [Int32], doorbellSlot: UInt32?, ipv6: Bool, nonBlocking: Bool,
                                 options: [Option]) -> Socket {
            let nowhere = Endpoint(IPAddress(IPv4Address.any), 0)
            return Socket(descriptors: descriptors, doorbellSlot: doorbellSlot ?? .max, handle: SocketHandle(word: .max),
                          tuple: FourTuple(local: nowhere, remote: nowhere), ipv6: ipv6, nonBlocking: nonBlocking,
                          options: options, fresh: fresh)
        }

        /// The slot the stack keeps this process's hold on across the exec (nil: none).
        public var keptSlot: UInt32? { fresh?.datagram == true ? nil : doorbellSlot }
    }

    /// Every descriptor the old image kept open across the exec for the library: the
    /// connection, the names socket and the listeners' twins.
    public var libraryDescriptors: [Int32] { [connection, names] + sockets.compactMap { $0.listener?.twin }.filter { $0 >= 0 } }

    public var connection: Int32
    public var names: Int32
    public var sockets: [Socket]
    public init(connection: Int32, names: Int32, sockets: [Socket]) {
        self.connection = connection; self.names = names; self.sockets = sockets
    }

    static let magic: UInt32 = 0x4E4D_5058 // "NMPX"
    static let version: UInt32 = 3
    /// Bounds a reader holds a hand-off to (a program has at most 65,536 descriptors).
    static let maximumSockets = 65_536, maximumOptions = 256, maximumValue = 256, maximumGroups = 4096

    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        func put(_ address: IPAddress) {
            var bytes = [UInt8](repeating: 0, count: 16)
            bytes.withUnsafeMutableBytes { address.bits.write(to: $0, at: 0) }
            out.append(contentsOf: bytes)
        }
        func put(_ endpoint: Endpoint) { put(endpoint.address); put(endpoint.port) }
        put(Self.magic); put(Self.version); put(connection); put(names); put(UInt32(sockets.count))
        for socket in sockets {
            put(UInt32(socket.descriptors.count))
            for fd in socket.descriptors { put(fd) }
            put(socket.doorbellSlot); put(socket.handle.word)
            put(UInt32((socket.ipv6 ? 1 : 0) | (socket.nonBlocking ? 2 : 0) | (socket.listener != nil ? 4 : 0)
                       | (socket.datagram != nil ? 8 : 0) | (socket.fresh != nil ? 16 : 0) | (socket.connecting ? 32 : 0)))
            put(socket.tuple.local); put(socket.tuple.remote)
            if let listener = socket.listener {
                put(listener.channelSlot); put(listener.port)
                put(UInt32((listener.bound != nil ? 1 : 0) | (listener.v6Only ? 2 : 0) | (listener.reusePort ? 4 : 0)
                           | (listener.reuseAddress ? 8 : 0)))
                put(listener.bound ?? IPAddress(IPv6Address(high: 0, low: 0)))
                put(listener.twin)
            }
            if let datagram = socket.datagram {
                put(UInt32((datagram.bound != nil ? 1 : 0) | (datagram.connectedSource != nil ? 2 : 0) | (datagram.v6Only ? 4 : 0)
                           | (datagram.reusePort ? 8 : 0) | (datagram.reuseAddress ? 16 : 0)))
                put(datagram.bound ?? IPAddress(IPv6Address.any)); put(datagram.connectedSource ?? IPAddress(IPv6Address.any))
                put(UInt32(datagram.groups.count))
                for group in datagram.groups { put(group) }
            }
            if let fresh = socket.fresh {
                put(fresh.port)
                put(UInt32((fresh.datagram ? 1 : 0) | (fresh.portNamed ? 2 : 0) | (fresh.bound != nil ? 4 : 0)
                           | (fresh.addressOnly != nil ? 8 : 0)))
                put(fresh.bound ?? IPAddress(IPv6Address.any)); put(fresh.addressOnly ?? IPAddress(IPv6Address.any))
            }
            put(UInt32(socket.options.count))
            for option in socket.options {
                put(option.level); put(option.name); put(UInt32(option.value.count))
                out.append(contentsOf: option.value)
            }
        }
        return out
    }

    /// The hand-off in `bytes`, or nil if they are not one this library wrote whole.
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        var at = 0
        func take<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard at + MemoryLayout<T>.size <= bytes.count else { return nil }
            defer { at += MemoryLayout<T>.size }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
        }
        func address() -> IPAddress? {
            guard at + 16 <= bytes.count else { return nil }
            defer { at += 16 }
            return IPAddress(IPv6Address.read(from: UnsafeRawBufferPointer(rebasing: bytes[at..<at + 16]), at: 0))
        }
        func endpoint() -> Endpoint? {
            guard let address = address() else { return nil }
            return take(UInt16.self).map { Endpoint(address, $0) }
        }
        guard take(UInt32.self) == Self.magic, take(UInt32.self) == Self.version,
              let connection = take(Int32.self), let names = take(Int32.self),
              let count = take(UInt32.self), count <= Self.maximumSockets else { return nil }
        var sockets: [Socket] = []
        for _ in 0..<count {
            guard let descriptorCount = take(UInt32.self), descriptorCount > 0, descriptorCount <= Self.maximumSockets else { return nil }
            var descriptors: [Int32] = []
            for _ in 0..<descriptorCount {
                guard let fd = take(Int32.self), fd >= 0 else { return nil }
                descriptors.append(fd)
            }
            guard let doorbellSlot = take(UInt32.self), let word = take(UInt64.self), let flags = take(UInt32.self),
                  flags & ~63 == 0, (flags & 60).nonzeroBitCount <= 1, let local = endpoint(), let remote = endpoint() else { return nil }
            var listener: Listener?
            if flags & 4 != 0 {
                guard let channelSlot = take(UInt32.self), let port = take(UInt16.self), let bits = take(UInt32.self),
                      bits & ~15 == 0, let bound = address(), let twin = take(Int32.self) else { return nil }
                listener = Listener(channelSlot: channelSlot, port: port, bound: bits & 1 != 0 ? bound : nil,
                                    v6Only: bits & 2 != 0, reusePort: bits & 4 != 0, reuseAddress: bits & 8 != 0, twin: twin)
            }
            var datagram: Datagram?
            if flags & 8 != 0 {
                guard let bits = take(UInt32.self), bits & ~31 == 0, let bound = address(), let source = address(),
                      let groupCount = take(UInt32.self), groupCount <= Self.maximumGroups else { return nil }
                var groups: [IPAddress] = []
                for _ in 0..<groupCount {
                    guard let group = address() else { return nil }
                    groups.append(group)
                }
                datagram = Datagram(bound: bits & 1 != 0 ? bound : nil, connectedSource: bits & 2 != 0 ? source : nil,
                                    v6Only: bits & 4 != 0, reusePort: bits & 8 != 0, reuseAddress: bits & 16 != 0, groups: groups)
            }
            var fresh: Fresh?
            if flags & 16 != 0 {
                guard let port = take(UInt16.self), let bits = take(UInt32.self), bits & ~15 == 0,
                      let bound = address(), let addressOnly = address() else { return nil }
                fresh = Fresh(datagram: bits & 1 != 0, port: port, portNamed: bits & 2 != 0, bound: bits & 4 != 0 ? bound : nil,
                              addressOnly: bits & 8 != 0 ? addressOnly : nil)
            }
            guard let optionCount = take(UInt32.self), optionCount <= Self.maximumOptions else { return nil }
            var options: [Option] = []
            for _ in 0..<optionCount {
                guard let level = take(Int32.self), let name = take(Int32.self), let length = take(UInt32.self),
                      length <= Self.maximumValue, at + Int(length) <= bytes.count else { return nil }
                options.append(Option(level: level, name: name, value: Array(bytes[at..<at + Int(length)])))
                at += Int(length)
            }
            sockets.append(Socket(descriptors: descriptors, doorbellSlot: doorbellSlot, handle: SocketHandle(word: word),
                                  tuple: FourTuple(local: local, remote: remote), ipv6: flags & 1 != 0,
                                  nonBlocking: flags & 2 != 0, options: options, listener: listener, datagram: datagram,
                                  fresh: fresh, connecting: flags & 32 != 0))
        }
        guard at == bytes.count else { return nil }
        self.init(connection: connection, names: names, sockets: sockets)
    }
}
