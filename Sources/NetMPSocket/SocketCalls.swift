import CNetMPLinux
import Glibc
import NetMPClient
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire
import Synchronization

/// A netmp socket as the C shim holds it: a retained pointer in its descriptor table. One
/// object per open socket, shared by every descriptor that dup() made for it; the socket
/// closes when the last of them does (as a kernel file does).
final class ShimSocket: @unchecked Sendable {
    enum Kind { case stream(StreamSocket), datagram(DatagramSocket) }
    /// AF_INET6 (of either kind).
    var isIPv6: Bool {
        switch kind {
        case .stream(let s): s.family == .ipv6
        case .datagram(let d): d.family == .ipv6
        }
    }
    /// IP_TOS/IP_TTL (IPv6's pair) as the socket keeps them.
    var marking: IPMarking {
        switch kind {
        case .stream(let s): s.options.marking
        case .datagram(let d): d.marking
        }
    }
    /// An IPv6 socket's IP_TOS/IP_TTL (for its IPv4 peers).
    var mappedMarking: IPMarking {
        switch kind {
        case .stream(let s): s.markingForIPv4Peers
        case .datagram(let d): d.mappedMarking
        }
    }
    let descriptors = Atomic<Int>(1)
    let recorded = PthreadLock()
    /// Every option the program set, in the order first set, with its last value as
    /// passed (guarded by `recorded`): what a hand-off to the kernel sets again, and what
    /// getsockopt reads back for the options Linux accepts and netmp records without
    /// acting on them (SO_REUSEADDR, SO_PRIORITY, ...).
    nonisolated(unsafe) var setOptions: [(level: Int32, name: Int32, value: [UInt8])] = []

    func remember(_ level: Int32, _ name: Int32, _ value: UnsafeRawBufferPointer) {
        recorded.locked {
            if let i = setOptions.firstIndex(where: { $0.level == level && $0.name == name }) {
                setOptions[i].value = Array(value)
            } else {
                setOptions.append((level, name, Array(value)))
            }
        }
    }

    /// Every option set so far, in the order first set, with its last value.
    var optionsSet: [(level: Int32, name: Int32, value: [UInt8])] { recorded.locked { setOptions } }

    /// `read` of the value the program last set for (level, name), as passed; nil if it set
    /// none (or `read` finds it too short).
    func recorded<T>(_ level: Int32, _ name: Int32, _ read: (UnsafeRawBufferPointer) -> T?) -> T? {
        recorded.locked { setOptions.first(where: { $0.level == level && $0.name == name })?.value.withUnsafeBytes(read) ?? nil }
    }

    /// The integer the program last set for (level, name), read as Linux reads it
    /// (optionInteger: IPPROTO_IP's may be one byte), if it set one.
    func recordedInteger(_ level: Int32, _ name: Int32) -> Int32? {
        recorded(level, name) { optionInteger(level, $0.baseAddress, UInt32($0.count)) }
    }

    func setOption(at index: Int) -> (level: Int32, name: Int32, value: [UInt8])? {
        recorded.locked { index >= 0 && index < setOptions.count ? setOptions[index] : nil }
    }

    let datagram: DatagramSocket?
    /// The stream socket now (an unretained pointer, 0 for UDP): a connect after a failed
    /// one moves to a fresh StreamSocket (`connectAgain`). Each one stays alive (`first`,
    /// then `later`) until this object goes, since another thread may still be in a call on
    /// an older one. (No array for the common case: an object per socket, kept small.)
    let stream = Atomic<UInt>(0)
    let first: StreamSocket?
    nonisolated(unsafe) var later: [StreamSocket] = [] // guarded by `recorded`

    init(_ kind: Kind) {
        switch kind {
        case .stream(let s):
            datagram = nil
            first = s
            stream.store(UInt(bitPattern: Unmanaged.passUnretained(s).toOpaque()), ordering: .releasing)
        case .datagram(let d):
            datagram = d
            first = nil
        }
    }

    var kind: Kind {
        if let datagram { return .datagram(datagram) }
        return .stream(withStream { $0 })
    }

