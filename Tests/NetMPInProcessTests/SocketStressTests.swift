import Foundation
import Glibc
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPSystem
import NetMPWire
import Testing

/// Many threads on one connection at once (the runtime issue's stress test): writers,
/// readers, shutdown and close racing each other, round after round for
/// NETMP_STRESS_SECONDS (Scripts/test runs it for minutes under ThreadSanitizer). No thread
/// may hang, and no byte a send() reported may be lost or duplicated.
///
/// Each writer sends only its own byte value, so the receivers' histograms say exactly how
/// many bytes of each writer arrived; concurrent writes may interleave, as on Linux.
@Suite(.serialized) struct SocketStressTests {
    static var seconds: Double {
        ProcessInfo.processInfo.environment["NETMP_STRESS_SECONDS"].flatMap(Double.init) ?? 8
    }

    enum Ending: CaseIterable { case afterWriters, shutdownDuringWrites, abortDuringWrites }

    final class Tally: @unchecked Sendable {
        let lock = NSLock()
        var histogram = [Int](repeating: 0, count: 256)
        var written = [Int](repeating: 0, count: 256)
        var errors: [Int32] = []
        func add(_ local: [Int]) { lock.lock(); for i in 0..<256 { histogram[i] += local[i] }; lock.unlock() }
        func wrote(_ value: Int, _ n: Int) { lock.lock(); written[value] += n; lock.unlock() }
        func failed(_ e: Error) { lock.lock(); errors.append((e as? SocketError)?.errno ?? -1); lock.unlock() }
    }

    static func reader(_ socket: StreamSocket, into tally: Tally) -> @Sendable () -> Void {
        {
            var local = [Int](repeating: 0, count: 256)
            var buffer = [UInt8](repeating: 0, count: Int.random(in: 1...16_384))
            do {
                while true {
                    let n = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) }
                    if n == 0 { break }
                    for b in buffer[0..<n] { local[Int(b)] += 1 }
                }
            } catch { tally.failed(error) }
            tally.add(local)
        }
    }

    static func writer(_ socket: StreamSocket, value: UInt8, limit: Int, into tally: Tally) -> @Sendable () -> Void {
        {
            let chunk = [UInt8](repeating: value, count: 65_536)
            var sent = 0
            do {
                while sent < limit {
                    let n = min(Int.random(in: 1...65_536), limit - sent)
                    sent += try chunk.withUnsafeBytes { try socket.send(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                }
            } catch { tally.failed(error) }
            tally.wrote(Int(value), sent)
        }
    }

    @Test func manyThreadsOneSocket_noHang_noByteLostOrDuplicated() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7600)
        defer { listener.close() }
        let end = Date().addingTimeInterval(Self.seconds)
        var rounds = 0
        var endings: [Ending: Int] = [:]
        while Date() < end || rounds < Ending.allCases.count {
            let ending = Ending.allCases[rounds % Ending.allCases.count]
            rounds += 1
            endings[ending, default: 0] += 1
            let client = try pair.connectFromA(port: 7600)
            let server = try listener.accept()
            let toServer = Tally(), toClient = Tally()
            let limit = Int.random(in: 1...(1 << 20))
            var joins: [(Double) -> Bool] = []
            let clientWriters = (1...3).map { w in spawnBounded(Self.writer(client, value: UInt8(w), limit: limit, into: toServer)) }
            joins += clientWriters
            joins.append(spawnBounded {
                Self.writer(server, value: 9, limit: limit, into: toClient)()
                try? server.shutdown(.write)
            })
            joins += (0..<3).map { _ in spawnBounded(Self.reader(server, into: toServer)) }
            joins += (0..<2).map { _ in spawnBounded(Self.reader(client, into: toClient)) }
            let delay = useconds_t.random(in: 0...20_000)
            switch ending {
            case .afterWriters:
                for join in clientWriters { #expect(join(30), "round \(rounds): a writer hung") }
                try? client.shutdown(.write)
            case .shutdownDuringWrites:
                usleep(delay)
                try? client.shutdown(.write)
            case .abortDuringWrites:
                usleep(delay)
                client.setLinger(seconds: 0)
                client.close()
            }
            for (i, join) in joins.enumerated() {
                #expect(join(30), "round \(rounds) (\(ending)): thread \(i) hung")
            }
            for w in 1...3 {
                if ending == .abortDuringWrites {
                    #expect(toServer.histogram[w] <= toServer.written[w], "round \(rounds): writer \(w) duplicated bytes")
                } else {
                    #expect(toServer.histogram[w] == toServer.written[w],
                            "round \(rounds) (\(ending)): writer \(w) sent \(toServer.written[w]), \(toServer.histogram[w]) arrived")
                }
            }
            if ending != .abortDuringWrites {
                #expect(toClient.histogram[9] == toClient.written[9], "round \(rounds): server writer lost bytes")
                #expect(toServer.errors.allSatisfy { $0 == EPIPE }, "round \(rounds): \(toServer.errors)")
            }
            let stray = toServer.histogram.enumerated().filter { ![0, 1, 2, 3].contains($0.offset) && $0.element > 0 }
            #expect(stray.isEmpty, "round \(rounds): bytes no writer sent: \(stray)")
            client.close()
            server.close()
        }
        print("socket stress: \(rounds) rounds in \(Self.seconds) s: \(endings.map { "\($0.key) \($0.value)" }.sorted())")
    }
}
