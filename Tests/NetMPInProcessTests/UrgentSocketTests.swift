import Glibc
import NetMPClient
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire
import Synchronization
import Testing

/// Urgent data between two netmp stacks, through the rings and the slot's urgent word:
/// the mark stops a read, recv(MSG_OOB) takes the byte once, reads step over it, and many
/// readers racing over many urgent sends (TSan runs this) lose and repeat no byte.
@Suite(.serialized) struct UrgentSocketTests {
    func send(_ socket: StreamSocket, _ text: String, urgent: Bool = false) throws {
        let bytes = Array(text.utf8)
        #expect(try bytes.withUnsafeBytes { try socket.send($0, flags: urgent ? .urgent : []) } == bytes.count)
    }

    func waitFor(_ condition: () -> Bool) -> Bool {
        for _ in 0..<2000 where !condition() { usleep(1000) }
        return condition()
    }

    @Test func markStopsTheRead_outOfBandByteTakenOnce_readsStepOverIt() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7320)
        defer { listener.close() }
        let client = try pair.connectFromA(port: 7320)
        defer { client.close() }
        let server = try listener.accept()
        defer { server.close() }
        try send(client, "abc", urgent: true)
        try send(client, "de")
        #expect(waitFor { server.readable >= 5 && server.readiness.contains(.priority) })
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try buffer.withUnsafeMutableBytes { try server.receive(into: $0) } == 2)
        #expect(Array(buffer.prefix(2)) == Array("ab".utf8) && server.atUrgentMark)
        #expect(try buffer.withUnsafeMutableBytes { try server.receiveUrgent(into: $0) } == 1 && buffer[0] == UInt8(ascii: "c"))
        #expect(throws: SocketError(EINVAL)) { try buffer.withUnsafeMutableBytes { try server.receiveUrgent(into: $0) } }
        #expect(!server.readiness.contains(.priority))
        #expect(try buffer.withUnsafeMutableBytes { try server.receive(into: $0) } == 2)
        #expect(Array(buffer.prefix(2)) == Array("de".utf8) && !server.atUrgentMark)
    }

    /// One writer sends 200 rounds of "0123456789" with the last byte urgent, then 'x';
    /// two readers read the stream at once while a third thread takes urgent bytes.
    /// Without SO_OOBINLINE each '9' is read as data (a later urgent pointer replaced its
    /// mark, as on Linux) or stepped over, never twice, and every other byte arrives
    /// exactly once; what the taker caught are '9's, one per round at most. A '9' taken out
    /// of band can be read as data too: when a later pointer replaces its mark before the
    /// readers reach it, Linux's tcp_check_urg forgets the mark, taken or not, and so does
    /// netmp (a slow, sanitized run sees it).
    @Test func racingReaders_eachByteOnce() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7321)
        defer { listener.close() }
        let client = try pair.connectFromA(port: 7321)
        let server = try listener.accept()
        defer { server.close() }
        let rounds = 200
        let writer = spawnBounded {
            for _ in 0..<rounds {
                _ = try? Array("0123456789".utf8).withUnsafeBytes { try client.send($0, flags: .urgent) }
                _ = try? Array("x".utf8).withUnsafeBytes { try client.send($0) }
                usleep(300) // each round's urgent pointer on the wire, most read before the next
            }
            client.close()
        }
        let collected = Bytes()
        let readers = (0..<2).map { _ in
            spawnBounded {
                var buffer = [UInt8](repeating: 0, count: 7)
                while let n = try? buffer.withUnsafeMutableBytes({ try server.receive(into: $0) }), n > 0 {
                    collected.append(buffer[0..<n])
                }
            }
        }
        let taken = Bytes()
        let stop = Atomic<Bool>(false)
        let taker = spawnBounded {
            var buffer = [UInt8](repeating: 0, count: 1)
            while !stop.load(ordering: .acquiring) {
                if let n = try? buffer.withUnsafeMutableBytes({ try server.receiveUrgent(into: $0) }), n == 1 {
                    taken.append(buffer[0..<1])
                }
                sched_yield()
            }
        }
        #expect(writer(30))
        #expect(readers.allSatisfy { $0(30) })
        stop.store(true, ordering: .releasing)
        #expect(taker(30))
        let stream = collected.all
        for byte in Array("012345678x".utf8) {
            #expect(stream.filter { $0 == byte }.count == rounds, "byte \(byte) in the stream")
        }
        let nines = stream.filter { $0 == UInt8(ascii: "9") }.count
        let caught = taken.all
        #expect(stream.count == rounds * 10 + nines && nines <= rounds)
        #expect(caught.allSatisfy { $0 == UInt8(ascii: "9") } && caught.count <= rounds)
        print("urgent race: \(nines) of \(rounds) urgent bytes read as data, \(caught.count) taken out of band")
    }
}

/// Bytes several threads append to, behind a lock: a reference, so that threads sharing
/// it share no Swift variable (a captured Mutex is one, and TSan reports two threads'
/// accesses to it as an exclusivity race).
final class Bytes: @unchecked Sendable {
    private let lock = PthreadLock()
    private var bytes: [UInt8] = []
    func append(_ more: ArraySlice<UInt8>) { lock.locked { bytes += more } }
    var all: [UInt8] { lock.locked { bytes } }
}