    /// The stream socket, borrowed for the length of `body` (every one this socket made
    /// lives as long as it does): `kind`'s strong reference is a retain and a release at
    /// every select of the socket.
    @inline(__always) func withStream<Result>(_ body: (StreamSocket) -> Result) -> Result {
        let pointer = UnsafeRawPointer(bitPattern: stream.load(ordering: .acquiring))!
        return Unmanaged<StreamSocket>.fromOpaque(pointer)._withUnsafeGuaranteedRef(body)
    }

    /// `stream` or `datagram` with the socket, borrowed as `withStream` borrows: what `kind`
    /// costs in a retain and a release, at every send and receive, is saved.
    @inline(__always) func withKind<Result>(stream: (StreamSocket) -> Result, datagram: (DatagramSocket) -> Result) -> Result {
        // Passed straight from the field (a `let`, alive as long as self): a binding would
        // be a copy, retained.
        if self.datagram != nil { return datagram(self.datagram.unsafelyUnwrapped) }
        return withStream(stream)
    }

    /// connect() after a failed connect: Linux's socket starts over; netmp's moves to a
    /// fresh StreamSocket with the old one's options, bound port and doorbell.
    func connectAgain(_ old: StreamSocket) -> StreamSocket {
        recorded.locked {
            let current = later.last ?? first!
            guard current === old else { return current }
            let fresh = old.attemptAgain()
            later.append(fresh)
            stream.store(UInt(bitPattern: Unmanaged.passUnretained(fresh).toOpaque()), ordering: .releasing)
            return fresh
        }
    }

    /// The last fork that counted this socket (netmp_socket_share).
    let sharedAtFork = Atomic<UInt64>(0)

    /// The slot whose entry says which processes hold this socket (`holders`): its
    /// doorbell's, which a stream socket keeps through a connect after a failed one; a UDP
    /// socket's from bind on. Nil when the socket has none yet.
    var sharingSlot: UInt32? {
        switch kind {
        case .stream(let s): s.channel.doorbell.slot
        case .datagram(let d): d.boundSlot
        }
    }

    var doorbell: Doorbell? {
        switch kind {
        case .stream(let s): s.channel.doorbell
        case .datagram(let d): d.doorbell
        }
    }

    var readiness: PollEvents {
        var events = ownReadiness
        if datagram == nil, !events.contains(.readable), withStream({ $0.isListening }), twinHasConnection { events.insert(.readable) }
        return events
    }

    /// The readiness the stack's published state gives, without the listener's twin.
    var ownReadiness: PollEvents {
        if let events = datagram?.readiness { return events }
        return withStream { $0.readiness }
    }

    /// A kernel listener on 127.0.0.1 at a wildcard listener's port (-1: none), which the
    /// shim made at listen(): programs on this host reach the netmp server through it, as
    /// Onload keeps an OS socket beside each accelerated listener (docs/SHIM.md). accept,
    /// poll, select and epoll look at both.
    let twin = Atomic<Int32>(-1)
    /// The ancillary data recvmsg returns (`Ancillary` bits), read at every recvmsg.
    /// (Declared beside `twin`: the two 4-byte words share 8 bytes of a small object.)
    let ancillary = Atomic<UInt32>(0)

    /// A connection waits on the twin (a poll that does not wait).
    var twinHasConnection: Bool {
        let fd = twin.load(ordering: .acquiring)
        guard fd >= 0 else { return false }
        return netmp_descriptor_readable(fd) > 0
    }
}

/// A call that may block holds its socket for its whole length (+1), so that another
/// thread's close() of the descriptor cannot free it underneath; the close wakes it instead.
@inline(__always) func hold(_ handle: UnsafeMutableRawPointer) -> Unmanaged<ShimSocket> {
    Unmanaged<ShimSocket>.fromOpaque(handle).retain()
}

@inline(__always) func socket(_ handle: UnsafeMutableRawPointer) -> ShimSocket {
    Unmanaged<ShimSocket>.fromOpaque(handle).takeUnretainedValue()
}

