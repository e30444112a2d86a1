import CNetMPChannel
import Glibc
import NetMPInProcess
import NetMPStack
import NetMPStackProcess
import NetMPTCP
import NetMPWire
import Synchronization
import Testing

/// The request ring carries usrreq records from application threads to a core; the socket
/// table resolves the handles they name. Both are shared by many threads, so these run
/// under ThreadSanitizer with the rest of this target.
@Suite struct RequestRingTests {
    @Test func fifo_fullAndEmpty_acrossRounds() {
        let ring = RequestRing(capacity: 4)
        #expect(ring.receive() == nil && !ring.hasRequest)
        for i in 0..<4 { #expect(ring.send(Request(.output, SocketHandle(slot: UInt32(i), generation: 7)))) }
        #expect(!ring.send(Request(.window, SocketHandle(slot: 9, generation: 0)))) // full
        #expect(ring.hasRequest)
        #expect(ring.drain { _ in } == 4)
        // Many rounds of the ring: every field comes back as it went.
        for i in 0..<40 {
            var request = Request(.connect, SocketHandle(slot: UInt32(i), generation: UInt32(i * 3)))
            request.remote = Endpoint(IPv4Address(10, 77, 0, UInt8(i)), UInt16(1000 + i))
            request.localPort = UInt16(i)
            request.abort = i % 2 == 0
            request.options.keepAliveProbes = UInt32(i + 1)
            #expect(ring.send(request))
            #expect(ring.receive() == request)
        }
    }

    /// The records that set a socket up on every core carry its slot, the port and the
    /// reply slot, and come back as they went.
    @Test func everyCoreRecords_carryPortAndReply() {
        let ring = RequestRing(capacity: 4)
        for kind in [Request.Kind.listen, .stopListening, .datagramBind, .datagramUnbind] {
            var request = Request(kind, SocketHandle(slot: 12, generation: 5))
            request.localPort = 8080
            request.reply = 33
            #expect(ring.send(request))
            #expect(ring.receive() == request)
        }
    }

    /// A group's address lies over the connect options, a port request's families are
    /// flags, and a record keeps nothing of the one that used its place a round before.
    @Test func groupsFamiliesAndLocalError_roundTrip_placeReusedClean() {
        let ring = RequestRing(capacity: 2)
        var join = Request(.datagramJoin, SocketHandle(slot: 3, generation: 4))
        join.remote = Endpoint(IPv6Address("ff02::1:3")!, 0)
        join.reply = 7
        var failed = Request(.datagramLocalError, SocketHandle(slot: 3, generation: 4))
        failed.remote = Endpoint(IPv4Address(10, 77, 0, 9), 53)
        failed.value = 1400
        var reserve = Request(.reservePort, SocketHandle(slot: 0, generation: 0))
        reserve.localPort = 8080
        reserve.families = [.ipv6]
        reserve.datagram = true
        for request in [join, failed, reserve] {
            #expect(ring.send(request))
            let back = ring.receive()
            #expect(back == request)
            #expect(back?.remote == request.remote && back?.families == request.families && back?.value == request.value)
        }
        #expect(reserve.families == [.ipv6] && join.families == .ipv4 && failed.remote.port == 53)
        // The places the IPv6 group and the v6-only port used: an output there reads clean.
        let output = Request(.output, SocketHandle(slot: 8, generation: 1))
        for _ in 0..<2 {
            #expect(ring.send(output))
            let back = ring.receive()
            #expect(back == output && back?.value == 0 && back?.reply == 0 && back?.families == .ipv4)
        }
        // A port request that names no family is no record netmp wrote.
        #expect(ring.send(reserve))
        ring.recordForTesting(1).storeBytes(of: NETMP_REQUEST_FLAG_V6ONLY, toByteOffset: 10, as: UInt16.self) // the flags
        #expect(ring.receive() == nil && ring.malformed == 1)
    }

    /// A record of a kind no version of netmp sends (a client writing garbage into its
    /// ring, once clients are processes) is consumed and counted, and the next one is read.
    @Test func unknownKind_countedAndSkipped() {
        let ring = RequestRing(capacity: 4)
        ring.send(Request(.output, SocketHandle(slot: 1, generation: 1)))
        ring.send(Request(.window, SocketHandle(slot: 2, generation: 1)))
        // Overwrite the first record's kind in place, as a scribbling writer would.
        ring.recordForTesting(0).storeBytes(of: UInt16(999), toByteOffset: 8, as: UInt16.self) // the kind
        #expect(ring.receive() == Request(.window, SocketHandle(slot: 2, generation: 1)))
        #expect(ring.malformed == 1 && ring.receive() == nil)
    }

    /// A set-option record carries its option and value; one naming an option this version
    /// does not know is dropped as malformed, like an unknown kind.
    @Test func setOption_roundTrip_unknownOptionDropped() {
        let ring = RequestRing(capacity: 4)
        var request = Request(.setOption, SocketHandle(slot: 3, generation: 1))
        request.option = .keepAliveIdle
        request.value = 75
        ring.send(request)
        #expect(ring.receive() == request)
        ring.send(request)
        ring.recordForTesting(1).storeBytes(of: UInt32(77), toByteOffset: 56, as: UInt32.self) // option 77
        #expect(ring.receive() == nil && ring.malformed == 1)
    }

    /// The owner applies what a record says to the control block, and refuses values the
    /// application never sends.
    @Test func streamOption_appliesOrRefuses() {
        let tuple = FourTuple(local: Endpoint(IPv4Address(10, 0, 0, 1), 40000), remote: Endpoint(IPv4Address(10, 0, 0, 2), 80))
        var c = Connection.connect(tuple, iss: SequenceNumber(1), now: .zero, configuration: TCPConfiguration())
        #expect(StreamOption.noDelay.apply(1, to: &c, now: .zero) && c.configuration.noDelay)
        #expect(!StreamOption.noDelay.apply(2, to: &c, now: .zero) && c.configuration.noDelay)
        #expect(StreamOption.keepAlive.apply(1, to: &c, now: .zero) && c.configuration.keepAlive)
        #expect(StreamOption.keepAliveIdle.apply(30, to: &c, now: .zero) && c.configuration.keepAliveIdle == .seconds(30))
        #expect(!StreamOption.keepAliveProbes.apply(0, to: &c, now: .zero))
        #expect(StreamOption.keepAliveProbes.apply(4, to: &c, now: .zero) && c.configuration.keepAliveProbes == 4)
        #expect(StreamOption.congestionControl.apply(StreamOption.code(.newReno), to: &c, now: .zero))
        #expect(c.congestion.algorithm == .newReno)
        #expect(!StreamOption.congestionControl.apply(99, to: &c, now: .zero) && c.congestion.algorithm == .newReno)
    }

    /// Many senders, one consumer that sleeps on its port's eventfd as a core does, looking
    /// at the ring between announcing the sleep and polling: every record arrives once,
    /// each sender's in order, and nobody hangs (a lost wakeup would).
    @Test func manySenders_sleepingCore_everyRecordOnceInOrder() {
        let ring = RequestRing(capacity: 256)
        let port = MessagePort<Int>(capacity: 8)
        let senders = 4, perSender = 100_000
        let joins = (0..<senders).map { id in
            spawn {
                for n in 0..<perSender {
                    while !ring.send(Request(.output, SocketHandle(slot: UInt32(id), generation: UInt32(n)))) { sched_yield() }
                    port.wakeIfSleeping()
                    if n % 1000 == 0 { usleep(50) } // let the core go to sleep now and then
                }
            }
        }
        var next = [UInt32](repeating: 0, count: senders)
        var received = 0, disorder = 0
        while received < senders * perSender {
            let n = ring.drain { r in
                if r.handle.generation != next[Int(r.handle.slot)] { disorder += 1 }
                next[Int(r.handle.slot)] = r.handle.generation + 1
            }
            received += n
            guard n == 0, port.prepareToSleep() else { continue }
            if ring.hasRequest { port.stopSleeping(); continue }
            var poller = pollfd(fd: port.wakeupDescriptor, events: Int16(POLLIN), revents: 0)
            let woken = poll(&poller, 1, 10_000) > 0
            if woken { port.awake() } else { port.stopSleeping() }
            #expect(woken || ring.hasRequest || received == senders * perSender, "the core slept through a record")
        }
        joins.forEach { $0() }
        #expect(received == senders * perSender && disorder == 0)
        #expect(ring.receive() == nil)
    }
}

@Suite struct SocketTableTests {
    final class Counter: Sendable { let value = Atomic<Int>(0) }

