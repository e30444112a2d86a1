import CNetMPChannel
import CNetMPLinux
import Glibc
import NetMPStack
import NetMPSystem
import NetMPTCP
import Synchronization

extension StackClient {
    /// Attaches to the stack serving `door`: a hello, then the answer with the region,
    /// the wake page and the client's bells (an eventfd per core). The connection stays open for the client's
    /// life: the stack learns that the program ended when it closes.
    public static func attach(door: String) throws(AttachError) -> StackClient {
        let hello = netmp_attach_hello(version: UInt32(NETMP_ATTACH_VERSION), request: UInt32(NETMP_HELLO_ATTACH), client: 0, process: 0)
        let fd = try greet(door, hello).get()
        do {
            return try attach(over: fd, door: door)
        } catch {
            _ = netmp_close_descriptor(fd)
            throw error
        }
    }

    /// A connection to `door` that said `hello`, or no stack there (the errno of the
    /// connect or the send).
    static func greet(_ door: String, _ hello: netmp_attach_hello) -> Result<Int32, AttachError> {
        let fd = netmp_move_high(netmp_attach_connect(door))
        guard fd >= 0 else { return .failure(.noStack(errno: -fd)) }
        var hello = hello
        let sent = netmp_message_send(fd, &hello, Int32(MemoryLayout<netmp_attach_hello>.size), nil, 0)
        guard sent >= 0 else {
            _ = netmp_close_descriptor(fd)
            return .failure(.noStack(errno: -sent))
        }
        return .success(fd)
    }