/// The socket behind `handle`, borrowed for the length of `body`: what keeps it alive (the
/// descriptor table's reference, or the call's hold) is the caller's, so no retain and
/// release of its own, which `socket(_:)`'s strong reference costs (with its kind's) at
/// every select and every send: calls made once per datagram.
@inline(__always) func withSocket<Result>(_ handle: UnsafeMutableRawPointer, _ body: (ShimSocket) -> Result) -> Result {
    Unmanaged<ShimSocket>.fromOpaque(handle)._withUnsafeGuaranteedRef(body)
}

/// -errno for a SocketError, as the C ABI returns failures.
@inline(__always) func failure(_ error: SocketError) -> Int32 { -error.errno }

/// An endpoint from the shim's 16 network-order bytes (IPv6, or IPv4 mapped) and port.
func endpoint(_ bytes: UnsafePointer<UInt8>, _ port: UInt16) -> Endpoint {
    Endpoint(IPAddress(IPv6Address.read(from: UnsafeRawBufferPointer(start: bytes, count: 16), at: 0)), port)
}

/// Writes `address` as the shim's 16 network-order bytes.
func write(_ address: IPAddress, to bytes: UnsafeMutablePointer<UInt8>) {
    address.bits.write(to: UnsafeMutableRawBufferPointer(start: bytes, count: 16), at: 0)
}

@_cdecl("netmp_holds_address")
public func netmpHoldsAddress(_ handle: UnsafeMutableRawPointer, _ bytes: UnsafePointer<UInt8>) -> Int32 {
    guard let configuration = processClient?.configuration else { return 0 }
    let address = endpoint(bytes, 0).address
    if let v4 = address.v4 { return v4 == configuration.address ? 1 : 0 }
    return configuration.holds(address.bits) ? 1 : 0
}

@_cdecl("netmp_serves_ipv6")
public func netmpServesIPv6() -> Int32 { processClient.map { $0.configuration.ipv6Addresses.isEmpty ? 0 : 1 } ?? 0 }

/// The scope id of the stack's link (its TAP's interface index here; 0 before attaching).
@_cdecl("netmp_scope_id")
public func netmpScopeID() -> UInt32 { interfaceIndex }

@_cdecl("netmp_is_ipv6")
public func netmpIsIPv6(_ handle: UnsafeMutableRawPointer) -> Int32 {
    socket(handle).isIPv6 ? 1 : 0
}

@_cdecl("netmp_running")
public func netmpRunning() -> Int32 { processClient == nil ? 0 : 1 }

/// socket(): `stream` 1 for TCP, 0 for UDP; `*fd` becomes the placeholder that stands for
/// it (Doorbell), or -errno, when the caller closes the socket again.
@_cdecl("netmp_socket_create")
public func netmpSocketCreate(_ stream: Int32, _ cloexec: Int32, _ ipv6: Int32,
                              _ fd: UnsafeMutablePointer<Int32>) -> UnsafeMutableRawPointer? {
    guard let client = processClient else { return nil }
    let shim: ShimSocket
    if stream != 0 {
        let socket = StreamSocket(client: client, family: ipv6 != 0 ? .ipv6 : .ipv4)
        socket.channel.doorbell.standInPlaceholders(common: client.commonBell)
        fd.pointee = client.placeholder(cloexec: cloexec != 0, for: socket.channel.doorbell)
        shim = ShimSocket(.stream(socket))
        claim(shim)
    } else {
        let socket = DatagramSocket(client: client, family: ipv6 != 0 ? .ipv6 : .ipv4)
        socket.placeholderBell.store(client.commonBell, ordering: .releasing)
        fd.pointee = client.placeholder(cloexec: cloexec != 0, for: nil)
        shim = ShimSocket(.datagram(socket))
    }
    return Unmanaged.passRetained(shim).toOpaque()
}

/// Another descriptor now refers to the socket (dup, dup2, F_DUPFD).
@_cdecl("netmp_socket_retain")
public func netmpSocketRetain(_ handle: UnsafeMutableRawPointer) {
    socket(handle).descriptors.wrappingAdd(1, ordering: .relaxed)
    _ = Unmanaged<ShimSocket>.fromOpaque(handle).retain()
}

