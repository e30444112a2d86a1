import Foundation
import Glibc
import NetMPStack
import Synchronization
import Testing

/// The seed's socket buffers under many threads: no byte lost or duplicated, no blocked
/// thread left waiting (a lost wakeup would hang the test).
@Suite struct SocketRingTests {
    /// One owner publishes 8-byte words numbered 0..<N in random chunks; four readers read
    /// concurrently, blocking when empty. Together they see every number exactly once.
    @Test func receiveRing_fourReaders_everyWordOnce() {
        let ring = ReceiveRing(capacity: 4096)
        let words = 400_000
        // NSLock, not Synchronization.Mutex: ThreadSanitizer sees pthread mutexes, not the
        // futex under Mutex, and would report the collection itself as a race.
        let lock = NSLock()
        nonisolated(unsafe) var collected: [[Int]] = []
        let joins = (0..<4).map { _ in
            spawn {
                var seen: [Int] = []
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 * 37, alignment: 8)
                defer { buffer.deallocate() }
                while true {
                    let n = ring.read(into: buffer)
                    if n == 0 {
                        if ring.atEnd { break }
                        ring.waitReadable()
                        continue
                    }
                    for i in stride(from: 0, to: n, by: 8) { seen.append(buffer.load(fromByteOffset: i, as: Int.self)) }
                }
                lock.lock(); collected.append(seen); lock.unlock()
            }
        }
        var next = 0
        var chunk = [Int](repeating: 0, count: 64)
        while next < words {
            let count = min(1 + next % 50, words - next)
            while ring.free < count * 8 { sched_yield() }
            for i in 0..<count { chunk[i] = next + i }
            chunk.withUnsafeBytes { ring.write(UnsafeRawBufferPointer(rebasing: $0[0..<(count * 8)]), at: 0) }
            ring.publish(count * 8)
            next += count
        }
        ring.publishEndOfStream()
        joins.forEach { $0() }
        lock.lock()
        let all = collected.flatMap { $0 }.sorted()
        lock.unlock()
        #expect(all.count == words && all == Array(0..<words))
    }

    /// Four writers append numbered words in random sizes, blocking when full; the owner
    /// sends and frees. Every writer's words arrive complete and in order.
    @Test func sendRing_fourWriters_everyWordOnceInOrder() {
        let ring = SendRing(capacity: 4096)
        let perWriter = 100_000
        let joins = (0..<4).map { id in
            spawn {
                var n = 0
                var chunk = [Int](repeating: 0, count: 16)
                while n < perWriter {
                    let count = min(1 + n % 16, perWriter - n)
                    for i in 0..<count { chunk[i] = id << 32 | (n + i) }
                    var offset = 0
                    while offset < count * 8 {
                        let written = chunk.withUnsafeBytes { ring.write(UnsafeRawBufferPointer(rebasing: $0[offset..<(count * 8)])) }
                        if written == 0 { ring.waitWritable() }
                        offset += written
                    }
                    n += count
                }
            }
        }
        var next = [Int](repeating: 0, count: 4)
        var partial = [UInt8]()
        var received = 0, disorder = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        while received < 4 * perWriter {
            let held = ring.held
            guard held > 0 else { sched_yield(); continue }
            ring.copy(from: 0, count: held, into: buffer)
            ring.release(held)
            partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<held]))
            let whole = partial.count / 8 * 8
            partial.withUnsafeBytes { bytes in
                for i in stride(from: 0, to: whole, by: 8) {
                    let word = bytes.loadUnaligned(fromByteOffset: i, as: Int.self)
                    let (writer, number) = (word >> 32, word & 0xFFFF_FFFF)
                    if number != next[writer] { disorder += 1 }
                    next[writer] = number + 1
                    received += 1
                }
            }
            partial.removeFirst(whole)
        }
        joins.forEach { $0() }
        // A writer's words may interleave with others' between writes, never within one.
        #expect(received == 4 * perWriter && disorder == 0 && next == [perWriter, perWriter, perWriter, perWriter])
    }

    /// SO_SNDBUF's limit: writers hold at most it (written and not released), a release
    /// makes room within it, 0 or a limit past the capacity is the whole ring, and a writer
    /// blocked at the limit wakes when it rises.
    @Test func sendRing_writersLimit_boundsWhatTheyHold() {
        let ring = SendRing(capacity: 4096)
        let bytes = [UInt8](repeating: 7, count: 4096)
        func write(_ count: Int) -> Int { bytes.withUnsafeBytes { ring.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) } }
        ring.limitWriters(to: 1000)
        #expect(ring.usable == 1000 && ring.free == 1000)
        #expect(write(600) == 600 && write(600) == 400 && write(1) == 0 && ring.free == 0)
        ring.release(300)
        #expect(ring.free == 300 && write(4096) == 300 && ring.outstanding == 1000)
        ring.limitWriters(to: 500) // below what is held: nothing more until releases pass it
        #expect(ring.free < 0 && write(10) == 0)
        ring.release(ring.held)
        #expect(ring.free == 500)
        ring.limitWriters(to: 1 << 20)
        #expect(ring.usable == 4096)
        ring.limitWriters(to: 0)
        #expect(ring.usable == 4096 && write(4096) == 4096 && ring.free == 0)
        ring.release(4096)

        ring.limitWriters(to: 100)
        #expect(write(100) == 100)
        final class Flag: Sendable { let woke = Atomic<Bool>(false) }
        let flag = Flag()
        let join = spawn {
            ring.waitWritable()
            flag.woke.store(true, ordering: .releasing)
        }
        usleep(50_000)
        let wokeEarly = flag.woke.load(ordering: .acquiring)
        #expect(!wokeEarly, "a writer at the limit did not wait")
        ring.limitWriters(to: 200)
        join()
        let woke = flag.woke.load(ordering: .acquiring)
        #expect(woke && ring.free == 100)
    }

    /// A gathered write (writev's pieces) goes in as one reservation: what fits of all the
    /// pieces, in order, empty pieces skipped, committed at once; the rest from where it
    /// stopped, however the pieces fall.
    @Test func sendRing_gatheredWrite_piecesInOrder_restWhereItStopped() {
        let ring = SendRing(capacity: 4096)
        let parts: [[UInt8]] = [Array(repeating: 0x61, count: 3000), [], Array(repeating: 0x62, count: 2000), Array(repeating: 0x63, count: 500)]
        let total = parts.reduce(0) { $0 + $1.count }
        var held: [UInt8] = []
        func take() {
            let n = ring.held
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 1), alignment: 8)
            defer { buffer.deallocate() }
            ring.copy(from: 0, count: n, into: buffer)
            ring.release(n)
            held += UnsafeRawBufferPointer(rebasing: buffer[0..<n])
        }
        var written = 0
        let pointers = parts.map { part in
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(part.count, 1), alignment: 1)
            part.withUnsafeBytes { p.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(p), byteCount: part.count) }
            return p
        }
        defer { pointers.forEach { $0.deallocate() } }
        var pieces = zip(pointers, parts).map { iovec(iov_base: $0, iov_len: $1.count) }
        pieces.withUnsafeBufferPointer { list in
            var end = 0
            written = ring.write(gathering: list, from: 0, total: total, end: &end)
            #expect(written == ring.capacity && end == written && ring.held == written)
            take()
            let rest = ring.write(gathering: list, from: written, total: total, end: &end)
            #expect(rest == total - written && end == total)
            take()
            #expect(ring.write(gathering: list, from: total, total: total, end: &end) == 0)
        }
        #expect(held == parts.flatMap { $0 })
        pieces.removeAll()
    }
}
