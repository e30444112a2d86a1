import CNetMPChannel
import CNetMPLinux
import Foundation
import Glibc
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPStackProcess
import NetMPSystem
import NetMPTCP
import NetMPWire
import Synchronization
import Testing

/// The stack service's door, in one process: a client attaches over the Unix socket and
/// maps its region and the wake page from the memfds it is given, as a program does in
/// another process (docs/STACK-SERVICE.md, step 3).
@Suite(.serialized) struct StackServiceTests {
    final class Stopping: Sendable { let flag = Atomic<Bool>(false) }
    static let doors = Atomic<Int>(0)

    /// A stack pair whose A serves a door of its own on a thread of the test's.
    final class Served: @unchecked Sendable {
        let pair: StackPair
        let service: StackService
        let stopping: Stopping
        let finished: (Double) -> Bool

        init(faultLimit: UInt64 = 1000) throws {
            pair = try StackPair(cores: 2)
            let door = "netmp-test/\(getpid())/\(StackServiceTests.doors.add(1, ordering: .relaxed).newValue)"
            service = try StackService(stack: pair.a, door: door, log: Log(level: .off))
            service.faultLimit = faultLimit // before the serving thread starts
            let (service, stopping) = (service, Stopping())
            self.stopping = stopping
            finished = spawnBounded { service.serve(tick: 20) { stopping.flag.load(ordering: .relaxed) } }
        }

        func stop() {
            stopping.flag.store(true, ordering: .relaxed)
            #expect(finished(10))
            pair.stop()
        }

        /// A client attached through the door and a connection of it to a listener on B at
        /// `port`, its doorbell standing on placeholders, as the shim's sockets do; the
        /// connection's peer and the listener.
        func attachedConnection(port: UInt16) throws
            -> (client: StackClient, socket: StreamSocket, peer: StreamSocket, server: StreamSocket) {
            let client = try StackClient.attach(door: service.door)
            let server = try pair.listenOnB(port: port)
            let socket = StreamSocket(client: client)
            socket.channel.doorbell.standInPlaceholders(common: client.commonBell)
            try socket.connect(to: Endpoint(StackPair.addressB, port))
            return (client, socket, try server.accept(), server)
        }

        /// A client attached through the door and `count` connections of it to a listener
        /// on B at `port`, with their peers in the same order.
        func attachedConnections(_ count: Int, port: UInt16) throws
            -> (client: StackClient, server: StreamSocket, sockets: [StreamSocket], peers: [StreamSocket]) {
            let client = try StackClient.attach(door: service.door)
            let server = try pair.listenOnB(port: port)
            let sockets = (0..<count).map { _ in StreamSocket(client: client) }
            for socket in sockets { try socket.connect(to: Endpoint(StackPair.addressB, port)) }
            return (client, server, sockets, try acceptPeers(of: sockets, on: server))
        }

        /// Accepts one connection from each of `sockets` on `server`, in the order of
        /// `sockets` (accept takes them in whatever order the cores queued them), each with
        /// a receive timeout so that a peer that is not closed fails the test, not hangs it.
        func acceptPeers(of sockets: [StreamSocket], on server: StreamSocket) throws -> [StreamSocket] {
            let accepted = try sockets.map { _ in try server.accept() }
            return try sockets.map { socket in
                let peer = try #require(accepted.first { (try? $0.peerAddress())?.port == socket.localAddress.port })
                peer.setTimeouts(receive: 5_000_000_000)
                return peer
            }
        }

        /// Two clients attached through the door, A listening on `port` and B on `port + 1`:
        /// the listeners and the handle of B's, for a record B writes about A's port.
        func twoListeningClients(port: UInt16) throws
            -> (a: StackClient, b: StackClient, listener: StreamSocket, own: StreamSocket, ownHandle: SocketHandle) {
            let a = try StackClient.attach(door: service.door)
            let b = try StackClient.attach(door: service.door)
            let listener = StreamSocket(client: a)
            try listener.bind(Endpoint(IPv4Address(0), port))
            try listener.listen(backlog: 8)
            let own = StreamSocket(client: b)
            try own.bind(Endpoint(IPv4Address(0), port + 1))
            try own.listen(backlog: 8)
            let slot = try #require(b.sockets.namedSlots().first { $0.kind == .listener }?.slot)
            return (a, b, listener, own, SocketHandle(slot: slot, generation: b.sockets.generationOf(slot)))
        }

        /// The faults `netmp stat` shows for `client` (nil: not listed).
        func faults(of client: StackClient) -> UInt64? {
            (pair.a.statsSnapshot()?.clients ?? []).first { $0.id == client.id }?.faults
        }

        /// Eight connections from stack B to `port` on A are each accepted by `listener`,
        /// whichever core owns them.
        func expectConnectionsReach(_ listener: StreamSocket, port: UInt16) throws {
            listener.setTimeouts(receive: 5_000_000_000)
            for _ in 0..<8 {
                let peer = StreamSocket(stack: pair.b)
                try peer.connect(to: Endpoint(StackPair.addressA, port))
                let accepted = try listener.accept()
                #expect(try accepted.peerAddress().port == peer.localAddress.port)
                accepted.close(); peer.close()
            }
        }

        /// Waits (5 s at most) until `condition` holds.
        func eventually(_ condition: () -> Bool) -> Bool {
            for _ in 0..<500 where !condition() { usleep(10_000) }
            return condition()
        }
    }