@_cdecl("netmp_socket_descriptors")
public func netmpSocketDescriptors(_ handle: UnsafeMutableRawPointer) -> Int32 {
    Int32(clamping: socket(handle).descriptors.load(ordering: .acquiring))
}

/// Attached to a stack service: this process holds the socket (made, accepted or bound
/// here), so that the stack closes it if this process ends and no other holds it.
func claim(_ shim: ShimSocket) {
    guard let client = processClient, client.connection != nil, let slot = shim.sharingSlot else { return }
    client.sockets.addHolder(client.process, to: slot)
}

/// Before fork, attached to a stack service: the child (process `number` of the client)
/// holds the socket too; `fork` numbers the fork, so a socket with several descriptors
/// counts once.
@_cdecl("netmp_socket_share")
public func netmpSocketShare(_ handle: UnsafeMutableRawPointer, _ fork: UInt64, _ number: UInt32) {
    let shim = socket(handle)
    guard let slot = shim.sharingSlot, shim.sharedAtFork.exchange(fork, ordering: .relaxed) != fork else { return }
    processClient?.sockets.addHolder(number, to: slot)
}

/// Before fork, attached: the child's process number, or -1 when the client has no free
/// one (the child's inherited sockets then become kernel sockets).
@_cdecl("netmp_number_for_child")
public func netmpNumberForChild() -> Int32 {
    guard let client = processClient, client.connection != nil, let number = client.numberForChild() else { return -1 }
    return Int32(number)
}

/// In a forked child, attached: joins the stack as process `number` over a connection of
/// its own.
@_cdecl("netmp_join_after_fork")
public func netmpJoinAfterFork(_ number: UInt32) {
    guard let client = processClient, !client.joinAfterFork(as: number) else { return }
    Log.write("netmp: forked child \(getpid()): cannot reach the stack's door; its sockets close with its parent's client")
}

/// A descriptor of the socket was closed; the last one closes the socket, unless another
/// process (a forked child or parent) still holds it: then this process only forgets it,
/// leaving its objects alone (their release would undo what the socket's last holder
/// still uses; a few hundred bytes stay in this process).
@_cdecl("netmp_socket_close")
public func netmpSocketClose(_ handle: UnsafeMutableRawPointer) {
    let shim = socket(handle)
    if shim.descriptors.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
        if let client = processClient, client.connection != nil, let slot = shim.sharingSlot,
           client.sockets.dropHolder(client.process, from: slot).othersHold {
            let twin = shim.twin.exchange(-1, ordering: .acquiringAndReleasing)
            if twin >= 0 { _ = netmp_close_descriptor(twin) }
            return // the handle's reference is kept: the objects are never released here
        }
        switch shim.kind {
        case .stream(let s): s.close()
        case .datagram(let d): d.close()
        }
        let twin = shim.twin.exchange(-1, ordering: .acquiringAndReleasing)
        if twin >= 0 { _ = netmp_close_descriptor(twin) }
    }
    Unmanaged<ShimSocket>.fromOpaque(handle).release()
}

/// The listener's kernel twin on 127.0.0.1 (the shim made it at listen()), or -1.
@_cdecl("netmp_twin")
public func netmpTwin(_ handle: UnsafeMutableRawPointer) -> Int32 { socket(handle).twin.load(ordering: .acquiring) }

/// Keeps `fd` as the listener's twin; false (the caller closes it) if it has one already.
@_cdecl("netmp_set_twin")
public func netmpSetTwin(_ handle: UnsafeMutableRawPointer, _ fd: Int32) -> Int32 {
    socket(handle).twin.compareExchange(expected: -1, desired: fd, ordering: .acquiringAndReleasing).exchanged ? 1 : 0
}

/// Connections waiting in the listener's netmp queues (a bound).
@_cdecl("netmp_accept_pending")
public func netmpAcceptPending(_ handle: UnsafeMutableRawPointer) -> Int32 {
    guard case .stream(let s) = socket(handle).kind else { return 0 }
    return Int32(clamping: s.listenQueueDepth)
}

