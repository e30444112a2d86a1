import Foundation
import Glibc
import NetMPClient
import NetMPStack
import NetMPStackProcess
import NetMPTCP
import NetMPWire
import Testing

/// Receiving in place end to end (ProtocolLoop+Landing): two stacks back to back whose
/// "link" vouches for checksums, as a TAP with offloads does. The receiving core reads each
/// segment's payload straight into its connection's receive ring; a frame of another
/// connection, or one out of order, is copied to its place as before. Every byte is checked.
@Suite(.serialized) struct ReceiveInPlaceTests {
    func stats(_ stack: NetworkStack) throws -> (landed: UInt64, missed: UInt64) {
        let snapshot: StatsSnapshot = try #require(stack.statsSnapshot())
        return (snapshot.cores.reduce(0) { $0 + $1.landed }, snapshot.cores.reduce(0) { $0 + $1.landingMisses })
    }

    @Test func oneStream_payloadsReadInPlace_everyByteInOrder() throws {
        let pair = try StackPair(cores: 1, checksumOffload: true)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7100)
        defer { listener.close() }
        let bytes = 8 << 20
        try pair.streamOnce(to: listener, port: 7100, seed: 5, bytes: bytes)
        let b = try stats(pair.b)
        print("one stream: \(b.landed) payloads received in place, \(b.missed) landed in vain")
        // Each 1448-byte segment is its own frame here (no segmentation offload): nearly all land.
        #expect(b.landed > UInt64(bytes / 1448 / 2), "landed \(b.landed)")
    }

    /// Bytes that land before the core knows whose they are may be anyone's: a ring is a
    /// landing place only for a client that could capture the link anyway (the stack's uid,
    /// or root). A client of another user is received into as before.
    @Test func clientOfAnotherUser_neverLandedOn_streamExact() throws {
        let pair = try StackPair(cores: 1, checksumOffload: true)
        defer { pair.stop() }
        let other = try pair.b.attachClient(uid: 4242)
        let listener = StreamSocket(client: other)
        defer { listener.close() }
        try listener.bind(Endpoint(IPv4Address(0), 7102))
        try listener.listen()
        try pair.streamOnce(to: listener, port: 7102, seed: 9, bytes: 2 << 20)
        let b = try stats(pair.b)
        #expect(b.landed == 0 && b.missed == 0, "landed \(b.landed), missed \(b.missed)")
    }

    /// With two programs attached, a frame landed on one's ring could be the other's: no
    /// ring is landed on. With one program beside the stack's own client 0, its ring is.
    @Test func twoPrograms_neverLandedOn_oneProgram_is() throws {
        let pair = try StackPair(cores: 1, checksumOffload: true)
        defer { pair.stop() }
        let program = try pair.b.attachClient()
        func stream(into client: StackClient, port: UInt16) throws -> (landed: UInt64, missed: UInt64) {
            let before = try stats(pair.b)
            let listener = StreamSocket(client: client)
            defer { listener.close() }
            try listener.bind(Endpoint(IPv4Address(0), port))
            try listener.listen()
            try pair.streamOnce(to: listener, port: port, seed: 4, bytes: 2 << 20)
            let after = try stats(pair.b)
            return (after.landed - before.landed, after.missed - before.missed)
        }
        let alone = try stream(into: program, port: 7103)
        #expect(alone.landed > 0, "one program: landed \(alone.landed)")
        let other = try pair.b.attachClient()
        let beside = try stream(into: program, port: 7104)
        #expect(beside.landed == 0 && beside.missed == 0, "two programs: landed \(beside.landed), missed \(beside.missed)")
        pair.b.detach(other)
    }

    /// Two streams at once on one core: the guess is wrong whenever the other's frame comes
    /// next, and that payload is copied from where it landed to its own ring; both streams
    /// arrive exact.
    @Test func twoStreamsInterleaved_wrongGuessesCopied_bothStreamsExact() throws {
        let pair = try StackPair(cores: 1, checksumOffload: true)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7101)
        let bytes = 4 << 20
        nonisolated(unsafe) var received: [(Int, Int?)] = [(0, nil), (0, nil)]
        let lock = NSLock()
        let server = spawnBounded {
            var joins: [(Double) -> Bool] = []
            for _ in 0..<2 {
                guard let connection = try? listener.accept() else { return }
                joins.append(spawnBounded {
                    var tag = [UInt8](repeating: 0, count: 1)
                    _ = try? tag.withUnsafeMutableBytes { try connection.receive(into: $0, flags: .waitAll) }
                    let result = (try? connection.receiveStream(seed: Int(tag[0]))) ?? (-1, nil)
                    connection.close()
                    lock.lock(); received[Int(tag[0])] = result; lock.unlock()
                })
            }
            for join in joins { _ = join(60) }
        }
        // One thread sends both streams in turn, 8 KiB of each: both are always under way,
        // so the wire carries runs of each in turn whatever the scheduler does.
        let sender = spawnBounded {
            guard let first = try? pair.connectFromA(port: 7101), let second = try? pair.connectFromA(port: 7101) else { return }
            let sockets = [first, second]
            for (index, socket) in sockets.enumerated() { _ = try? [UInt8(index)].withUnsafeBytes { try socket.send($0) } }
            var sent = [0, 0]
            var chunk = [UInt8](repeating: 0, count: 8192)
            while sent[0] < bytes || sent[1] < bytes {
                for index in 0..<2 where sent[index] < bytes {
                    let n = min(chunk.count, bytes - sent[index])
                    for k in 0..<n { chunk[k] = streamByte(index, sent[index] + k) }
                    guard let written = try? chunk.withUnsafeBytes({ try sockets[index].send(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }),
                          written > 0 else { return }
                    sent[index] += written
                }
            }
            for socket in sockets {
                try? socket.shutdown(.write)
                var end = [UInt8](repeating: 0, count: 1)
                _ = try? end.withUnsafeMutableBytes { try socket.receive(into: $0) } // the server's close
                socket.close()
            }
        }
        #expect(sender(60), "the sender hung")
        #expect(server(60), "the server hung")
        for index in 0..<2 {
            #expect(received[index].0 == bytes && received[index].1 == nil, "stream \(index): \(received[index])")
        }
        let b = try stats(pair.b)
        print("two streams: \(b.landed) payloads received in place, \(b.missed) landed in vain")
        #expect(b.landed > 0 && b.missed > 0, "landed \(b.landed), missed \(b.missed)")
        listener.close()
    }
}
