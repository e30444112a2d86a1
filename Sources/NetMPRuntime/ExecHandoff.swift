import NetMPStack
import NetMPTCP
import NetMPWire

/// What a program's old image leaves its new one across exec, so that the connections it
/// held through descriptors without close-on-exec stay connections: the process's
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

    public struct Socket: Equatable, Sendable {
        /// Every descriptor of the program that names it (dup'ed ones share the socket).
        public var descriptors: [Int32]
        /// The slot whose entry says which processes hold it: what the stack is told to keep.
        public var doorbellSlot: UInt32
        public var handle: SocketHandle
        public var tuple: FourTuple
        public var ipv6: Bool
        public var nonBlocking: Bool
        public var options: [Option]
        public init(descriptors: [Int32], doorbellSlot: UInt32, handle: SocketHandle, tuple: FourTuple, ipv6: Bool,
                    nonBlocking: Bool, options: [Option]) {
            self.descriptors = descriptors; self.doorbellSlot = doorbellSlot; self.handle = handle; self.tuple = tuple
            self.ipv6 = ipv6; self.nonBlocking = nonBlocking; self.options = options
        }
    }

    public var connection: Int32
    public var names: Int32
    public var sockets: [Socket]
    public init(connection: Int32, names: Int32, sockets: [Socket]) {
        self.connection = connection; self.names = names; self.sockets = sockets
    }

    static let magic: UInt32 = 0x4E4D_5058 // "NMPX"
    static let version: UInt32 = 1
    /// Bounds a reader holds a hand-off to (a program has at most 65,536 descriptors).
    static let maximumSockets = 65_536, maximumOptions = 256, maximumValue = 256

    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        func put(_ endpoint: Endpoint) {
            var bytes = [UInt8](repeating: 0, count: 16)
            bytes.withUnsafeMutableBytes { endpoint.address.bits.write(to: $0, at: 0) }
            out.append(contentsOf: bytes)
            put(endpoint.port)
        }
        put(Self.magic); put(Self.version); put(connection); put(names); put(UInt32(sockets.count))
        for socket in sockets {
            put(UInt32(socket.descriptors.count))
            for fd in socket.descriptors { put(fd) }
            put(socket.doorbellSlot); put(socket.handle.word)
            put(UInt32((socket.ipv6 ? 1 : 0) | (socket.nonBlocking ? 2 : 0)))
            put(socket.tuple.local); put(socket.tuple.remote)
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
        func endpoint() -> Endpoint? {
            guard at + 16 <= bytes.count else { return nil }
            let address = IPv6Address.read(from: UnsafeRawBufferPointer(rebasing: bytes[at..<at + 16]), at: 0)
            at += 16
            return take(UInt16.self).map { Endpoint(IPAddress(address), $0) }
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
                  let local = endpoint(), let remote = endpoint(),
                  let optionCount = take(UInt32.self), optionCount <= Self.maximumOptions else { return nil }
            var options: [Option] = []
            for _ in 0..<optionCount {
                guard let level = take(Int32.self), let name = take(Int32.self), let length = take(UInt32.self),
                      length <= Self.maximumValue, at + Int(length) <= bytes.count else { return nil }
                options.append(Option(level: level, name: name, value: Array(bytes[at..<at + Int(length)])))
                at += Int(length)
            }
            sockets.append(Socket(descriptors: descriptors, doorbellSlot: doorbellSlot, handle: SocketHandle(word: word),
                                  tuple: FourTuple(local: local, remote: remote), ipv6: flags & 1 != 0,
                                  nonBlocking: flags & 2 != 0, options: options))
        }
        guard at == bytes.count else { return nil }
        self.init(connection: connection, names: names, sockets: sockets)
    }
}