    /// Attached through the door, a client's streams go both ways through stack A, its
    /// listener accepts, and its slots come back once its sockets are closed.
    @Test func attachedClient_streamsEveryWay() throws {
        let served = try Served()
        defer { served.stop() }
        let client = try StackClient.attach(door: served.service.door)
        #expect(client.connection != nil && client.cores == served.pair.a.cores)
        #expect(client.configuration.address == StackPair.addressA)
        #expect(served.eventually { served.service.clientCount == 1 })
        // `netmp stat` of the stack shows the attached program.
        #expect(served.eventually {
            guard let row = served.pair.a.statsSnapshot()?.clients.first else { return false }
            return row.id == client.id && row.pid == getpid() && row.uid == getuid() && row.processes == 1
        })
        try StackClientTests().streamEveryWay(served.pair, client)
        #expect(served.eventually { client.sockets.slotsTaken == 0 })
    }

    /// A record naming a port another client holds is dropped: a client cannot stop
    /// another's listener by naming its port beside a listener of its own, and the
    /// listener it named still accepts. The record is a fault of the client that sent it.
    @Test func recordNamingAnotherClientsPort_isDropped() throws {
        let served = try Served()
        defer { served.stop() }
        let (a, b, listener, _, ownHandle) = try served.twoListeningClients(port: 7420)
        var stop = Request(.stopListening, ownHandle)
        stop.localPort = 7420
        b.askForTesting(stop)
        let peer = StreamSocket(stack: served.pair.b)
        try peer.connect(to: Endpoint(StackPair.addressA, 7420))
        listener.setTimeouts(receive: 5_000_000_000)
        let accepted = try listener.accept()
        #expect(try accepted.peerAddress().port == peer.localAddress.port)
        // The record counts against B in `netmp stat` (its faults), not against A.
        #expect(served.eventually { served.faults(of: b) == 1 && served.faults(of: a) == 0 })
        // B's own listener is B's to stop.
        stop.localPort = 7421
        b.askForTesting(stop)
        let refused = StreamSocket(stack: served.pair.b)
        #expect(throws: SocketError.self) { try refused.connect(to: Endpoint(StackPair.addressA, 7421)) }
    }

    /// A connect record naming a local port the client does not hold (another client's
    /// listener's) is refused by the core: the connect fails with EINVAL before any segment
    /// leaves from that port, the record is the client's fault, and the port's holder goes on
    /// accepting there. Bound to a port of its own, the same client connects.
    @Test func connectRecordFromAnotherClientsPort_isRefused() throws {
        let served = try Served()
        defer { served.stop() }
        let (a, b, listener, own, _) = try served.twoListeningClients(port: 7440)
        let target = StreamSocket(stack: served.pair.b)
        try target.bind(Endpoint(IPv4Address(0), 7442))
        try target.listen(backlog: 4)
        let forger = StreamSocket(client: b)
        forger.forgeBoundPortForTesting(7440)
        #expect(throws: SocketError(EINVAL)) { try forger.connect(to: Endpoint(StackPair.addressB, 7442)) }
        #expect(served.eventually { served.faults(of: b) == 1 && served.faults(of: a) == 0 })
        let honest = StreamSocket(client: b)
        try honest.bind(Endpoint(IPv4Address(0), 7443))
        try honest.connect(to: Endpoint(StackPair.addressB, 7442))
        target.setTimeouts(receive: 5_000_000_000)
        let arrived = try target.accept()
        #expect(try arrived.peerAddress().port == 7443) // the first connection to arrive is the honest one
        let peer = StreamSocket(stack: served.pair.b)
        try peer.connect(to: Endpoint(StackPair.addressA, 7440))
        listener.setTimeouts(receive: 5_000_000_000)
        #expect(try listener.accept().peerAddress().port == peer.localAddress.port)
        #expect(served.faults(of: b) == 1)
        for s in [forger, honest, arrived, peer, target, listener, own] { s.close() }
    }

    /// A listen record naming a port the client does not hold is dropped on every core: a
    /// client cannot listen beside another's listener by writing its port into the record,
    /// and connections there still reach the port's holder. The record is the client's fault.
    @Test func listenRecordOnAnotherClientsPort_isDropped() throws {
        let served = try Served()
        defer { served.stop() }
        let (a, b, listener, own, ownHandle) = try served.twoListeningClients(port: 7430)
        var listen = Request(.listen, ownHandle)
        listen.localPort = 7430
        b.askForTesting(listen)
        #expect(served.eventually { served.faults(of: b) == 1 && served.faults(of: a) == 0 })
        // Every connection to 7430 reaches A's listener, whichever core owns it.
        own.setTimeouts(receive: 200_000_000)
        try served.expectConnectionsReach(listener, port: 7430)
        #expect(throws: SocketError.self) { try own.accept() } // nothing came to B's
        listener.close(); own.close()
    }

    /// A record every core must act on (listen, a UDP bind, a group join) is answered by
    /// the last core to finish; an honest client waits for each answer in a reply slot of
    /// its own, so it never has more in flight than it has slots. A client that writes
    /// hundreds of group joins without waiting while the other core is far behind has
    /// those past its slots dropped as faults, instead of filling that core's port and
    /// this core's outbox; once the core catches up, the other client's listener takes
    /// connections and the flooder's own calls work again.
    @Test func recordsForEveryCore_pastTheReplySlots_areDropped() throws {
        let served = try Served()
        defer { served.stop() }
        let a = try StackClient.attach(door: served.service.door)
        let b = try StackClient.attach(door: served.service.door)
        let listener = StreamSocket(client: a)
        try listener.bind(Endpoint(IPv4Address(0), 7440))
        try listener.listen(backlog: 8)
        let udp = DatagramSocket(client: b)
        try udp.bind(Endpoint(IPv4Address(0), 7441))
        let slot = try #require(b.sockets.namedSlots().first { $0.kind == .datagram }?.slot)
        var join = Request(.datagramJoin, SocketHandle(slot: slot, generation: b.sockets.generationOf(slot)))
        join.remote = Endpoint(IPv4Address(239, 1, 2, 3), 0)
        let released = Atomic(false)
        let target = Int(slot) % served.pair.a.cores // the core the records go to
        for core in 0..<served.pair.a.cores where core != target {
            served.pair.a.stallCoreForTesting(core) { released.load(ordering: .acquiring) }
        }
        // Below the fault limit (1000): the flooder stays attached.
        b.floodForTesting(join, count: 900)
        let dropped = served.eventually { (served.faults(of: b) ?? 0) >= 900 - UInt64(ReplyBoard.capacity) }
        released.store(true, ordering: .releasing)
        #expect(dropped, "\(served.faults(of: b) ?? 0) records of the flood were dropped")
        #expect(served.faults(of: a) == 0)
        try served.expectConnectionsReach(listener, port: 7440)
        let after = DatagramSocket(client: b)
        try after.bind(Endpoint(IPv4Address(0), 7442)) // on every core: waits for their answers
        listener.close(); udp.close(); after.close()
    }

    /// A ring position the client leaves where no reader could have put it (its region
    /// scribbled) is ignored by the core and counted among the client's faults, so a client
    /// that keeps scribbling its rings is detached as one that writes bad records is.
    @Test func impossibleRingPosition_isTheClientsFault() throws {
        let served = try Served()
        defer { served.stop() }
        let (client, server, sockets, peers) = try served.attachedConnections(1, port: 7620)
        let head = MemoryLayout<netmp_receive_ring>.offset(of: \netmp_receive_ring.head)!
        sockets[0].channel.receive.storage.block.storeBytes(of: Int.min, toByteOffset: head, as: Int.self)
        let bytes = [UInt8](repeating: 3, count: 1000)
        #expect(try bytes.withUnsafeBytes { try peers[0].send($0) } == bytes.count) // the core looks at the head
        #expect(served.eventually { (served.faults(of: client) ?? 0) >= 1 })
        for s in [sockets[0], peers[0], server] { s.close() }
    }

    /// Every client maps the cores' wake page, where a core announces its sleeps; a client
    /// that could clear an announcement would hide the sleep from another client, whose
    /// record would then wake no one. A client has no way to write the page: not through its
    /// mapping, a new one, the memfd or the memfd opened again; the cores sleep without a
    /// guard timeout and the other client's calls still wake them.
    @Test func wakePage_noClientCanWriteIt() throws {
        let served = try Served()
        defer { served.stop() }
        let hostile = try StackClient.attach(door: served.service.door)
        let other = try StackClient.attach(door: served.service.door)
        let page = try #require(hostile.wakePage)
        let fd = try #require(page.descriptor)
        let line = UnsafeMutableRawPointer(page.sleeps(0))
        #expect(mprotect(line, 4096, PROT_READ | PROT_WRITE) == -1 && errno == EACCES)
        #expect(mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM)
        var zero: UInt64 = 0
        #expect(pwrite(fd, &zero, 8, 0) == -1 && errno == EPERM)
        let reopened = open("/proc/self/fd/\(fd)", O_RDWR)
        #expect(reopened >= 0)
        #expect(pwrite(reopened, &zero, 8, 0) == -1 && errno == EPERM)
        #expect(mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, reopened, 0) == MAP_FAILED && errno == EPERM)
        close(reopened)
        let addSeals: Int32 = 1033 // F_ADD_SEALS, which Glibc's module leaves out
        #expect(fcntl(fd, addSeals, 0) == -1 && errno == EPERM) // the seals are sealed too
        for i in 0..<3 {
            // Once every core sleeps with nothing owed, only a ring wakes it.
            var sleeps: [UInt64] = []
            for _ in 0..<400 {
                sleeps = (0..<page.cores).map { page.sleeps($0).pointee.load(ordering: .acquiring) }
                if sleeps.allSatisfy({ $0 & 1 == 1 }) { break }
                usleep(5_000)
            }
            #expect(sleeps.allSatisfy { $0 & 1 == 1 }, "the cores announce their sleeps: \(sleeps)")
            let socket = StreamSocket(client: other)
            try socket.bind(Endpoint(IPv4Address(0), UInt16(7650 + i))) // a round trip to a core
            socket.close()
        }
    }

    /// Each client wakes the cores through bells of its own, which the cores watch but never
    /// read or write: a client that makes its bells blocking and keeps a thread reading
    /// them (with one eventfd per core for every client, that thread took the rings of
    /// all, and a core's own read could block behind it for good) holds up no other client.
    @Test func clientsBells_areItsOwn_aHostileOneHoldsUpNoOne() throws {
        let served = try Served()
        defer { served.stop() }
        let hostile = try StackClient.attach(door: served.service.door)
        let other = try StackClient.attach(door: served.service.door)
        // Every eventfd has the same inode: the kernel numbers each in its fdinfo.
        func file(_ fd: Int32) -> String {
            let info = (try? String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8)) ?? ""
            return info.split(separator: "\n").first { $0.hasPrefix("eventfd-id:") }.map(String.init) ?? "fd \(fd): no eventfd"
        }
        #expect(hostile.bells.count == 2 && other.bells.count == 2)
        #expect(Set(hostile.bells.map(file)).isDisjoint(with: other.bells.map(file)), "clients share a bell")
        let stealing = Stopping()
        var thieves: [(Double) -> Bool] = []
        for bell in hostile.bells {
            #expect(fcntl(bell, F_SETFL, 0) == 0) // blocking
            thieves.append(spawnBounded {
                var count: UInt64 = 0
                while !stealing.flag.load(ordering: .relaxed) && Glibc.read(bell, &count, 8) == 8 {}
            })
        }
        let binds = Stopping()
        let binder = spawnBounded {
            var slowest = Interval.zero
            for i in 0..<8 {
                usleep(250_000) // the cores go to sleep: only a ring wakes them for the bind
                let socket = StreamSocket(client: other)
                let start = MonotonicClock.now()
                try? socket.bind(Endpoint(IPv4Address(0), UInt16(7660 + i))) // a round trip to a core
                slowest = max(slowest, MonotonicClock.now() - start)
                socket.close()
            }
            // The cores' guard wakes them every 100 ms with two clients: a ring that goes
            // astray costs up to that.
            binds.flag.store(slowest < .milliseconds(60), ordering: .relaxed)
        }
        #expect(binder(30), "the other client's binds hung")
        let fast = binds.flag.load(ordering: .relaxed)
        #expect(fast, "a bind of the other client waited for a core's guard")
        stealing.flag.store(true, ordering: .relaxed)
        for bell in hostile.bells { _ = netmp_doorbell_ring(bell) } // the thieves' last read
        for thief in thieves { #expect(thief(5)) }
    }

    /// A second listen record for a listener that listens already (on its own port, or on
    /// another the client holds) is refused by every core and is the client's fault: the
    /// listener goes on as it was, and once it is closed nothing listens on its port.
    @Test func secondListenRecordForOneListener_isRefused() throws {
        let served = try Served()
        defer { served.stop() }
        let (_, b, _, own, ownHandle) = try served.twoListeningClients(port: 7440)
        let spare = StreamSocket(client: b)
        try spare.bind(Endpoint(IPv4Address(0), 7442)) // a port B holds without listening
        for port: UInt16 in [7441, 7442] {
            var again = Request(.listen, ownHandle)
            again.localPort = port
            b.askForTesting(again)
        }
        #expect(served.eventually { (served.faults(of: b) ?? 0) == UInt64(2 * served.pair.a.cores) })
        let peer = StreamSocket(stack: served.pair.b)
        try peer.connect(to: Endpoint(StackPair.addressA, 7441))
        own.setTimeouts(receive: 5_000_000_000)
        let accepted = try own.accept()
        #expect(try accepted.peerAddress().port == peer.localAddress.port)
        let nobody = StreamSocket(stack: served.pair.b)
        #expect(throws: SocketError.self) { try nobody.connect(to: Endpoint(StackPair.addressA, 7442)) }
        accepted.close(); peer.close(); own.close(); spare.close()
        // No listener is left behind on 7441 (a second one would still take this).
        let late = StreamSocket(stack: served.pair.b)
        #expect(throws: SocketError.self) { try late.connect(to: Endpoint(StackPair.addressA, 7441)) }
    }

    /// A client that keeps writing faulty records is detached once past the stack's limit:
    /// its door connection closes (its library then fails every call), every core closes
    /// what it held (its connection's peer reads the end), and another client goes on.
    @Test func clientWritingFaults_isDetached() throws {
        let served = try Served(faultLimit: 8)
        defer { served.stop() }
        let (bad, server, sockets, peers) = try served.attachedConnections(1, port: 7610)
        let good = try StackClient.attach(door: served.service.door)
        let goodSocket = StreamSocket(client: good)
        try goodSocket.connect(to: Endpoint(StackPair.addressB, 7610))
        let goodPeer = try server.accept()
        goodPeer.setTimeouts(receive: 5_000_000_000)
        let own = StreamSocket(client: bad)
        try own.bind(Endpoint(IPv4Address(0), 7611))
        try own.listen(backlog: 4)
        let slot = try #require(bad.sockets.namedSlots().first { $0.kind == .listener }?.slot)
        var stop = Request(.stopListening, SocketHandle(slot: slot, generation: bad.sockets.generationOf(slot)))
        stop.localPort = 7612 // a port it does not listen on: each record is a fault
        for _ in 0..<8 { bad.askForTesting(stop) }
        // Once the eight show, a door turn begun after that has weighed them (asked by
        // order, not by a clock).
        #expect(served.eventually { served.faults(of: bad) == 8 }, "faults: \(String(describing: served.faults(of: bad)))")
        let turn = served.service.turns
        #expect(served.eventually { served.service.turns >= turn + 2 })
        #expect(served.service.clientCount == 2, "detached at the limit, not past it")
        bad.askForTesting(stop)
        #expect(served.eventually { served.service.departed == 1 && served.service.clientCount == 1 })
        var byte: UInt8 = 0
        #expect(recv(bad.connection!, &byte, 1, Int32(MSG_DONTWAIT)) == 0, "the detached client's connection is still open")
        var buffer = [UInt8](repeating: 0, count: 1024)
        #expect(try buffer.withUnsafeMutableBytes { try peers[0].receive(into: $0) } == 0) // its connection ended
        // The other client's connection carries on.
        let bytes = [UInt8](repeating: 9, count: 1000)
        #expect(try bytes.withUnsafeBytes { try goodSocket.send($0) } == bytes.count)
        var received = 0
        while received < bytes.count {
            let n = try buffer.withUnsafeMutableBytes { try goodPeer.receive(into: $0) }
            guard n > 0 else { break }
            received += n
        }
        #expect(received == bytes.count)
        for s in [goodSocket, goodPeer, peers[0], server] { s.close() }
        _ = sockets
    }

    /// A UDP bind record whose port the client wrote into its slot after reserving another
    /// is refused by every core: datagrams to the port still reach the client holding it.
    @Test func datagramBindOfAnotherClientsPort_isRefused() throws {
        let served = try Served()
        defer { served.stop() }
        let a = try StackClient.attach(door: served.service.door)
        let b = try StackClient.attach(door: served.service.door)
        let owner = DatagramSocket(client: a)
        try owner.bind(Endpoint(IPv4Address(0), 7430))
        owner.setReceiveTimeout(200_000_000)
        let thief = DatagramSocket(client: b)
        try thief.bind(Endpoint(IPv4Address(0), 7431))
        thief.setReceiveTimeout(200_000_000)
        let slot = try #require(b.sockets.namedSlots().first { $0.kind == .datagram }?.slot)
        b.sockets.words(slot).storeBytes(of: UInt16(7430), toByteOffset: MemoryLayout<netmp_datagram_slot>.offset(of: \netmp_datagram_slot.port)!,
                                         as: UInt16.self)
        b.askForTesting(Request(.datagramBind, SocketHandle(slot: slot, generation: b.sockets.generationOf(slot))))
        let sender = DatagramSocket(stack: served.pair.b)
        var buffer = [UInt8](repeating: 0, count: 64)
        var reached = false
        for _ in 0..<20 where !reached { // the first datagrams may wait for ARP
            _ = try [UInt8](repeating: 1, count: 8).withUnsafeBytes { try sender.send($0, to: Endpoint(StackPair.addressA, 7430)) }
            reached = (try? buffer.withUnsafeMutableBytes { try owner.receive(into: $0) }) != nil
        }
        #expect(reached, "datagrams to 7430 no longer reach the client holding it")
        #expect(throws: SocketError.self) { try buffer.withUnsafeMutableBytes { try thief.receive(into: $0) } }
    }

    /// No stack at a door: the error that makes the library start a stack of its own.
    @Test func noStack_isSaid() {
        #expect(throws: AttachError.noStack(errno: ECONNREFUSED)) {
            _ = try StackClient.attach(door: "netmp-test/nobody/\(getpid())")
        }
    }

    /// A poller of an attached client's socket is woken by the core through the bell the
    /// stack put into its placeholder, named at its first poll.
    @Test func doorbell_ringsTheStacksBell() throws {
        let served = try Served()
        defer { served.stop() }
        let placeholder = netmp_placeholder(1)
        try #require(placeholder >= 0)
        defer { close(placeholder) }
        let (client, socket, accepted, server) = try served.attachedConnection(port: 7300)
        socket.channel.doorbell.enter(through: placeholder) // names the placeholder to the stack
        // The number in the client's memory now says another eventfd: the cores must not
        // ring a descriptor the client wrote, only the bell the stack made.
        let decoy = netmp_eventfd()
        defer { close(decoy) }
        socket.channel.doorbell.fd = decoy
        var one: UInt8 = 7
        _ = try withUnsafeBytes(of: &one) { try accepted.send($0) }
        var ready = [pollfd(fd: placeholder, events: Int16(POLLIN), revents: 0), pollfd(fd: decoy, events: Int16(POLLIN), revents: 0)]
        #expect(poll(&ready, 1, 5_000) == 1)
        #expect(poll(&ready[1], 1, 0) == 0)
        socket.channel.doorbell.standInPlaceholders(common: client.commonBell)
        socket.channel.doorbell.leave(rung: true, through: placeholder)
        #expect(poll(&ready, 1, 0) == 0) // taken out through the placeholder
        for s in [socket, accepted, server] { s.close() }
    }

    /// A client whose connection closes (its process ended) has its sockets closed by the
    /// stack: a connection with nothing unread ends with a FIN after what was written, one
    /// with unread data is reset, its listener and its ports go.
    @Test func clientGone_stackClosesWhatItHeld() throws {
        let served = try Served()
        defer { served.stop() }
        let (client, server, sockets, peers) = try served.attachedConnections(2, port: 7400)
        let (writer, unread) = (sockets[0], sockets[1])
        let (fromWriter, toUnread) = (peers[0], peers[1])
        let listener = StreamSocket(client: client)
        try listener.bind(Endpoint(IPv4Address(0), 7401))
        try listener.listen()
        let bytes = [UInt8](repeating: 5, count: 100_000)
        #expect(try bytes.withUnsafeBytes { try writer.send($0) } == bytes.count)
        #expect(try bytes.withUnsafeBytes { try toUnread.send($0) } == bytes.count)
        #expect(served.eventually { unread.channel.receive.readable > 0 })

        close(client.connection!) // the program ended without a close

        var received = 0
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try fromWriter.receive(into: $0) }
            if n == 0 { break }
            received += n
        }
        #expect(received == bytes.count) // everything written, then the FIN
        #expect(throws: SocketError(ECONNRESET)) {
            for _ in 0..<100 {
                _ = try buffer.withUnsafeMutableBytes { try toUnread.receive(into: $0) }
                usleep(10_000)
            }
        }
        #expect(served.eventually { served.service.departed == 1 && served.service.clientCount == 0 })
        // The port the gone client listened on is free for another.
        let again = StreamSocket(stack: served.pair.a)
        try again.bind(Endpoint(IPv4Address(0), 7401))
        for s in [again, fromWriter, toUnread, server] { s.close() }
    }

    /// A program that connects to the door and says nothing holds up no other: the next
    /// attaches at once, and the silent one is refused (EPROTO) after a while; a hello of
    /// another version is refused at once.
    @Test func silentOrForeignConnection_holdsUpNoOne() throws {
        let served = try Served()
        defer { served.stop() }
        let silent = netmp_attach_connect(served.service.door)
        #expect(silent >= 0)
        defer { close(silent) }
        let client = try StackClient.attach(door: served.service.door)
        #expect(client.connection != nil)
        // Held up by the silent one, the attach would end only after the door's hello
        // wait, when the silent one has its refusal. Asked by order, not by a clock, so a
        // loaded (sanitized) run cannot fail it.
        var waiting = pollfd(fd: silent, events: Int16(POLLIN), revents: 0)
        #expect(poll(&waiting, 1, 0) == 0)

        let foreign = netmp_attach_connect(served.service.door)
        defer { close(foreign) }
        var hello = netmp_attach_hello(version: 99, request: UInt32(NETMP_HELLO_ATTACH), client: 0, process: 0)
        #expect(netmp_message_send(foreign, &hello, Int32(MemoryLayout<netmp_attach_hello>.size), nil, 0) > 0)
        for fd in [foreign, silent] {
            var reply = netmp_attach_reply()
            var count: Int32 = 0
            let received = netmp_message_receive(fd, &reply, Int32(MemoryLayout<netmp_attach_reply>.size), nil, 0, &count)
            #expect(received == MemoryLayout<netmp_attach_reply>.size && reply.error == EPROTO)
        }
    }

    /// A client's second process (a forked child that joined over a connection of its
    /// own) ends: the socket only it held closes (its peer sees the end), the one both
    /// held stays open, and its number is free again.
    @Test func joinedProcessGone_closesWhatOnlyItHeld() throws {
        let served = try Served()
        defer { served.stop() }
        let (client, server, sockets, peers) = try served.attachedConnections(2, port: 7500)
        let (onlyChild, both) = (sockets[0], sockets[1])
        let number = try #require(client.numberForChild())
        #expect(number == 1)
        let slots = [onlyChild, both].map { $0.channel.doorbell.slot! }
        for slot in slots { client.sockets.addHolder(number, to: slot) }
        #expect(client.sockets.dropHolder(client.process, from: slots[0]) == (held: false, othersHold: true))
        client.sockets.addHolder(client.process, to: slots[1])
        _ = client.sockets.dropHolder(client.process, from: slots[0])
        _ = Unmanaged.passRetained(onlyChild) // the parent closed its copy: its object is kept, never closed

        let child = netmp_attach_connect(served.service.door)
        var hello = netmp_attach_hello(version: UInt32(NETMP_ATTACH_VERSION), request: UInt32(NETMP_HELLO_JOIN), client: client.id, process: number)
        #expect(netmp_message_send(child, &hello, Int32(MemoryLayout<netmp_attach_hello>.size), nil, 0) > 0)
        #expect(served.eventually { served.service.joined == 1 })
        close(child) // the child ended

        #expect(served.eventually { served.service.processesGone == 1 })
        var byte: UInt8 = 0
        // The peer of the socket only the child held reads the end; the other stays open.
        #expect(try withUnsafeMutableBytes(of: &byte) { try peers[0].receive(into: $0) } == 0)
        peers[1].nonBlocking = true
        #expect(throws: SocketError(EAGAIN)) { _ = try withUnsafeMutableBytes(of: &byte) { try peers[1].receive(into: $0) } }
        #expect(!client.sockets.processNumberTaken(number) && served.service.clientCount == 1)
        for s in [both, server] + peers { s.close() }
    }

    /// The inetd pattern: the parent closes its descriptor of a connection right after the
    /// fork (its object stays, as the shim keeps it while another process holds the
    /// socket) and the child ends without closing. The stack closes the connection and
    /// lets go of the hold the application's view had, so its slot comes back; before, it
    /// stayed taken for the client's life, one per connection served.
    @Test func lastHolderGoneWithoutClose_slotComesBack() throws {
        let served = try Served()
        defer { served.stop() }
        let (client, server, sockets, peers) = try served.attachedConnections(1, port: 7660)
        let slot = sockets[0].channel.doorbell.slot!
        client.sockets.addHolder(client.process, to: slot)
        let number = try #require(client.numberForChild())
        client.sockets.addHolder(number, to: slot)
        #expect(client.sockets.dropHolder(client.process, from: slot) == (held: true, othersHold: true))
        _ = Unmanaged.passRetained(sockets[0]) // the parent's object, kept and never closed
        let child = netmp_attach_connect(served.service.door)
        var hello = netmp_attach_hello(version: UInt32(NETMP_ATTACH_VERSION), request: UInt32(NETMP_HELLO_JOIN), client: client.id, process: number)
        #expect(netmp_message_send(child, &hello, Int32(MemoryLayout<netmp_attach_hello>.size), nil, 0) > 0)
        #expect(served.eventually { served.service.joined == 1 })
        peers[0].close() // the peer ends first: no TIME-WAIT holds the core's view
        #expect(client.sockets.slotsTaken == 1)
        close(child) // the child ends without closing
        #expect(served.eventually { served.service.processesGone == 1 })
        #expect(served.eventually { client.sockets.slotsTaken == 0 }, "slots still taken: \(client.sockets.slotsTaken)")
        server.close()
    }

    /// A process ends holding sockets it never connected or listened on (a fresh one, a
    /// bound one, one bound and refused, which the next call moved to a fresh socket on
    /// the same doorbell), a listener and a connection it bound first: their slots come
    /// back and the ports their binds took are free again, as Linux closes a dead process's
    /// sockets. The parent's own fresh socket stays.
    @Test func freshSocketsOfGoneProcess_slotsAndPortsComeBack() throws {
        let served = try Served()
        defer { served.stop() }
        let client = try StackClient.attach(door: served.service.door)
        let number = try #require(client.numberForChild())
        let unbound = StreamSocket(client: client)
        let bound = StreamSocket(client: client)
        try bound.bind(Endpoint(IPv4Address(0), 7670))
        let refused = StreamSocket(client: client)
        try refused.bind(Endpoint(IPv4Address(0), 7671))
        #expect(throws: SocketError(ECONNREFUSED)) { try refused.connect(to: Endpoint(StackPair.addressB, 7672)) }
        let retried = refused.attemptAgain() // what the program's next connect or bind runs on
        let listening = StreamSocket(client: client)
        try listening.bind(Endpoint(IPv4Address(0), 7673))
        try listening.listen(backlog: 4)
        let server = try served.pair.listenOnB(port: 7675)
        let connection = StreamSocket(client: client)
        try connection.bind(Endpoint(IPv4Address(0), 7674))
        try connection.connect(to: Endpoint(StackPair.addressB, 7675))
        let peer = try server.accept()
        peer.close() // the peer ends first: no TIME-WAIT holds the core's view or the port
        #expect(served.eventually { connection.readiness.contains(.readHangUp) }, "the peer's FIN did not arrive")
        for socket in [unbound, bound, retried, listening, connection] {
            client.sockets.addHolder(number, to: socket.channel.doorbell.slot!) // the child's, as its shim claims them
            _ = Unmanaged.passRetained(socket) // the child's objects, never closed
        }
        let stays = StreamSocket(client: client)
        client.sockets.addHolder(client.process, to: stays.channel.doorbell.slot!)
        #expect(served.eventually { client.sockets.slotsTaken == 8 }, "slots taken: \(client.sockets.slotsTaken)")

        let child = netmp_attach_connect(served.service.door)
        var hello = netmp_attach_hello(version: UInt32(NETMP_ATTACH_VERSION), request: UInt32(NETMP_HELLO_JOIN), client: client.id, process: number)
        #expect(netmp_message_send(child, &hello, Int32(MemoryLayout<netmp_attach_hello>.size), nil, 0) > 0)
        #expect(served.eventually { served.service.joined == 1 })
        close(child) // the child ends without closing
        #expect(served.eventually { served.service.processesGone == 1 })
        #expect(served.eventually { client.sockets.slotsTaken == 1 }, "slots still taken: \(client.sockets.slotsTaken)")
        let other = try StackClient.attach(door: served.service.door)
        for port: UInt16 in [7670, 7671, 7673, 7674] {
            let again = StreamSocket(client: other)
            #expect(throws: Never.self, "port \(port)") { try again.bind(Endpoint(IPv4Address(0), port)) }
            again.close()
        }
        stays.close()
        server.close()
    }

    /// A process exec'd a new program that kept one of its two connections: over the
    /// process's own connection it resumes (NETMP_HELLO_RESUME), naming what it kept. The
    /// other connection closes (its peer reads the end), the client and process numbers
    /// stay, and the kept connection, viewed anew through its slot, moves data both ways.
    @Test func resumeAfterExec_keepsWhatItNames_closesTheRest() throws {
        let served = try Served()
        defer { served.stop() }
        let (client, server, sockets, peers) = try served.attachedConnections(2, port: 7650)
        let slots = sockets.map { $0.channel.doorbell.slot! }
        for slot in slots { client.sockets.addHolder(client.process, to: slot) }
        let (handle, tuple, connecting) = try #require(sockets[0].inheritable)
        #expect(!connecting)
        // The old image vanishes without closing anything (exec runs no destructor): its
        // objects are kept alive here, never released, as the exec leaves them.
        for socket in sockets { _ = Unmanaged.passRetained(socket) }
        // The new image has the same connection and names socket (copies here, as the
        // old client still holds its numbers in this process).
        let connection = netmp_copy_descriptor(try #require(client.connection), 1)
        let names = netmp_copy_descriptor(try #require(client.names), 1)
        let resumed = try StackClient.resume(connection: connection, names: names, door: nil, keeping: [slots[0]])
        #expect(served.eventually { served.service.resumed == 1 })
        #expect(resumed.id == client.id && resumed.process == client.process)
        var byte: UInt8 = 0
        #expect(try withUnsafeMutableBytes(of: &byte) { try peers[1].receive(into: $0) } == 0, "the connection not kept ended")
        let kept = try #require(StreamSocket.inherited(client: resumed, handle: handle, tuple: tuple, family: .ipv4))
        #expect(try kept.peerAddress() == Endpoint(StackPair.addressB, 7650))
        let message: [UInt8] = Array("after exec".utf8)
        #expect(try message.withUnsafeBytes { try kept.send($0) } == message.count)
        var got = [UInt8](repeating: 0, count: 32)
        let n = try got.withUnsafeMutableBytes { try peers[0].receive(into: $0) }
        #expect(Array(got.prefix(n)) == message)
        #expect(try message.withUnsafeBytes { try peers[0].send($0) } == message.count)
        kept.setTimeouts(receive: 5_000_000_000)
        let back = try got.withUnsafeMutableBytes { try kept.receive(into: $0) }
        #expect(Array(got.prefix(back)) == message)
        kept.close()
        #expect(try withUnsafeMutableBytes(of: &byte) { try peers[0].receive(into: $0) } == 0, "the kept connection's close")
        for s in [server] + peers { s.close() }
    }

    /// The stack's process ends (here: `stackEnded`, what the library's watcher calls when
    /// the connection hangs up): a reader blocked on a connection gets ECONNRESET, a
    /// blocked accept and a blocked UDP receive get ENETDOWN, a poller is woken, and new
    /// calls fail at once with ENETDOWN.
    @Test func stackEnded_everyCallFailsAtOnce() throws {
        let served = try Served()
        defer { served.stop() }
        let placeholder = netmp_placeholder(1)
        try #require(placeholder >= 0)
        defer { close(placeholder) }
        let (client, connection, peer, server) = try served.attachedConnection(port: 7600)
        let listener = StreamSocket(client: client)
        try listener.listen()
        let udp = DatagramSocket(client: client)
        try udp.bind(Endpoint(IPv4Address(0), 7601))
        connection.channel.doorbell.enter(through: placeholder)

        let outcomes = Outcomes()
        let joins = [
            spawnBounded {
                var byte: UInt8 = 0
                do { _ = try withUnsafeMutableBytes(of: &byte) { try connection.receive(into: $0) } } catch { outcomes.add("recv", (error as? SocketError)?.errno ?? -1) }
            },
            spawnBounded { do { _ = try listener.accept() } catch { outcomes.add("accept", (error as? SocketError)?.errno ?? -1) } },
            spawnBounded {
                var buffer = [UInt8](repeating: 0, count: 64)
                do { _ = try buffer.withUnsafeMutableBytes { try udp.receive(into: $0) } } catch { outcomes.add("udp", (error as? SocketError)?.errno ?? -1) }
            },
        ]
        usleep(100_000) // all three asleep
        client.stackEnded()
        for join in joins { #expect(join(10)) }
        #expect(outcomes.all == ["accept": ENETDOWN, "recv": ECONNRESET, "udp": ENETDOWN])
        var ready = pollfd(fd: placeholder, events: Int16(POLLIN), revents: 0)
        #expect(poll(&ready, 1, 1_000) == 1) // the common bell: the stack's bells are gone with it
        connection.channel.doorbell.leave(rung: true, through: placeholder)
        #expect(throws: SocketError(ENETDOWN)) { try StreamSocket(client: client).connect(to: Endpoint(StackPair.addressB, 7600)) }
        #expect(throws: SocketError(ENETDOWN)) { try StreamSocket(client: client).bind(Endpoint(IPv4Address(0), 7602)) }
        for s in [connection, listener, peer, server] { s.close() }
        udp.close()
    }

    /// The only process holding a listener ends while a connection waits in its queue:
    /// the listener closes and the waiting connection is reset, as Linux resets a closed
    /// listener's queue.
    @Test func listenerOfGoneProcess_waitingConnectionIsReset() throws {
        let served = try Served()
        defer { served.stop() }
        let client = try StackClient.attach(door: served.service.door)
        let listener = StreamSocket(client: client)
        try listener.bind(Endpoint(IPv4Address(0), 7700))
        try listener.listen()
        let fromB = StreamSocket(stack: served.pair.b)
        try fromB.connect(to: Endpoint(StackPair.addressA, 7700))
        #expect(served.eventually { listener.listenQueueDepth == 1 })
        let number = try #require(client.numberForChild())
        let slot = listener.channel.doorbell.slot!
        client.sockets.addHolder(number, to: slot)
        let child = netmp_attach_connect(served.service.door)
        var hello = netmp_attach_hello(version: UInt32(NETMP_ATTACH_VERSION), request: UInt32(NETMP_HELLO_JOIN), client: client.id, process: number)
        #expect(netmp_message_send(child, &hello, Int32(MemoryLayout<netmp_attach_hello>.size), nil, 0) > 0)
        #expect(served.eventually { served.service.joined == 1 })
        close(child)
        #expect(served.eventually { served.service.processesGone == 1 })
        var byte: UInt8 = 0
        fromB.setTimeouts(receive: 5_000_000_000, send: 0) // EAGAIN, not a hang, if it stayed open
        #expect(throws: SocketError(ECONNRESET)) { _ = try withUnsafeMutableBytes(of: &byte) { try fromB.receive(into: $0) } }
        fromB.close()
    }

    final class Outcomes: @unchecked Sendable {
        let lock = TestMutex()
        var values: [String: Int32] = [:]
        func add(_ name: String, _ errno: Int32) { lock.locked { values[name] = errno } }
        var all: [String: Int32] { lock.locked { values } }
    }
}

/// A mutex for the test's bookkeeping.
final class TestMutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}

extension StackServiceTests {
    /// A thousand programs attach, each binds a UDP socket and makes a connection it never
    /// closes, and ends (its connection hangs up): the stack closes what each held and
    /// lets its region go, so its descriptors, mappings, clients and ports are back where
    /// they were after the first.
    @Test func thousandClientsAttachAndEnd_stackBackWhereItStarted() throws {
        let served = try Served()
        defer { served.stop() }
        let server = try served.pair.listenOnB(port: 7460)
        defer { server.close() }
        func program() throws {
            let client = try StackClient.attach(door: served.service.door)
            let udp = DatagramSocket(client: client)
            try udp.bind(Endpoint(IPv4Address(0), 0))
            let stream = StreamSocket(client: client)
            let placeholder = netmp_placeholder(1)
            stream.channel.doorbell.standInPlaceholders(common: client.commonBell)
            try stream.connect(to: Endpoint(StackPair.addressB, 7460))
            stream.channel.doorbell.enter(through: placeholder) // its name goes to core 0, as a poller's would
            stream.channel.doorbell.leave(rung: true, through: placeholder)
            let peer = try server.accept()
            client.hangUp()
            close(placeholder)
            peer.close()
        }
        // What the stack keeps per client: its region (a memfd, mapped), the copies of its
        // doorbells' eventfds, and its place on each core (core 0's holds its names
        // socket). Only this suite, serialized, makes regions in this process.
        func regions() -> (descriptors: Int, mappings: Int) {
            (linksNaming("memfd:netmp-region"),
             (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8))?.split(separator: "\n")
                .filter { $0.contains("memfd:netmp-region") }.count ?? -1)
        }
        // The doorbell copies are counted from before the first: a departed client's copies
        // close when the last core's view of it goes, a moment after it departs, so the
        // count just after the first may still include its copy.
        let copiesBefore = DoorbellDescriptors.held
        try program()
        #expect(served.eventually { served.service.departed == 1 })
        let regionsBefore = regions()
        for _ in 0..<1000 { try program() }
        #expect(served.eventually { served.service.departed == 1001 && served.service.clientCount == 0 })
        // No more than after the first: that count may still hold the first client's region,
        // which the stack lets go a moment after the client departs (seen under TSan).
        #expect(served.eventually { regions().descriptors <= regionsBefore.descriptors && regions().mappings <= regionsBefore.mappings },
                "regions: \(regions()), \(regionsBefore) after the first")
        #expect(served.eventually { DoorbellDescriptors.held <= copiesBefore },
                "doorbell copies: \(DoorbellDescriptors.held), \(copiesBefore) before the first")
        #expect(served.pair.a.clientsServed == Array(repeating: 1, count: served.pair.a.cores)) // the primary alone
        #expect(served.eventually { served.pair.a.statsSnapshot()?.clients.isEmpty == true })
        // Every port the programs held is free again: the ephemeral range is not used up.
        let again = DatagramSocket(stack: served.pair.a)
        try again.bind(Endpoint(IPv4Address(0), 0))
        again.close()
    }
}

/// How many of this process's descriptors link to a name containing `text`.
private func linksNaming(_ text: String) -> Int {
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    var target = [CChar](repeating: 0, count: 256)
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let n = readlink("/proc/self/fd/" + name, &target, target.count - 1)
        if n > 0, String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self).contains(text) { count += 1 }
    }
    return count
}