@_cdecl("netmp_is_fresh")
public func netmpIsFresh(_ handle: UnsafeMutableRawPointer) -> Int32 {
    if case .stream(let s) = socket(handle).kind { return s.isFresh ? 1 : 0 }
    return 1
}

@_cdecl("netmp_has_begun")
public func netmpHasBegun(_ handle: UnsafeMutableRawPointer) -> Int32 {
    if case .stream(let s) = socket(handle).kind { return s.hasBegun ? 1 : 0 }
    return 0
}

@_cdecl("netmp_is_stream")
public func netmpIsStream(_ handle: UnsafeMutableRawPointer) -> Int32 {
    if case .stream = socket(handle).kind { return 1 }
    return 0
}

@_cdecl("netmp_bind")
public func netmpBind(_ handle: UnsafeMutableRawPointer, _ address: UnsafePointer<UInt8>, _ port: UInt16) -> Int32 {
    let held = hold(handle)
    defer { held.release() }
    do {
        let shim = socket(handle)
        switch shim.kind {
        case .stream(var s):
            // After a failed connect Linux's socket may bind again (its port, unless named, went).
            if s.mayConnectAgain { s = shim.connectAgain(s) }
            try s.bind(endpoint(address, port))
        case .datagram(let d):
            try d.bind(endpoint(address, port))
            claim(shim)
        }
        return 0
    } catch { return failure(error) }
}

@_cdecl("netmp_listen")
public func netmpListen(_ handle: UnsafeMutableRawPointer, _ backlog: Int32) -> Int32 {
    guard case .stream(let s) = socket(handle).kind else { return -EOPNOTSUPP }
    do { try s.listen(backlog: Int(backlog)); return 0 } catch { return failure(error) }
}

/// accept(): the new socket's handle, or nil with `*error` set; `fd` is its placeholder.
@_cdecl("netmp_accept")
public func netmpAccept(_ handle: UnsafeMutableRawPointer, _ fd: Int32, _ nonBlocking: Int32, _ cloexec: Int32,
                        _ address: UnsafeMutablePointer<UInt8>, _ port: UnsafeMutablePointer<UInt16>,
                        _ errorNumber: UnsafeMutablePointer<Int32>) -> UnsafeMutableRawPointer? {
    let held = hold(handle)
    defer { held.release() }
    guard case .stream(let s) = socket(handle).kind else { errorNumber.pointee = EOPNOTSUPP; return nil }
    do {
        let accepted = try s.accept()
        accepted.channel.doorbell.standInPlaceholders(common: accepted.client.commonBell)
        _ = accepted.client.adoptNamedFile(into: fd, cloexec: cloexec != 0, for: accepted.channel.doorbell)
        accepted.nonBlocking = nonBlocking != 0
        let peer = try accepted.peerAddress()
        write(peer.address, to: address)
        port.pointee = peer.port
        let shim = ShimSocket(.stream(accepted))
        // Linux's accepted socket is a clone of its listener: it starts with every option
        // the listener was given (TCP_NODELAY, keepalive, SO_LINGER, timeouts, IP_TOS, ...),
        // set again here in the order the program set them; O_NONBLOCK, the file's, is not.
        for option in socket(handle).optionsSet {
            option.value.withUnsafeBytes { value in
                if setOption(shim, option.level, option.name, value.baseAddress, UInt32(value.count)) == 0 {
                    shim.remember(option.level, option.name, value)
                }
            }
        }
        claim(shim)
        return Unmanaged.passRetained(shim).toOpaque()
    } catch {
        errorNumber.pointee = error.errno
        return nil
    }
}

@_cdecl("netmp_connect")
public func netmpConnect(_ handle: UnsafeMutableRawPointer, _ address: UnsafePointer<UInt8>, _ port: UInt16,
                         _ unspecified: Int32) -> Int32 {
    let held = hold(handle)
    defer { held.release() }
    do {
        let shim = socket(handle)
        switch shim.kind {
        case .stream(var s):
            guard unspecified == 0 else { return -EAFNOSUPPORT }
            if s.mayConnectAgain { s = shim.connectAgain(s) }
            try s.connect(to: endpoint(address, port))
        case .datagram(let d):
            try d.connect(to: unspecified != 0 ? nil : endpoint(address, port))
        }
        return 0
    } catch { return failure(error) }
}

