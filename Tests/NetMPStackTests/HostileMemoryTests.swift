import CNetMPChannel
import Glibc
import NetMPStack
import Synchronization
import Testing

/// What a client writes into the words it shares with the stack (ring positions, the
/// request ring's head, the socket table's free stack and holds) cannot make the stack's
/// side trap, copy outside a ring or go back on what it already saw (docs/STACK-SERVICE.md,
/// Distrust). Each case writes the words as a scribbling client would.
@Suite struct HostileMemoryTests {
    func store(_ value: Int, into block: UnsafeMutableRawPointer, at offset: Int) {
        block.storeBytes(of: value, toByteOffset: offset, as: Int.self)
    }

    /// The owner takes a new `committed` only forward and within the ring: a position moved
    /// back, past the ring, or to the end of the integers is counted and ignored, and the
    /// owner's view of what is held neither shrinks nor grows past the capacity.
    @Test func sendRing_ownerIgnoresImpossibleCommits() {
        let ring = SendRing(capacity: 4096)
        let committed = MemoryLayout<netmp_send_ring>.offset(of: \netmp_send_ring.committed)!
        #expect([UInt8](repeating: 7, count: 100).withUnsafeBytes { ring.write($0) } == 100)
        #expect(ring.held == 100)
        for hostile in [Int.min, Int.max, 5000, 50, -1] {
            store(hostile, into: ring.storage.block, at: committed)
            #expect(ring.held == 100, "committed \(hostile)")
        }
        #expect(ring.impossiblePositions == 5)
        store(4096, into: ring.storage.block, at: committed) // forward, and exactly full: taken
        #expect(ring.held == 4096)
        var out = [UInt8](repeating: 0, count: 100)
        out.withUnsafeMutableBytes { ring.copy(from: 0, count: 100, into: $0) }
        #expect(out == [UInt8](repeating: 7, count: 100))
        ring.release(4096)
        #expect(ring.held == 0)
    }

    /// The owner takes a new `head` only forward and not past what it published: readers
    /// who move it back, or past the end, change neither the free space nor the window.
    @Test func receiveRing_ownerIgnoresImpossibleHeads() {
        let ring = ReceiveRing(capacity: 4096)
        let head = MemoryLayout<netmp_receive_ring>.offset(of: \netmp_receive_ring.head)!
        [UInt8](repeating: 1, count: 100).withUnsafeBytes { ring.write($0, at: 0) }
        ring.publish(100)
        for hostile in [-5, 200, Int.min, Int.max] {
            store(hostile, into: ring.storage.block, at: head)
            #expect(ring.consumedPosition == 0 && ring.free == 3996, "head \(hostile)")
        }
        store(60, into: ring.storage.block, at: head)
        #expect(ring.consumedPosition == 60 && ring.unread == 40)
        store(30, into: ring.storage.block, at: head)
        #expect(ring.consumedPosition == 60 && ring.free == 4056)
        #expect(ring.impossiblePositions > 0)
        // The owner's own positions go on from where it was, whatever the block says.
        [UInt8](repeating: 2, count: 10).withUnsafeBytes { ring.write($0, at: 0) }
        ring.publish(10)
        #expect(ring.unread == 50)
    }

    /// The core counts what it took from a request ring itself: a head the client wrote
    /// is not read back. A ring the client keeps full of records of no known kind costs
    /// the core a bounded number of them per call.
    @Test func requestRing_coreKeepsItsOwnCount_malformedFloodBounded() {
        let ring = RequestRing(capacity: 256)
        let head = MemoryLayout<netmp_request_ring>.offset(of: \netmp_request_ring.head)!
        let tail = MemoryLayout<netmp_request_ring>.offset(of: \netmp_request_ring.tail)!
        let block = ring.recordForTesting(0) - MemoryLayout<netmp_request_ring>.size
        ring.send(Request(.output, SocketHandle(slot: 1, generation: 1)))
        store(Int.min, into: block, at: head)
        #expect(ring.receive() == Request(.output, SocketHandle(slot: 1, generation: 1)))
        // 200 published records of an unknown kind, positions 1 to 200 (round 0).
        store(1, into: block, at: tail)
        for position in 1...200 {
            ring.send(Request(.output, SocketHandle(slot: 2, generation: 1)))
            ring.recordForTesting(position).storeBytes(of: UInt16(999), toByteOffset: 8, as: UInt16.self)
        }
        #expect(ring.receive() == nil)
        #expect(ring.malformed > 0 && ring.malformed <= 65, "one call skipped \(ring.malformed)")
        var calls = 1
        while ring.malformed < 200 && calls < 10 { _ = ring.receive(); calls += 1 }
        #expect(ring.malformed == 200 && calls == 4)
    }