    /// After exec: the process's connection and names socket, kept open across it by the
    /// old image, ask for the client's memory again (NETMP_HELLO_RESUME); the stack lets go
    /// of every socket this process held but those of the doorbell slots `keeping`.
    public static func resume(connection fd: Int32, names: Int32, door: String?, keeping: [UInt32]) throws(AttachError) -> StackClient {
        guard keeping.count <= Int(NETMP_RESUME_SLOTS) else { throw .malformed("\(keeping.count) sockets to keep") }
        var message = [UInt8](repeating: 0, count: MemoryLayout<netmp_attach_hello>.size + 4 * keeping.count)
        message.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: netmp_attach_hello(version: UInt32(NETMP_ATTACH_VERSION), request: UInt32(NETMP_HELLO_RESUME),
                                                    client: 0, process: 0), as: netmp_attach_hello.self)
            for (i, slot) in keeping.enumerated() {
                bytes.storeBytes(of: slot, toByteOffset: MemoryLayout<netmp_attach_hello>.size + 4 * i, as: UInt32.self)
            }
        }
        let sent = message.withUnsafeBytes { netmp_message_send(fd, $0.baseAddress, Int32($0.count), nil, 0) }
        guard sent >= 0 else { throw .noStack(errno: -sent) }
        return try attach(over: fd, door: door, names: names)
    }

    /// The stack's answer to the hello on `fd`, made into a client. `names`: the names
    /// socket this process kept (a resume), else the answer carries it.
    static func attach(over fd: Int32, door: String? = nil, names keptNames: Int32? = nil) throws(AttachError) -> StackClient {
        var reply = netmp_attach_reply()
        var fds = [Int32](repeating: -1, count: 64)
        var count: Int32 = 0
        let received = netmp_message_receive(fd, &reply, Int32(MemoryLayout<netmp_attach_reply>.size), &fds, 64, &count)
        let given = fds.prefix(Int(max(0, count))).map(netmp_move_high)
        // Whatever is not kept below is closed on the way out.
        var kept: Set<Int32> = []
        defer { for descriptor in given where !kept.contains(descriptor) { _ = netmp_close_descriptor(descriptor) } }
        // Reset or closed unanswered: the stack was stopping as this program came.
        guard received > 0 else { throw .noStack(errno: received < 0 ? -received : ECONNRESET) }
        guard received == MemoryLayout<netmp_attach_reply>.size else { throw .malformed("\(received) bytes") }
        guard reply.version == UInt32(NETMP_ATTACH_VERSION) else { throw .malformed("version \(reply.version)") }
        guard reply.error == 0 else { throw .refused(errno: reply.error) }
        let cores = Int(reply.cores)
        let fixed = keptNames == nil ? 3 : 2 // region, wake page (and names)
        guard cores > 0, given.count == fixed + cores else { throw .malformed("\(given.count) descriptors for \(cores) cores") }
        let lines = withUnsafeBytes(of: &reply.configuration) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard case .success(let parsed?) = StackConfiguration.parse(lines: lines) else { throw .malformed("configuration") }
        let region: ClientRegion
        do { region = try ClientRegion(mapping: given[0]) } catch { throw .malformed("region: \(error)") }
        guard region.cores == cores else { throw .malformed("a region for \(region.cores) cores, not \(cores)") }
        guard let page = CoreWakePage(mapping: given[1], cores: cores) else { throw .malformed("wake page") }
        let names = keptNames ?? given[2]
        let wakers = (0..<cores).map { CoreWaker(sleeps: page.sleeps($0), eventfd: given[fixed + $0], page: page) }
        kept.insert(names)
        for core in 0..<cores { kept.insert(given[fixed + core]) }
        var configuration = parsed
        configuration.cores = cores
        var tcp = TCPConfiguration.forThisSystem()
        tcp.sendBufferSize = Int(reply.send_buffer)
        tcp.receiveBufferSize = Int(reply.receive_buffer)
        tcp.maximumSegmentSize = Int(reply.maximum_segment)
        let client = StackClient(id: reply.client, region: region, configuration: configuration, tcpConfiguration: tcp,
                                 steering: FlowSteering(cores: cores), wakers: wakers, connection: fd, names: names, door: door)
        client.process = reply.process
        return client
    }

    /// Asks the stack serving `door` to stop (`netmp down`); success once it said it will.
    public static func askToStop(door: String) -> Result<Void, AttachError> {
        let hello = netmp_attach_hello(version: UInt32(NETMP_ATTACH_VERSION), request: UInt32(NETMP_HELLO_STOP), client: 0, process: 0)
        let fd: Int32
        switch greet(door, hello) {
        case .success(let connection): fd = connection
        case .failure(let error): return .failure(error)
        }
        defer { _ = netmp_close_descriptor(fd) }
        var reply = netmp_attach_reply()
        var count: Int32 = 0
        let received = netmp_message_receive(fd, &reply, Int32(MemoryLayout<netmp_attach_reply>.size), nil, 0, &count)
        guard received == MemoryLayout<netmp_attach_reply>.size else {
            return .failure(received <= 0 ? .noStack(errno: received < 0 ? -received : ECONNRESET) : .malformed("\(received) bytes"))
        }
        return reply.error == 0 ? .success(()) : .failure(.refused(errno: reply.error))
    }

    /// This process's connection and names socket close, as at its end: the stack then
    /// closes what only this process held. (The bells, the region and the wake
    /// page go with the last reference to this client, when nothing can wake a core
    /// through them any more.) Once; a forked child that cannot join, and tests that play
    /// many programs in one process.
    public func hangUp() {
        let fd = connectionBox.fd.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { _ = netmp_close_descriptor(fd) }
        let names = namesBox.fd.exchange(-1, ordering: .acquiringAndReleasing)
        if names >= 0 { _ = netmp_close_descriptor(names) }
    }

    /// Before fork: a process number for the child (nil when the client has 64 processes).
    public func numberForChild() -> UInt32? { sockets.takeProcessNumber() }

    /// In a forked child, with its number: the parent's connection (inherited) is closed
    /// and the child joins the stack over one of its own, so that each process's end is
    /// seen apart. False when the door could not be reached: the child then holds
    /// nothing the stack would close at its end.
    public func joinAfterFork(as number: UInt32) -> Bool {
        process = number
        if let inherited = connection { _ = netmp_close_descriptor(inherited) }
        connectionBox.fd.store(-1, ordering: .releasing)
        guard let door,
              case .success(let fd) = Self.greet(door, netmp_attach_hello(version: UInt32(NETMP_ATTACH_VERSION), request: UInt32(NETMP_HELLO_JOIN),
                                                                          client: id, process: number)) else { return false }
        connectionBox.fd.store(fd, ordering: .releasing)
        return true
    }

    /// Hands the placeholder of the doorbell in `slot` to the stack over the names socket.
    static func name(doorbell slot: UInt32, placeholder: Int32, on names: Int32) -> Bool {
        var registration = netmp_doorbell_registration(slot: slot, reserved: 0)
        var descriptor = placeholder
        return netmp_message_send(names, &registration, Int32(MemoryLayout<netmp_doorbell_registration>.size),
                                  &descriptor, 1) >= 0
    }
}