let messageOutOfBand: Int32 = 0x01, messagePeek: Int32 = 0x02, messageTruncate: Int32 = 0x20, messageDontWait: Int32 = 0x40
let messageWaitAll: Int32 = 0x100

/// send() family: bytes taken, or -errno. `hasDestination` for sendto on UDP.
@_cdecl("netmp_send")
public func netmpSend(_ handle: UnsafeMutableRawPointer, _ bytes: UnsafeRawPointer?, _ count: Int, _ flags: Int32,
                      _ hasDestination: Int32, _ address: UnsafePointer<UInt8>?, _ port: UInt16) -> Int {
    netmpSendMarked(handle, bytes, count, flags, hasDestination, address, port, 0, -1)
}

/// send() of one datagram whose sendmsg control messages asked for its own TOS or TTL
/// (NETMP_SEND_*: `marking`) or its own UDP_SEGMENT (`segment`, -1: none); a stream socket
/// ignores them, as Linux's TCP does.
@_cdecl("netmp_send_marked")
public func netmpSendMarked(_ handle: UnsafeMutableRawPointer, _ bytes: UnsafeRawPointer?, _ count: Int, _ flags: Int32,
                            _ hasDestination: Int32, _ address: UnsafePointer<UInt8>?, _ port: UInt16, _ marking: UInt32,
                            _ segment: Int32) -> Int {
    let held = hold(handle)
    defer { held.release() }
    guard count == 0 || bytes != nil else { return -Int(EFAULT) } // where the kernel's copy would fault
    let buffer = UnsafeRawBufferPointer(start: count == 0 ? nil : bytes, count: count)
    return withSocket(handle) { socket in
        socket.withKind { s in
            if hasDestination != 0 && !s.channel.status.contains(.attached) { return -Int(EPIPE) }
            var options: StreamSocket.Flags = []
            if flags & messageDontWait != 0 { options.insert(.dontWait) }
            if flags & messageOutOfBand != 0 { options.insert(.urgent) }
            do throws(SocketError) { return try s.send(buffer, flags: options) } catch { return -Int(error.errno) }
        } datagram: { d in
            let destination = hasDestination != 0 ? address.map { endpoint($0, port) } : nil
            // MSG_OOB: IPv4's udp_sendmsg refuses it, as BSD does; IPv6's ignores it.
            if flags & messageOutOfBand != 0 {
                let to = destination ?? (try? d.peerAddress())
                if d.family == .ipv4 || to?.address.v4 != nil { return -Int(EOPNOTSUPP) }
            }
            if hasDestination != 0 && destination == nil { return -Int(EFAULT) }
            do throws(SocketError) {
                return try d.send(buffer, to: destination, dontWait: flags & messageDontWait != 0,
                                  marking: DatagramMarking(sendControl: marking), segment: segment >= 0 ? Int(segment) : nil)
            } catch { return -Int(error.errno) }
        }
    }
}

/// writev() and sendmsg() on a stream socket: the pieces as one write (bytes written, or
/// -errno).
@_cdecl("netmp_send_gathered")
public func netmpSendGathered(_ handle: UnsafeMutableRawPointer, _ pieces: UnsafePointer<iovec>?, _ count: Int32,
                              _ flags: Int32) -> Int {
    let held = hold(handle)
    defer { held.release() }
    guard case .stream(let s) = socket(handle).kind else { return -Int(EOPNOTSUPP) }
    var options: StreamSocket.Flags = []
    if flags & messageDontWait != 0 { options.insert(.dontWait) }
    if flags & messageOutOfBand != 0 { options.insert(.urgent) }
    do { return try s.send(gathering: UnsafeBufferPointer(start: count > 0 ? pieces : nil, count: Int(max(0, count))), flags: options) }
    catch { return -Int(error.errno) }
}

