import CNetMPLinux
import Glibc
import NetMPClient
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire

// exec keeps a process's connections, as the kernel keeps its sockets (docs/SHIM.md, exec):
// the old image writes an ExecHandoff into a memfd and keeps its connection to the stack
// and its names socket open across the exec; the new image's constructor reads it, resumes
// the client over that connection and stands each connection behind its descriptors again.

/// Before exec, in the old image: the program's descriptors without close-on-exec that are
/// netmp sockets (`count` of them, with their sockets). The hand-off's memfd (not
/// close-on-exec, the connection and names socket made so too), or -1 when no connection
/// is carried (the exec then goes as before: the stack sees this process end).
@_cdecl("netmp_exec_hand_off")
public func netmpExecHandOff(_ fds: UnsafePointer<Int32>, _ handles: UnsafePointer<UnsafeMutableRawPointer>, _ count: Int32) -> Int32 {
    guard let client = processClient, !client.stackGone, let connection = client.connection, let names = client.names else { return -1 }
    var sockets: [ExecHandoff.Socket] = []
    var index: [ObjectIdentifier: Int] = [:]
    for i in 0..<Int(count) {
        let shim = socket(handles[i])
        if let at = index[ObjectIdentifier(shim)] {
            sockets[at].descriptors.append(fds[i])
            continue
        }
        let options = shim.optionsSet.map { ExecHandoff.Option(level: $0.level, name: $0.name, value: $0.value) }
        let nowhere = Endpoint(IPAddress(IPv4Address.any), 0)
        let socket: ExecHandoff.Socket
        // Connections (those still connecting too), listeners and bound UDP sockets go
        // across as they are; a socket not yet connected, listening or bound goes as what
        // the new image makes again. One whose failed connect was reported is let go by
        // the stack at the resume, as at this process's end.
        if case .datagram(let d) = shim.kind {
            if let (handle, datagram) = d.inheritable, let slot = shim.sharingSlot {
                socket = ExecHandoff.Socket(descriptors: [fds[i]], doorbellSlot: slot, handle: handle,
                                            tuple: FourTuple(local: nowhere, remote: nowhere), ipv6: shim.isIPv6,
                                            nonBlocking: d.nonBlocking, options: options, datagram: datagram)
            } else if let fresh = d.inheritableFresh {
                socket = .fresh(fresh, descriptors: [fds[i]], doorbellSlot: nil, ipv6: shim.isIPv6, nonBlocking: d.nonBlocking,
                                options: options)
            } else {
                continue
            }
        } else if case .stream(let stream) = shim.kind, let slot = shim.sharingSlot {
            if let (handle, tuple, connecting) = stream.inheritable {
                socket = ExecHandoff.Socket(descriptors: [fds[i]], doorbellSlot: slot, handle: handle, tuple: tuple,
                                            ipv6: shim.isIPv6, nonBlocking: stream.nonBlocking, options: options,
                                            connecting: connecting)
            } else if let (name, kept) = stream.inheritableListener {
                var listener = kept
                listener.twin = shim.twin.load(ordering: .acquiring) // the loopback connections it queued go across too
                socket = ExecHandoff.Socket(descriptors: [fds[i]], doorbellSlot: slot, handle: name,
                                            tuple: FourTuple(local: nowhere, remote: nowhere), ipv6: shim.isIPv6,
                                            nonBlocking: stream.nonBlocking, options: options, listener: listener)
            } else if let fresh = stream.inheritableFresh {
                socket = .fresh(fresh, descriptors: [fds[i]], doorbellSlot: slot, ipv6: shim.isIPv6,
                                nonBlocking: stream.nonBlocking, options: options)
            } else {
                continue
            }
        } else {
            continue
        }
        index[ObjectIdentifier(shim)] = sockets.count
        sockets.append(socket)
    }
    guard !sockets.isEmpty else { return -1 }
    let handoff = ExecHandoff(connection: connection, names: names, sockets: sockets)
    let bytes = handoff.serialized()
    let memfd = bytes.withUnsafeBytes { netmp_hand_down($0.baseAddress, $0.count) }
    guard memfd >= 0 else { return -1 }
    keptOpenForExec = handoff.libraryDescriptors
    for fd in keptOpenForExec { _ = netmp_set_close_on_exec(fd, 0) }
    return memfd
}

/// The library's descriptors the exec under way keeps open (ExecHandoff.libraryDescriptors).
nonisolated(unsafe) var keptOpenForExec: [Int32] = []

/// The exec failed: the hand-off goes, and the descriptors it kept open are close-on-exec
/// again.
@_cdecl("netmp_exec_failed")
public func netmpExecFailed(_ memfd: Int32) {
    _ = netmp_close_descriptor(memfd)
    for fd in keptOpenForExec { _ = netmp_set_close_on_exec(fd, 1) }
    keptOpenForExec = []
}