    @Test func registerResolveRelease_staleAndForgedHandlesFindNothing() {
        let table = SocketTable(capacity: 4)
        let handle = table.register(kind: .stream)!
        #expect(table.resolves(handle, as: .stream))
        #expect(!table.resolves(handle, as: .datagram)) // the wrong kind
        #expect(!table.resolves(SocketHandle(slot: handle.slot, generation: handle.generation &+ 1), as: .stream))
        #expect(!table.resolves(SocketHandle(slot: 3, generation: 0), as: .stream)) // never used
        #expect(!table.resolves(SocketHandle(slot: 4000, generation: 0), as: .stream)) // past the end
        #expect(table.release(handle) && !table.release(handle))
        #expect(!table.resolves(handle, as: .stream))
        // The slot comes back with a new generation: the old handle stays dead.
        let again = table.register(kind: .datagram)!
        #expect(again.slot == handle.slot && again.generation == handle.generation &+ 1)
        #expect(!table.resolves(handle, as: .datagram) && table.resolves(again, as: .datagram))
        #expect(table.inUse == 1)
    }

    @Test func full_thenFreedSlotsServeAgain() {
        let table = SocketTable(capacity: 3)
        let handles = (0..<3).map { _ in table.register(kind: .stream)! }
        #expect(table.register(kind: .stream) == nil)
        #expect(Set(handles.map { $0.slot }) == [0, 1, 2])
        table.release(handles[1])
        #expect(table.register(kind: .stream)?.slot == 1)
        #expect(table.register(kind: .stream) == nil)
    }

