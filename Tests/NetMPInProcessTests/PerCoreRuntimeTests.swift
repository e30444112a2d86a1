import Foundation
import Glibc
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPStackProcess
import NetMPTCP
import NetMPWire
import Testing

/// The per-core runtime end to end, two stacks back to back in this process: connections
/// born on their owner core, frames forwarded when they arrive elsewhere, data checked.
@Suite(.serialized) struct PerCoreRuntimeTests {
    /// Eight connections from A to B, 2 cores each side: both cores own some, every
    /// connection sits on the core its 4-tuple hashes to, and every byte arrives in order.
    @Test func eightConnections_spreadOverTwoCores_everyByteChecked() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7000)
        let bytes = 2 << 20
        nonisolated(unsafe) var serverResults: [(Int, Int?)] = Array(repeating: (0, nil), count: 8)
        let lock = NSLock()
        let server = spawnBounded {
            var joins: [(Double) -> Bool] = []
            for _ in 0..<8 {
                guard let connection = try? listener.accept() else { return }
                joins.append(spawnBounded {
                    var seed = [UInt8](repeating: 0, count: 1)
                    // The client's first byte names its stream.
                    _ = try? seed.withUnsafeMutableBytes { try connection.receive(into: $0, flags: .waitAll) }
                    let index = Int(seed[0])
                    let result = (try? connection.receiveStream(seed: index)) ?? (-1, nil)
                    _ = try? connection.sendStream(seed: 100 + index, count: bytes)
                    connection.close()
                    lock.lock(); serverResults[index] = result; lock.unlock()
                })
            }
            for join in joins { _ = join(60) }
        }
        nonisolated(unsafe) var clients: [StreamSocket?] = Array(repeating: nil, count: 8)
        nonisolated(unsafe) var clientResults: [(Int, Int?)] = Array(repeating: (0, nil), count: 8)
        let joins = (0..<8).map { index in
            spawnBounded {
                guard let socket = try? pair.connectFromA(port: 7000) else { return }
                lock.lock(); clients[index] = socket; lock.unlock()
                let tag = [UInt8(index)]
                _ = try? tag.withUnsafeBytes { try socket.send($0) }
                _ = try? socket.sendStream(seed: index, count: bytes)
                try? socket.shutdown(.write)
                let result = (try? socket.receiveStream(seed: 100 + index)) ?? (-1, nil)
                lock.lock(); clientResults[index] = result; lock.unlock()
            }
        }
        for join in joins { #expect(join(60), "a client hung") }
        #expect(server(60), "the server hung")
        for index in 0..<8 {
            #expect(serverResults[index].0 == bytes && serverResults[index].1 == nil, "A -> B stream \(index): \(serverResults[index])")
            #expect(clientResults[index].0 == bytes && clientResults[index].1 == nil, "B -> A stream \(index): \(clientResults[index])")
        }
        // Ownership, as `netmp stat` shows it: connections on both cores, each on its hash owner.
        let owners = clients.compactMap { $0?.channel.owner }
        #expect(Set(owners) == [0, 1], "owners: \(owners)")
        let snapshot = try #require(pair.a.statsSnapshot() as StatsSnapshot?)
        for connection in snapshot.connections {
            let tuple = FourTuple(local: connection.local, remote: connection.remote)
            #expect(connection.core == pair.a.steering.owner(of: tuple), "\(tuple) shown on core \(connection.core)")
        }
        #expect(snapshot.cores.allSatisfy { $0.messages > 0 })
        // Straight wiring: the "kernel" delivers each flow on its owner's queue, nothing is forwarded.
        let forwardedByCore: [UInt64] = snapshot.cores.map { $0.forwarded }
        #expect(forwardedByCore == [0, 0])
        listener.close()
        clients.forEach { $0?.close() }
    }

    /// Queues wired crosswise: every TCP frame arrives on the wrong core and is forwarded to
    /// its owner by message; the transfer is still exact.
    @Test func crossedQueues_framesForwardedToOwner_streamIntact() throws {
        let pair = try StackPair(cores: 2, crossed: true)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7001)
        try pair.streamOnce(to: listener, port: 7001, seed: 3, bytes: 4 << 20)
        let a: StatsSnapshot = try #require(pair.a.statsSnapshot())
        let b: StatsSnapshot = try #require(pair.b.statsSnapshot())
        let cores: [StatsSnapshot.CoreStats] = a.cores + b.cores
        let forwarded: UInt64 = cores.reduce(0) { $0 + $1.forwarded }
        let arrived: UInt64 = cores.reduce(0) { $0 + $1.framesIn }
        print("crossed queues: \(forwarded) of \(arrived) frames forwarded")
        #expect(forwarded > 1000)
        listener.close()
    }
}