    /// A free stack whose top or links name slots outside the table, and a high-water mark
    /// below zero, give the stack no slot outside the table: it takes a fresh one or none.
    @Test func socketTable_corruptFreeStack_neverYieldsAForeignSlot() throws {
        let table = SocketTable(capacity: 8, stride: ClientRegion.pageSize, shared: true)
        let fd = try #require(table.memory.descriptor)
        // The client's mapping of the region's front: its head and the entries.
        var probe = netmp_region()
        #expect(pread(fd, &probe, MemoryLayout<netmp_region>.size, 0) == MemoryLayout<netmp_region>.size)
        let bytes = Int(probe.memory_offset)
        let front = try #require(mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0))
        defer { munmap(front, bytes) }
        let head = front.assumingMemoryBound(to: netmp_region.self)
        func link(_ slot: Int) -> UnsafeMutablePointer<UInt64> {
            (front + Int(head.pointee.entries_offset) + slot * MemoryLayout<netmp_socket_entry>.size
                + MemoryLayout<netmp_socket_entry>.offset(of: \netmp_socket_entry.next_free)!).assumingMemoryBound(to: UInt64.self)
        }
        let leases = (0..<3).compactMap { _ in table.lease() }
        #expect(leases.map(\.slot) == [0, 1, 2])
        head.pointee.free_head = 1 << 32 | 1000          // the top names slot 999
        #expect(table.lease()?.slot == 3)
        head.pointee.free_head = 1 << 32 | 2             // slot 1, whose link names slot 999
        link(1).pointee = 1000
        #expect(table.lease()?.slot == 4)
        head.pointee.free_head = 0
        head.pointee.high_water = -3
        #expect(table.lease() == nil)
        head.pointee.high_water = 5
        #expect(table.lease()?.slot == 5)
        // A hold count the client set to its maximum takes no more holds (the stack's scan
        // of a client's sockets used to trap adding one to it).
        let holds = (front + Int(head.pointee.entries_offset) + 2 * MemoryLayout<netmp_socket_entry>.size
                     + MemoryLayout<netmp_socket_entry>.offset(of: \netmp_socket_entry.holds)!).assumingMemoryBound(to: UInt32.self)
        holds.pointee = .max
        #expect(!table.tryHold(2))
        holds.pointee = 1
        #expect(table.tryHold(2))
        withExtendedLifetime(leases) {}
    }

    /// A view the stack makes of a client's socket takes nothing from the slot it cannot
    /// use: ring sizes of zero are refused, and ring positions no reader and owner could
    /// have left (written before the stack came) start the ring empty, so the first data
    /// to arrive finds the free space the ring has.
    @Test func adoptedSocket_refusesZeroSizes_startsImpossiblePositionsEmpty() throws {
        let table = SocketTable(capacity: 8, stride: ClientRegion.streamStride(send: 4096, receive: 4096), shared: true)
        let lessor = try #require(SocketChannel(in: table, sendCapacity: 4096, receiveCapacity: 4096))
        let slot = lessor.lease!.slot
        let receiveCapacity = MemoryLayout<netmp_stream_slot>.offset(of: \netmp_stream_slot.receive_capacity)!
        table.hold(slot)
        table.words(slot).storeBytes(of: UInt32(0), toByteOffset: receiveCapacity, as: UInt32.self)
        #expect(SocketChannel(adopting: slot, in: table) == nil)
        table.words(slot).storeBytes(of: UInt32(4096), toByteOffset: receiveCapacity, as: UInt32.self)
        let block = lessor.receive.storage.block
        store(Int.min, into: block, at: MemoryLayout<netmp_receive_ring>.offset(of: \netmp_receive_ring.tail)!)
        store(0, into: block, at: MemoryLayout<netmp_receive_ring>.offset(of: \netmp_receive_ring.head)!)
        let view = try #require(SocketChannel(adopting: slot, in: table))
        #expect(view.receive.free == 4096 && view.receive.unread == 0)
        [UInt8](repeating: 3, count: 4096).withUnsafeBytes { view.receive.write($0, at: 0) }
        view.receive.publish(4096)
        #expect(view.receive.free == 0)
    }

    /// The region's memfd is sealed at its size: a client cannot truncate it under the
    /// stack (whose next access would fault).
    @Test func regionMemfd_cannotBeTruncated() throws {
        let region = try ClientRegion(capacity: 4, stride: ClientRegion.pageSize, shared: true)
        let fd = try #require(region.descriptor)
        #expect(ftruncate(fd, 0) == -1 && errno == EPERM)
        #expect(ftruncate(fd, 1 << 30) == -1 && errno == EPERM)
    }
}