    /// Threads register and release at once, each releasing only its own handles (as each
    /// socket's owner core does): no slot is named twice, and every slot comes back.
    @Test func concurrentRegisterAndRelease_noSlotTwice_everySlotBack() {
        let table = SocketTable(capacity: 64)
        let named = Counter()
        let threads = 4, rounds = 20_000
        let joins = (0..<threads).map { _ in
            spawn {
                var mine: [SocketHandle] = []
                for n in 0..<rounds {
                    if let handle = table.register(kind: .stream) {
                        #expect(table.resolves(handle, as: .stream))
                        named.value.add(1, ordering: .relaxed)
                        mine.append(handle)
                    }
                    if mine.count > 8 || n % 3 == 0, !mine.isEmpty {
                        #expect(table.release(mine.removeFirst()))
                    }
                }
                for handle in mine { #expect(table.release(handle)) }
            }
        }
        joins.forEach { $0() }
        #expect(table.inUse == 0 && table.slotsTaken == 0)
        #expect(named.value.load(ordering: .relaxed) > 0)
    }
}

/// Slots that hold a socket's memory: the words and rings of a channel lie in its slot,
/// the slot outlives the name while the rings are in use, and comes back as fresh.
@Suite struct SlotLeaseTests {
    static let stride = ClientRegion.streamStride(send: 64 << 10, receive: 256 << 10)

    @Test func channelInASlot_wordsAndRingsInTheSlot_slotFreedWhenTheLastHolderGoes() {
        let table = SocketTable(capacity: 8, stride: Self.stride)
        var channel: SocketChannel? = SocketChannel(in: table, sendCapacity: 64 << 10, receiveCapacity: 256 << 10)
        let (words, base, slot) = (channel!.lease!.words, channel!.lease!.base, channel!.lease!.slot)
        #expect(channel!.slot == words)
        // The control blocks in the slot's entry, beside the words; the data in the stride.
        #expect(channel!.send.storage.block == words + 128 && channel!.receive.storage.block == words + 256)
        #expect(channel!.send.storage.bytes.baseAddress == base)
        #expect(channel!.receive.storage.bytes.baseAddress == base + (64 << 10))
        #expect(channel!.receive.storage.bytes.baseAddress! + (256 << 10) == base + table.memory.stride)
        let handle = table.register(kind: .stream, in: channel!.lease)!
        #expect(handle.slot == slot && table.slotsTaken == 1)
        // The name goes first (the core's close record); the rings stay while held.
        let send = channel!.send
        channel = nil
        #expect(table.release(handle))
        #expect(!table.resolves(handle, as: .stream) && table.slotsTaken == 1)
        #expect([UInt8](repeating: 7, count: 100).withUnsafeBytes { send.write($0) } == 100)
        _ = consume send
        #expect(table.slotsTaken == 0)
    }

    /// An idle connection's rings cost no page of its stride, in a shared table (a memfd,
    /// where even a read of a page allocates it): both sides make and look at the channel,
    /// and only a byte written reaches the data.
    @Test func idleChannel_touchesNoPageOfItsStride() throws {
        let table = SocketTable(capacity: 4, stride: Self.stride, shared: true)
        let channel = SocketChannel(in: table, sendCapacity: 64 << 10, receiveCapacity: 256 << 10)!
        let handle = table.register(kind: .stream, in: channel.lease)!
        table.hold(handle.slot)
        let view = SocketChannel(adopting: handle.slot, in: table)!
        view.publish(.established)
        #expect(channel.send.free == 64 << 10 && channel.receive.readable == 0 && view.send.free == 64 << 10)
        let base = channel.lease!.base
        func resident() -> Int {
            var pages = [UInt8](repeating: 0, count: table.memory.stride / ClientRegion.pageSize)
            #expect(mincore(base, table.memory.stride, &pages) == 0)
            return pages.reduce(0) { $0 + Int($1 & 1) }
        }
        #expect(resident() == 0)
        #expect([UInt8](repeating: 1, count: 10).withUnsafeBytes { channel.send.write($0) } == 10)
        #expect(resident() == 1)
    }