/// recv() family: bytes copied, or -errno. For UDP, `*source` is the sender and `*full` the
/// datagram's whole length (MSG_TRUNC); for TCP `*full` is the bytes copied.
@_cdecl("netmp_recv")
public func netmpRecv(_ handle: UnsafeMutableRawPointer, _ bytes: UnsafeMutableRawPointer?, _ count: Int, _ flags: Int32,
                      _ address: UnsafeMutablePointer<UInt8>?, _ port: UnsafeMutablePointer<UInt16>?,
                      _ full: UnsafeMutablePointer<Int>?) -> Int {
    let held = hold(handle)
    defer { held.release() }
    // Where the kernel's copy would fault (a NULL buffer with a length): Linux's receive
    // still waits first, and only then says EFAULT (below, for each kind).
    let faulting = count > 0 && bytes == nil
    let buffer = UnsafeMutableRawBufferPointer(start: count == 0 ? nil : bytes, count: faulting ? 0 : count)
    return withSocket(handle) { socket in
        socket.withKind { s in
            do throws(SocketError) {
                var options: StreamSocket.Flags = []
                if flags & messageDontWait != 0 { options.insert(.dontWait) }
                if flags & messagePeek != 0 { options.insert(.peek) }
                if flags & messageWaitAll != 0 { options.insert(.waitAll) }
                if faulting {
                    // Linux's tcp_recvmsg waits for data as any receive does (EAGAIN, a timeout,
                    // the end of the stream: 0), then the copy faults: EFAULT, and the bytes
                    // stay. A peek of one byte waits so.
                    guard flags & messageOutOfBand == 0 else { return -Int(EFAULT) }
                    var byte: UInt8 = 0
                    let n = try withUnsafeMutableBytes(of: &byte) { (one) throws(SocketError) in try s.receive(into: one, flags: options.union(.peek)) }
                    return n == 0 ? 0 : -Int(EFAULT)
                }
                // No address: Linux's TCP leaves the name empty (the shim says so to the caller).
                if flags & messageOutOfBand != 0 && !s.isListening {
                    let n = try s.receiveUrgent(into: buffer, flags: options)
                    full?.pointee = n
                    return n
                }
                let n = try s.receive(into: buffer, flags: options)
                full?.pointee = n
                return n
            } catch { return -Int(error.errno) }
        } datagram: { d in
            if faulting { return faultingReceive(d, flags: flags) }
            do throws(SocketError) { return try receiveDatagram(d, into: buffer, flags: flags, address: address, port: port, full: full, info: nil) }
            catch { return -Int(error.errno) }
        }
    }
}

/// shutdown(): 0 SHUT_RD, 1 SHUT_WR, 2 SHUT_RDWR.
@_cdecl("netmp_shutdown")
public func netmpShutdown(_ handle: UnsafeMutableRawPointer, _ how: Int32) -> Int32 {
    guard (0...2).contains(how) else { return -EINVAL } // inet_shutdown checks `how` first
    if case .datagram(let d) = socket(handle).kind {
        do { try d.shutdown(read: how != 1, write: how != 0); return 0 } catch { return failure(error) }
    }
    guard case .stream(let s) = socket(handle).kind else { return -ENOTCONN }
    do {
        try s.shutdown(how == 0 ? .read : how == 1 ? .write : .both)
        return 0
    } catch { return failure(error) }
}

/// getsockname (peer 0) and getpeername (peer 1).
@_cdecl("netmp_name")
public func netmpName(_ handle: UnsafeMutableRawPointer, _ peer: Int32,
                      _ address: UnsafeMutablePointer<UInt8>, _ port: UnsafeMutablePointer<UInt16>) -> Int32 {
    do {
        let name: Endpoint
        switch socket(handle).kind {
        case .stream(let s): name = peer != 0 ? try s.peerAddress() : s.localAddress
        case .datagram(let d): name = peer != 0 ? try d.peerAddress() : d.localAddress
        }
        write(name.address, to: address)
        port.pointee = name.port
        return 0
    } catch { return failure(error) }
}

@_cdecl("netmp_set_nonblocking")
public func netmpSetNonBlocking(_ handle: UnsafeMutableRawPointer, _ on: Int32) {
    switch socket(handle).kind {
    case .stream(let s): s.nonBlocking = on != 0
    case .datagram(let d): d.nonBlocking = on != 0
    }
}

