import CNetMPChannel
import CNetMPLinux
import Glibc
import NetMPInProcess
import NetMPStack
import NetMPStackProcess
import NetMPTCP
import NetMPWire
import Synchronization
import Testing

/// A socket table in a memfd, mapped twice at different addresses, as a client process and
/// the stack process will each map it (docs/STACK-SERVICE.md, step 3): whatever one mapping
/// does to a socket, the other sees, because everything in the table is found by offsets
/// and wait words are futexes that are not private (a private futex's key is the address,
/// so a wake through one mapping would miss a sleeper in the other).
@Suite struct SharedSocketTableTests {
    static let capacity = 64 << 10
    static let stride = ClientRegion.streamStride(send: capacity, receive: capacity)

    func mappings() throws -> (client: SocketTable, stack: SocketTable) {
        let client = SocketTable(capacity: 16, stride: Self.stride, shared: true)
        let stack = try SocketTable(mapping: try #require(client.memory.descriptor))
        return (client, stack)
    }

    @Test func wordsAndRings_seenThroughBothMappings() throws {
        let (client, stack) = try mappings()
        let mine = try #require(SocketChannel(in: client, sendCapacity: Self.capacity, receiveCapacity: Self.capacity))
        client.hold(mine.lease!.slot) // for the stack's view, which adopts it
        let theirs = try #require(SocketChannel(adopting: mine.lease!.slot, in: stack))
        #expect(mine.slot != theirs.slot && mine.send.storage.block != theirs.send.storage.block) // two addresses

        // The owner's words, published through its mapping, read through the other.
        let tuple = FourTuple(local: Endpoint(IPv4Address(10, 77, 0, 2), 40000), remote: Endpoint(IPv4Address(10, 77, 0, 1), 5201))
        #expect(mine.owner == -1)
        theirs.attach(to: 1)
        theirs.publishTuple(tuple)
        theirs.publish([.attached, .established])
        #expect(mine.owner == 1 && mine.status.isSuperset(of: [.attached, .established]) && mine.publishedTuple == tuple)
        #expect(mine.raise(.outputRequested) && theirs.clear(.outputRequested))

        // Send ring: the client writes, the stack reads and releases.
        let bytes = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(bytes.withUnsafeBytes { mine.send.write($0) } == 3000)
        #expect(theirs.send.held == 3000)
        var copied = [UInt8](repeating: 0, count: 3000)
        copied.withUnsafeMutableBytes { theirs.send.copy(from: 0, count: 3000, into: $0) }
        #expect(copied == bytes)
        theirs.send.release(3000)
        #expect(mine.send.free == Self.capacity)

        // Receive ring: the stack writes and publishes, the client reads.
        bytes.withUnsafeBytes { theirs.receive.write($0, at: 0) }
        theirs.receive.publish(3000)
        var read = [UInt8](repeating: 0, count: 4000)
        #expect(read.withUnsafeMutableBytes { mine.receive.read(into: $0) } == 3000)
        #expect(Array(read[0..<3000]) == bytes && theirs.receive.consumedPosition == 3000)
        #expect(theirs.send.capacity == Self.capacity && theirs.receive.capacity == Self.capacity)

        // The doorbell: the application's eventfd, rung by the stack's view while polled.
        let fd = netmp_eventfd()
        try #require(fd >= 0)
        defer { close(fd) }
        mine.doorbell.fd = fd
        #expect(theirs.doorbell.slot == mine.doorbell.slot && theirs.doorbell.fd == fd)
        var count: UInt64 = 0
        theirs.doorbell.ring() // nobody polls: no write
        #expect(Glibc.read(fd, &count, 8) == -1)
        mine.doorbell.enter()
        theirs.publish(.closed)
        #expect(Glibc.read(fd, &count, 8) == 8 && count >= 1 && mine.doorbell.rings >= 1)
        mine.doorbell.leave(rung: true)
    }

    /// The slot is freed when the last view goes, through whichever mapping: the lessor's
    /// going first leaves the other side's view working.
    @Test func slotOutlivesTheLessor_freedWithTheLastView() throws {
        let (client, stack) = try mappings()
        var mine = SocketChannel(in: client, sendCapacity: Self.capacity, receiveCapacity: Self.capacity)
        try #require(mine != nil)
        let slot = mine!.lease!.slot
        client.hold(slot)
        var theirs = SocketChannel(adopting: slot, in: stack)
        try #require(theirs != nil)
        mine!.publish(.established)
        mine = nil
        #expect(client.slotsTaken == 1 && theirs!.status.contains(.established) && theirs!.owner == -1)
        #expect([UInt8](repeating: 1, count: 10).withUnsafeBytes { theirs!.send.write($0) } == 10)
        theirs = nil
        #expect(client.slotsTaken == 0 && stack.slotsTaken == 0)
        #expect(stack.adopt(slot) == nil) // no hold to adopt on a free slot
        let again = try #require(SocketChannel(in: stack, sendCapacity: Self.capacity, receiveCapacity: Self.capacity))
        #expect(again.lease!.slot == slot && again.status.isEmpty && again.send.free == Self.capacity)
    }

    /// A reader asleep on its receive ring's wait word through one mapping is woken by the
    /// owner publishing through the other.
    @Test func sleepingReader_wokenThroughTheOtherMapping() throws {
        let (client, stack) = try mappings()
        let mine = try #require(SocketChannel(in: client, sendCapacity: Self.capacity, receiveCapacity: Self.capacity))
        client.hold(mine.lease!.slot) // for the stack's view, which adopts it
        let theirs = try #require(SocketChannel(adopting: mine.lease!.slot, in: stack))
        let got = Atomic<Int>(0)
        let join = spawnBounded {
            var buffer = [UInt8](repeating: 0, count: 16)
            // A long timeout: a wake lost between the mappings fails the join below.
            if mine.receive.readers.wait(timeout: 20_000_000_000, until: { mine.receive.readable > 0 }) {
                got.store(buffer.withUnsafeMutableBytes { mine.receive.read(into: $0) }, ordering: .releasing)
            }
        }
        // Wait until the reader counts itself a sleeper (the waiters word of the C layout,
        // read through the stack's mapping), so the wake must cross the mappings.
        let waiters = theirs.receive.storage.block
            + MemoryLayout<netmp_receive_ring>.offset(of: \netmp_receive_ring.readers)! + MemoryLayout<UInt32>.size
        var looked = 0
        while waiters.load(as: UInt32.self) == 0 && looked < 5_000 { usleep(1_000); looked += 1 }
        #expect(waiters.load(as: UInt32.self) == 1)
        usleep(20_000) // past the waiter's spins, into the futex
        [UInt8](repeating: 9, count: 5).withUnsafeBytes { theirs.receive.write($0, at: 0) }
        theirs.receive.publish(5)
        theirs.receive.readers.wakeAll()
        #expect(join(5))
        #expect(got.load(ordering: .acquiring) == 5)
    }

    /// Both mappings take slots from one free stack: a slot leased through one is not
    /// handed out through the other, and comes back to both when let go.
    @Test func slots_takenAndFreedThroughEitherMapping() throws {
        let (client, stack) = try mappings()
        var mine = SocketChannel(in: client, sendCapacity: Self.capacity, receiveCapacity: Self.capacity)
        try #require(mine != nil)
        let theirs = try #require(SocketChannel(in: stack, sendCapacity: Self.capacity, receiveCapacity: Self.capacity))
        #expect(mine!.lease!.slot != theirs.lease!.slot)
        #expect(client.slotsTaken == 2 && stack.slotsTaken == 2)
        let freed = mine!.lease!.slot
        mine = nil
        #expect(client.slotsTaken == 1 && stack.slotsTaken == 1)
        let again = try #require(SocketChannel(in: stack, sendCapacity: Self.capacity, receiveCapacity: Self.capacity))
        #expect(again.lease!.slot == freed && again.status.isEmpty)
    }

    /// A listener's accept queues in a slot of their own: each core's view (through the
    /// stack's mapping) queues what it accepted, the application's view takes it, and the
    /// slot goes back when every view has gone.
    @Test func listenerSlot_coresQueue_applicationAccepts() throws {
        let (client, stack) = try mappings()
        let socket = try #require(SocketChannel(in: client, sendCapacity: Self.capacity, receiveCapacity: Self.capacity))
        var mine = ListenQueue(in: client, port: 80, backlog: 3, cores: 2, doorbell: socket.doorbell)
        try #require(mine != nil)
        let name = try #require(client.register(kind: .listener, in: mine!.lease))
        client.hold(name.slot)
        client.hold(name.slot)
        var cores: [ListenQueue]? = try (0..<2).map { _ in
            try #require(ListenQueue(adopting: name.slot, in: stack, port: 80))
        }
        func accepted(_ n: Int, core: Int) -> AcceptedConnection {
            AcceptedConnection(handle: SocketHandle(slot: UInt32(n), generation: 1),
                               tuple: FourTuple(local: Endpoint(IPv4Address(10, 77, 0, 2), 80),
                                                remote: Endpoint(IPv4Address(10, 77, 0, 1), UInt16(1000 + n))), core: core)
        }
        #expect(cores![0].push(accepted(1, core: 0)) && cores![1].push(accepted(2, core: 1)) && cores![1].push(accepted(3, core: 1)))
        #expect(!cores![0].push(accepted(4, core: 0))) // the backlog is 3 over both cores
        #expect(mine!.pending == 3)
        var got: Set<Int> = []
        while let connection = mine!.pop() { got.insert(Int(connection.handle.slot)) }
        #expect(got == [1, 2, 3] && mine!.pending == 0 && cores![0].pending == 0)
        #expect(client.release(name))
        mine = nil
        #expect(stack.slotsTaken == 2) // the listener's, held by the cores' views, and the socket's
        cores = nil
        #expect(stack.slotsTaken == 1)
    }

    /// A UDP socket's slot: each core's view (through the stack's mapping) finds the port,
    /// home core and queues from the slot's words and queues what it received; the
    /// application reads it, and its queued sends reach the home core's view.
    @Test func datagramSlot_coresDeliver_applicationReceives() throws {
        let client = SocketTable(capacity: 4, stride: ClientRegion.streamStride(send: 1 << 20, receive: 1 << 20), shared: true)
        let stack = try SocketTable(mapping: try #require(client.memory.descriptor))
        let mine = try #require(DatagramChannel(in: client, port: 5353, cores: 2, homeCore: 1))
        let name = try #require(client.register(kind: .datagram, in: mine.lease))
        client.hold(name.slot)
        let home = try #require(DatagramChannel(adopting: name.slot, in: stack))
        #expect(home.port == 5353 && home.homeCore == 1 && home.queues.count == 2)
        #expect(home.queues[0].storage.capacity == mine.queues[0].storage.capacity)
        let payload: [UInt8] = [1, 2, 3, 4]
        let arrival = DatagramArrival(source: Endpoint(IPv4Address(10, 77, 0, 1), 9), destination: Endpoint(IPv4Address(10, 77, 0, 2), 5353))
        #expect(payload.withUnsafeBytes { home.deliver($0, arrival: arrival, core: 1) })
        var buffer = [UInt8](repeating: 0, count: 16)
        let got = buffer.withUnsafeMutableBytes { mine.receive(into: $0, peek: false) }
        #expect(got?.length == 4 && got?.arrival.source == Endpoint(IPv4Address(10, 77, 0, 1), 9) && Array(buffer[0..<4]) == payload)
        #expect(payload.withUnsafeBytes { mine.outgoing.write($0) } == 4)
        #expect(home.outgoing.held == 4)
    }

    /// A client region's request rings and reply slots through two mappings: a record
    /// sent through the client's reaches the core through the stack's, and the answer
    /// written through the stack's reaches the asker waiting through the client's.
    @Test func requestRingsAndReplies_throughBothMappings() throws {
        let clientRegion = try ClientRegion(capacity: 8, stride: Self.stride, cores: 2, requestCapacity: 16, shared: true)
        let stackRegion = try ClientRegion(mapping: try #require(clientRegion.descriptor))
        #expect(stackRegion.cores == 2 && stackRegion.requestCapacity == 16)
        let send = RequestRing(in: clientRegion, core: 1), take = RequestRing(in: stackRegion, core: 1)
        let askerBoard = ReplyBoard(in: clientRegion), coreBoard = ReplyBoard(in: stackRegion)
        var request = Request(.query, SocketHandle(slot: 3, generation: 4))
        request.reply = askerBoard.take()
        #expect(send.send(request))
        #expect(RequestRing(in: stackRegion, core: 0).receive() == nil) // another core's ring
        let got = try #require(take.receive())
        #expect(got == request)
        let asked = request.reply
        let join = spawnBounded {
            let answer = askerBoard.awaitAnswer(asked) { Array($0) }
            #expect(answer == [7, 7, 7])
        }
        #expect(coreBoard.answer(got.reply) { $0.initializeMemory(as: UInt8.self, repeating: 7); return 3 })
        #expect(join(5))
        // The reply slot is free again, seen through either mapping.
        #expect(coreBoard.answer(got.reply) { _ in 0 } == false)
    }

    /// A core's sleep announcement in a wake page seen through a second, read-only mapping:
    /// each party that finds it writes its eventfd once per sleep, and the line is the
    /// core's alone.
    @Test func coreWake_announcedThroughOneMapping_wokenThroughTheOther() throws {
        let stackPage = try #require(CoreWakePage(cores: 2, shared: true))
        let fd = try #require(stackPage.descriptor)
        let clientPage = try #require(CoreWakePage(mapping: fd, cores: 2))
        #expect(CoreWakePage(mapping: fd, cores: 200) == nil) // the memfd is smaller than that
        let port = MessagePort<Int>(capacity: 4, sleeps: stackPage.sleeps(1))
        let waker = CoreWaker(sleeps: clientPage.sleeps(1), eventfd: port.wakeupDescriptor, page: clientPage)
        let otherBell = netmp_eventfd()
        defer { close(otherBell) }
        let otherClient = CoreWaker(sleeps: clientPage.sleeps(1), eventfd: otherBell, page: clientPage)
        var value: UInt64 = 0
        waker.wakeIfSleeping() // the core is awake: nothing written
        #expect(Glibc.read(port.wakeupDescriptor, &value, 8) == -1)
        for sleep in 1...2 {
            #expect(port.prepareToSleep())
            #expect(clientPage.sleeps(1).pointee.load(ordering: .acquiring) == UInt64(2 * sleep - 1))
            #expect(clientPage.sleeps(0).pointee.load(ordering: .acquiring) == 0) // another core's line
            waker.wakeIfSleeping()
            waker.wakeIfSleeping() // rung for this sleep already: one write
            otherClient.wakeIfSleeping() // another party rings its own bell
            #expect(Glibc.read(port.wakeupDescriptor, &value, 8) == 8 && value == 1)
            #expect(Glibc.read(otherBell, &value, 8) == 8 && value == 1)
            // The senders only read the line: the core's sleep still shows until it wakes.
            #expect(stackPage.sleeps(1).pointee.load(ordering: .acquiring) == UInt64(2 * sleep - 1))
            port.awake()
            #expect(stackPage.sleeps(1).pointee.load(ordering: .acquiring) == UInt64(2 * sleep))
        }
        // Nothing can write the page but the stack's own mapping: not a new mapping, not the
        // client's made writable, not write(2).
        #expect(mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM)
        #expect(mprotect(UnsafeMutableRawPointer(clientPage.sleeps(0)), 4096, PROT_READ | PROT_WRITE) == -1 && errno == EACCES)
        var zero: UInt64 = 0
        #expect(pwrite(fd, &zero, 8, 0) == -1 && errno == EPERM)
    }

    /// What is not a table is refused, not mapped.
    @Test func mappingSomethingElse_refused() throws {
        let fd = netmp_memfd("not-a-table")
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(ftruncate(fd, 1 << 20) == 0)
        #expect(throws: ClientRegion.MemoryError.notARegion) { try SocketTable(mapping: fd) }
    }
}