    /// A reused slot is a fresh one: zero words and control blocks, whether its rings wrote
    /// little (pages kept) or much (pages given back); the old handle names nothing.
    @Test func reusedSlot_zeroAsFresh_lightAndHeavy() {
        let table = SocketTable(capacity: 1, stride: Self.stride)
        for written in [1_000, 200 << 10] {
            var first: SocketChannel? = SocketChannel(in: table, sendCapacity: 64 << 10, receiveCapacity: 256 << 10)!
            let handle = table.register(kind: .stream, in: first!.lease)!
            let bytes = [UInt8](repeating: 0xAB, count: written)
            let receive = first!.receive
            var offset = 0
            while offset < written {
                let n = min(written - offset, 32 << 10)
                bytes.withUnsafeBytes { receive.write(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + n)]), at: 0) }
                receive.publish(n)
                var sink = [UInt8](repeating: 0, count: n)
                #expect(sink.withUnsafeMutableBytes { receive.read(into: $0) } == n)
                offset += n
            }
            _ = consume receive
            first!.publish(.established)
            table.release(handle)
            first = nil
            #expect(table.slotsTaken == 0)
            let second = SocketChannel(in: table, sendCapacity: 64 << 10, receiveCapacity: 256 << 10)!
            #expect(second.lease!.slot == handle.slot)
            #expect(second.status.isEmpty && second.receive.readable == 0 && second.receive.consumedPosition == 0)
            #expect(second.send.free == 64 << 10 && second.error == 0)
            #expect(!table.resolves(handle, as: .stream))
        }
    }

    /// A table whose slots are all held: no channel, and the caller's fallback (rings of
    /// their own) still works.
    @Test func fullTable_noLease() {
        let table = SocketTable(capacity: 2, stride: Self.stride)
        let held = (0..<2).map { _ in SocketChannel(in: table, sendCapacity: 4096, receiveCapacity: 4096)! }
        #expect(SocketChannel(in: table, sendCapacity: 4096, receiveCapacity: 4096) == nil)
        #expect(SocketChannel(in: table, sendCapacity: 1 << 20, receiveCapacity: 4096) == nil) // too big
        #expect(Set(held.map { $0.lease!.slot }) == [0, 1])
        let names = SocketTable(capacity: 2) // names only
        #expect(SocketChannel(in: names, sendCapacity: 4096, receiveCapacity: 4096) == nil)
    }

    /// A UDP socket's per-core queues and send ring in one slot, the queues made to fit.
    @Test func datagramChannelInASlot_queuesFit() {
        let table = SocketTable(capacity: 2, stride: ClientRegion.streamStride(send: 1 << 20, receive: 1 << 20))
        let channel = DatagramChannel(in: table, port: 53, cores: 4, homeCore: 1)!
        #expect(channel.queues.allSatisfy { $0.storage.capacity == 256 << 10 })
        let end = channel.outgoing.storage.block + 128 + channel.outgoing.capacity
        #expect(end <= channel.lease!.base + table.memory.stride)
        #expect(channel.queues.allSatisfy { $0.storage.capacity >= 16 << 10 })
        let payload: [UInt8] = [1, 2, 3]
        let arrival = DatagramArrival(source: Endpoint(IPv4Address(10, 0, 0, 1), 9), destination: Endpoint(IPv4Address(10, 0, 0, 2), 53))
        #expect(payload.withUnsafeBytes { channel.deliver($0, arrival: arrival, core: 3) })
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(buffer.withUnsafeMutableBytes { channel.receive(into: $0, peek: false) }?.length == 3)
        let many = DatagramChannel(in: table, port: 54, cores: 32, homeCore: 0)! // made smaller to fit
        #expect(many.queues.allSatisfy { $0.storage.capacity < 256 << 10 && $0.storage.capacity >= 16 << 10 })
        #expect(many.outgoing.storage.block + 128 + many.outgoing.capacity <= many.lease!.base + table.memory.stride)
        _ = consume many
        #expect(DatagramChannel(in: table, port: 55, cores: 256, homeCore: 0) == nil) // 256 queues do not fit
    }

    /// Threads lease, name and let go at once: no slot is held twice, and all come back.
    @Test func concurrentLeases_noSlotTwice_allComeBack() {
        let table = SocketTable(capacity: 32, stride: ClientRegion.streamStride(send: 4096, receive: 4096))
        let threads = 4, rounds = 5_000
        // Which thread holds each slot (-1: none).
        final class Owners: @unchecked Sendable {
            let words = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 32)
            init() { for i in 0..<32 { (words + i).initialize(to: Atomic<Int>(-1)) } }
            deinit { words.deallocate() }
            subscript(_ slot: Int) -> UnsafeMutablePointer<Atomic<Int>> { words + slot }
        }
        let owners = Owners()
        let joins = (0..<threads).map { t in
            spawn {
                var mine: [SocketChannel] = []
                for n in 0..<rounds {
                    if let channel = SocketChannel(in: table, sendCapacity: 4096, receiveCapacity: 4096) {
                        let slot = Int(channel.lease!.slot)
                        #expect(owners[slot].pointee.exchange(t, ordering: .acquiringAndReleasing) == -1)
                        if n % 2 == 0, let handle = table.register(kind: .stream, in: channel.lease) {
                            #expect(table.release(handle))
                        }
                        mine.append(channel)
                    }
                    if mine.count > 4 || n % 3 == 0, !mine.isEmpty {
                        let gone = mine.removeFirst()
                        owners[Int(gone.lease!.slot)].pointee.store(-1, ordering: .releasing)
                    }
                }
                for gone in mine { owners[Int(gone.lease!.slot)].pointee.store(-1, ordering: .releasing) }
            }
        }
        joins.forEach { $0() }
        #expect(table.slotsTaken == 0 && table.inUse == 0)
    }
}