@_cdecl("netmp_is_nonblocking")
public func netmpIsNonBlocking(_ handle: UnsafeMutableRawPointer) -> Int32 {
    switch socket(handle).kind {
    case .stream(let s): s.nonBlocking ? 1 : 0
    case .datagram(let d): d.nonBlocking ? 1 : 0
    }
}

/// SIOCINQ (0), SIOCOUTQ (1), SIOCOUTQNSD (2) and SIOCATMARK (3) as Linux's tcp_ioctl and
/// udp_ioctl answer them: a listener has no queues (EINVAL) but a mark (0); UDP knows only
/// the first two (ENOTTY). At the mark: the next byte to read is urgent.
@_cdecl("netmp_ioctl_count")
public func netmpIoctlCount(_ handle: UnsafeMutableRawPointer, _ which: Int32) -> Int32 {
    switch socket(handle).kind {
    case .stream(let s):
        if which == 3 { return s.isListening ? 0 : s.atUrgentMark ? 1 : 0 }
        if s.isListening { return -EINVAL }
        switch which {
        case 0: return Int32(clamping: s.readable)
        case 1: return Int32(clamping: s.unacknowledged)
        // Written and not yet sent (write_seq - snd_nxt): only the owner core knows snd_nxt.
        default: return Int32(clamping: s.info().notSentBytes) // 0 without a connection
        }
    case .datagram(let d):
        switch which {
        case 0: return Int32(clamping: d.nextDatagramLength)
        case 1: return 0 // a datagram leaves the socket at once; nothing waits on a device queue
        default: return -ENOTTY
        }
    }
}

/// poll(2) bits the socket would report now.
@_cdecl("netmp_readiness")
public func netmpReadiness(_ handle: UnsafeMutableRawPointer) -> Int16 { withSocket(handle) { $0.readiness.rawValue } }

@_cdecl("netmp_readiness_own")
public func netmpReadinessOwn(_ handle: UnsafeMutableRawPointer) -> Int16 { withSocket(handle) { $0.ownReadiness.rawValue } }

/// A poller arrives through descriptor `fd` (the program's number for the socket, its
/// placeholder): returns the descriptor to sleep on, `fd` (-1: nothing can change, do not
/// wait on this socket, and do not leave). Check readiness after this, then sleep; call
/// netmp_poll_leave after. An entered poller holds the socket until it leaves: another
/// thread's close() while it sleeps must not free what the leave touches.
@_cdecl("netmp_poll_enter")
public func netmpPollEnter(_ handle: UnsafeMutableRawPointer, _ fd: Int32) -> Int32 {
    guard let doorbell = socket(handle).doorbell else { return -1 }
    _ = hold(handle)
    doorbell.enter(through: fd)
    return fd
}

/// Counters that move when data arrives (`arrivals`) and when send space frees (`freed`),
/// so that edge-triggered epoll reports a new arrival even on a socket already readable.
@_cdecl("netmp_edge_marks")
public func netmpEdgeMarks(_ handle: UnsafeMutableRawPointer, _ arrivals: UnsafeMutablePointer<UInt64>,
                           _ freed: UnsafeMutablePointer<UInt64>) {
    switch socket(handle).kind {
    case .stream(let s):
        arrivals.pointee = UInt64(s.channel.receive.publishedPosition)
        freed.pointee = UInt64(s.channel.send.releasedPosition)
    case .datagram(let d):
        let rings = UInt64(d.doorbell?.rings ?? 0)
        arrivals.pointee = rings
        freed.pointee = rings
    }
}

/// Only after an enter that returned a descriptor: its hold goes with it. `fd`: the
/// placeholder, -1 if the number no longer names this socket (closed since).
@_cdecl("netmp_poll_leave")
public func netmpPollLeave(_ handle: UnsafeMutableRawPointer, _ fd: Int32, _ rung: Int32) {
    socket(handle).doorbell?.leave(rung: rung != 0, through: fd)
    Unmanaged<ShimSocket>.fromOpaque(handle).release()
}