/// In the new image, at load: the hand-off in `memfd` (read and closed). The client
/// resumes over the kept connection, and each socket's descriptors are recorded through
/// `record` (the shim's table). 0 when resumed; -1 when not (said why on stderr, unless
/// `record` is nil: the new program does not run netmp): the descriptors stay
/// placeholders, and the kept connection is closed so that the stack closes what this
/// process held.
@_cdecl("netmp_resume_after_exec")
public func netmpResumeAfterExec(_ memfd: Int32, _ record: (@convention(c) (Int32, UnsafeMutableRawPointer) -> Void)?) -> Int32 {
    var size = stat()
    guard fstat(memfd, &size) == 0, size.st_size > 0, size.st_size <= 64 << 20 else {
        _ = netmp_close_descriptor(memfd)
        Log.write("netmp: process \(getpid()): the exec hand-off cannot be read; its sockets are lost")
        return -1
    }
    var bytes = [UInt8](repeating: 0, count: Int(size.st_size))
    let read = bytes.withUnsafeMutableBytes { netmp_take_handed_down(memfd, $0.baseAddress, $0.count) }
    guard read == bytes.count, let handoff = bytes.withUnsafeBytes({ ExecHandoff(parsing: $0) }) else {
        Log.write("netmp: process \(getpid()): the exec hand-off is damaged; its sockets are lost")
        return -1
    }
    guard let record, case .success(let configuration?) = environmentConfiguration() else {
        for fd in handoff.libraryDescriptors { _ = netmp_close_descriptor(fd) }
        return -1
    }
    // The new image's own descriptors are close-on-exec, as the attach made them.
    for fd in handoff.libraryDescriptors { _ = netmp_set_close_on_exec(fd, 1) }
    let client: StackClient
    do {
        client = try StackClient.resume(connection: handoff.connection, names: handoff.names,
                                        door: StackDoor.name(tap: configuration.tapName),
                                        keeping: handoff.sockets.compactMap(\.keptSlot))
    } catch {
        for fd in handoff.libraryDescriptors { _ = netmp_close_descriptor(fd) }
        Log.write("netmp: process \(getpid()): cannot resume after exec, its sockets are lost: \(error)")
        return -1
    }
    attached(client, asking: configuration)
    for kept in handoff.sockets {
        let family: SocketFamily = kept.ipv6 ? .ipv6 : .ipv4
        if let fresh = kept.fresh {
            if fresh.datagram {
                let socket = DatagramSocket(client: client, family: family)
                socket.placeholderBell.store(client.commonBell, ordering: .releasing)
                stand(ShimSocket(.datagram(socket)), kept, record) { socket.restore(fresh) }
                socket.nonBlocking = kept.nonBlocking
            } else if let stream = StreamSocket.inheritedFresh(client: client, doorbellSlot: kept.doorbellSlot, family: family) {
                stream.channel.doorbell.standInPlaceholders(common: client.commonBell)
                stand(ShimSocket(.stream(stream)), kept, record) { stream.restore(fresh) }
                stream.nonBlocking = kept.nonBlocking
            }
            continue
        }
        if let datagram = kept.datagram {
            guard let socket = DatagramSocket.inherited(client: client, handle: kept.handle, datagram: datagram,
                                                        family: family, common: client.commonBell) else { continue }
            stand(ShimSocket(.datagram(socket)), kept, record)
            socket.nonBlocking = kept.nonBlocking
            continue
        }
        let rebuilt = if let listener = kept.listener {
            StreamSocket.inheritedListener(client: client, name: kept.handle, listener: listener, family: family)
        } else {
            StreamSocket.inherited(client: client, handle: kept.handle, tuple: kept.tuple, family: family,
                                   connecting: kept.connecting)
        }
        let twin = kept.listener?.twin ?? -1
        guard let stream = rebuilt else {
            if twin >= 0 { _ = netmp_close_descriptor(twin) }
            continue
        }
        stream.channel.doorbell.standInPlaceholders(common: client.commonBell)
        let shim = ShimSocket(.stream(stream))
        if twin >= 0 { shim.twin.store(twin, ordering: .releasing) }
        stand(shim, kept, record)
        stream.nonBlocking = kept.nonBlocking
    }
    return 0
}

/// The options the program set, set again (getsockopt then reads what it read before;
/// the stack already has them), then `settled` (what must follow the options), and the
/// socket recorded behind each of its descriptors. A bound socket's group memberships are
/// not set again: its groups came across with it, and the cores still count them; a fresh
/// socket's are (no core was told of them yet).
private func stand(_ shim: ShimSocket, _ kept: ExecHandoff.Socket, _ record: @convention(c) (Int32, UnsafeMutableRawPointer) -> Void,
                   settled: () -> Void = {}) {
    let handle = Unmanaged.passRetained(shim).toOpaque()
    for option in kept.options where kept.fresh != nil || !isMembership(option) {
        _ = option.value.withUnsafeBytes { netmpSetSockOpt(handle, option.level, option.name, $0.baseAddress, UInt32($0.count)) }
    }
    settled()
    for (i, fd) in kept.descriptors.enumerated() {
        if i > 0 { netmpSocketRetain(handle) }
        record(fd, handle)
    }
}

/// A join, a leave or a source filter (IPPROTO_IP's and IPPROTO_IPV6's, and the
/// protocol-independent MCAST_* ones at either level).
private func isMembership(_ option: ExecHandoff.Option) -> Bool {
    switch (option.level, option.name) {
    case (0, 35...48): true // IP_ADD_MEMBERSHIP ... IP_MSFILTER, MCAST_JOIN_GROUP ... MCAST_MSFILTER
    case (41, 20...21), (41, 42...48): true // IPV6_ADD_MEMBERSHIP, IPV6_DROP_MEMBERSHIP, the MCAST_* ones
    default: false
    }
}