@Suite struct AcceptQueueTests {
    /// Connection `n`: over IPv4 for even `n`, IPv6 for odd, so records of both families pass.
    func connection(_ n: Int, core: Int = 1) -> AcceptedConnection {
        let tuple = n % 2 == 0
            ? FourTuple(local: Endpoint(IPv4Address(10, 77, 0, 2), 80),
                        remote: Endpoint(IPv4Address(10, 77, 0, UInt8(n % 200)), UInt16(1000 + n % 60_000)))
            : FourTuple(local: Endpoint(IPv6Address("fd77::2")!, 80),
                        remote: Endpoint(IPv6Address(high: 0xFD77 << 48, low: UInt64(n)), UInt16(1000 + n % 60_000)))
        return AcceptedConnection(handle: SocketHandle(slot: UInt32(n), generation: UInt32(n * 7)), tuple: tuple, core: core)
    }

    @Test func fifo_fullAndEmpty() {
        let queue = AcceptQueue(capacity: 3, core: 1)
        #expect(queue.pop() == nil)
        for n in 0..<3 { #expect(queue.push(connection(n))) }
        #expect(!queue.push(connection(3)) && queue.count == 3)
        for n in 0..<3 { #expect(queue.pop() == connection(n)) }
        #expect(queue.pop() == nil)
        for n in 10..<20 { #expect(queue.push(connection(n))); #expect(queue.pop() == connection(n)) }
    }

    /// One core pushes, four threads accept at once: each connection is taken exactly once,
    /// whole (a copy torn by the core reusing the record never wins its claim).
    @Test func onePusherManyAcceptors_eachTakenOnceWhole() {
        let queue = AcceptQueue(capacity: 8, core: 1)
        let total = 100_000
        let taken = SocketTableTests.Counter()
        let seen = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: total)
        for i in 0..<total { (seen + i).initialize(to: Atomic(0)) }
        defer { seen.deallocate() }
        let done = Atomic<Bool>(false)
        nonisolated(unsafe) let marks = seen
        let joins = (0..<4).map { _ in
            spawn {
                while true {
                    if let c = queue.pop() {
                        let n = Int(c.handle.slot)
                        #expect(c == self.connection(n), "a torn record was accepted")
                        marks[n].add(1, ordering: .relaxed)
                        taken.value.add(1, ordering: .relaxed)
                    } else if done.load(ordering: .acquiring) && queue.count == 0 {
                        return
                    } else {
                        sched_yield()
                    }
                }
            }
        }
        for n in 0..<total { while !queue.push(connection(n)) { sched_yield() } }
        done.store(true, ordering: .releasing)
        joins.forEach { $0() }
        #expect(taken.value.load(ordering: .relaxed) == total)
        #expect((0..<total).allSatisfy { seen[$0].load(ordering: .relaxed) == 1 })
    }
}
