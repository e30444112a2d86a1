import Foundation
import Glibc
import NetMPRuntime
import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// UDP on the per-core runtime: per-core receive queues drained in turn, whole datagrams,
/// Linux's errnos.
@Suite(.serialized) struct DatagramSocketTests {
    func expectErrno(_ errno: Int32, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        do { try body(); Issue.record("no error, expected errno \(errno)", sourceLocation: sourceLocation) } catch {
            #expect((error as? SocketError)?.errno == errno, "got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Two senders on A (their home cores differ), one receiver on B with two reader
    /// threads: every datagram arrives once and whole, through both of B's cores.
    @Test func twoSenders_everyDatagramOnceAndWhole() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let receiver = DatagramSocket(stack: pair.b)
        try receiver.bind(Endpoint(IPv4Address(0), 9000))
        receiver.setReceiveTimeout(2_000_000_000)
        let senders = [DatagramSocket(stack: pair.a), DatagramSocket(stack: pair.a)]
        let perSender = 2000
        let lock = NSLock()
        nonisolated(unsafe) var seen: [Int: Int] = [:]
        nonisolated(unsafe) var corrupt = 0
        nonisolated(unsafe) var sentTotal = 0
        let readers = (0..<2).map { _ in
            spawnBounded {
                var buffer = [UInt8](repeating: 0, count: 2048)
                while let (length, _) = try? buffer.withUnsafeMutableBytes({ try receiver.receive(into: $0) }) {
                    let id = Int(buffer[0]) << 16 | Int(buffer[1]) << 8 | Int(buffer[2])
                    let intact = id == 0xFF_FFFF || length == 3 + id % 1400 && buffer[3..<length].allSatisfy { $0 == UInt8(truncatingIfNeeded: id) }
                    lock.lock(); seen[id, default: 0] += 1; if !intact { corrupt += 1 }; lock.unlock()
                }
            }
        }
        // Resolve the neighbour first (on both senders' home cores): like Linux, netmp keeps
        // only a few datagrams waiting for ARP and drops the rest.
        let warmUp = [UInt8](repeating: 0xFF, count: 3)
        for sender in senders {
            _ = try warmUp.withUnsafeBytes { try sender.send($0, to: Endpoint(StackPair.addressB, 9000)) }
        }
        for _ in 0..<2000 {
            lock.lock(); let warmed = seen[0xFF_FFFF] ?? 0; lock.unlock()
            if warmed == 2 { break }
            usleep(1000)
        }
        lock.lock(); seen[0xFF_FFFF] = nil; lock.unlock()
        let writers = senders.enumerated().map { index, sender in
            spawnBounded {
                for n in 0..<perSender {
                    let id = index * perSender + n
                    var datagram = [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: 3 + id % 1400)
                    datagram[0] = UInt8(id >> 16); datagram[1] = UInt8(truncatingIfNeeded: id >> 8); datagram[2] = UInt8(truncatingIfNeeded: id)
                    _ = try? datagram.withUnsafeBytes { try sender.send($0, to: Endpoint(StackPair.addressB, 9000)) }
                    // UDP may drop under overload; this test is not about that, so the senders
                    // keep at most 128 datagrams unread in all (ThreadSanitizer slows readers).
                    lock.lock(); sentTotal += 1; lock.unlock()
                    let deadline = Date().addingTimeInterval(10)
                    while Date() < deadline {
                        lock.lock(); let backlog = sentTotal - seen.count; lock.unlock() // warm-up removed from seen
                        if backlog < 128 { break }
                        usleep(200)
                    }
                }
            }
        }
        for writer in writers { #expect(writer(30)) }
        for reader in readers { #expect(reader(30)) } // they stop after 2 s of silence
        #expect(corrupt == 0)
        #expect(seen.count == 2 * perSender, "\(2 * perSender - seen.count) datagrams missing")
        #expect(seen.values.allSatisfy { $0 == 1 }, "duplicates")
        let b: StatsSnapshot = try #require(pair.b.statsSnapshot())
        #expect(b.cores.allSatisfy { $0.framesIn > UInt64(perSender / 2) }, "datagrams came through both cores: \(b.cores.map(\.framesIn))")
        receiver.close()
        senders.forEach { $0.close() }
    }

    @Test func errnos_truncation_connectFilter_broadcast() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let a = DatagramSocket(stack: pair.a)
        let big = [UInt8](repeating: 1, count: 1473)
        expectErrno(EMSGSIZE) { _ = try big.withUnsafeBytes { try a.send($0, to: Endpoint(StackPair.addressB, 9)) } }
        expectErrno(EDESTADDRREQ) { _ = try big.withUnsafeBytes { try a.send(UnsafeRawBufferPointer(rebasing: $0[0..<10])) } }
        expectErrno(ENETUNREACH) { _ = try big.withUnsafeBytes { try a.send(UnsafeRawBufferPointer(rebasing: $0[0..<10]), to: Endpoint(IPv4Address(192, 0, 2, 1), 9)) } }
        expectErrno(EACCES) { _ = try big.withUnsafeBytes { try a.send(UnsafeRawBufferPointer(rebasing: $0[0..<10]), to: Endpoint(IPv4Address(10, 88, 0, 255), 9100)) } }
        #expect(a.localAddress.port != 0, "the first send bound an ephemeral port")
        let b = DatagramSocket(stack: pair.b)
        try b.bind(Endpoint(IPv4Address(0), 9100))
        let clash = DatagramSocket(stack: pair.b)
        expectErrno(EADDRINUSE) { try clash.bind(Endpoint(IPv4Address(0), 9100)) }
        b.nonBlocking = true
        var small = [UInt8](repeating: 0, count: 4)
        expectErrno(EAGAIN) { _ = try small.withUnsafeMutableBytes { try b.receive(into: $0) } }
        b.nonBlocking = false
        b.setReceiveTimeout(2_000_000_000)

        // Broadcast with SO_BROADCAST reaches B; a short buffer gets the head, the full length says it was cut.
        a.setBroadcast(true)
        #expect(try big.withUnsafeBytes { try a.send(UnsafeRawBufferPointer(rebasing: $0[0..<100]), to: Endpoint(IPv4Address(10, 88, 0, 255), 9100)) } == 100)
        let (length, from) = try small.withUnsafeMutableBytes { try b.receive(into: $0) }
        #expect(length == 100 && from == a.localAddress && small == [1, 1, 1, 1])

        // Connected, B hears only its peer: a third socket's datagram is refused (port unreachable).
        let other = DatagramSocket(stack: pair.a)
        try b.connect(to: a.localAddress)
        #expect(try b.peerAddress() == a.localAddress)
        _ = try big.withUnsafeBytes { try other.send(UnsafeRawBufferPointer(rebasing: $0[0..<5]), to: Endpoint(StackPair.addressB, 9100)) }
        let hello = Array("hello".utf8)
        _ = try hello.withUnsafeBytes { try a.send($0, to: Endpoint(StackPair.addressB, 9100)) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let got = try buffer.withUnsafeMutableBytes { try b.receive(into: $0) }
        #expect(got.length == 5 && Array(buffer[0..<5]) == hello && got.from == a.localAddress)
        usleep(50_000)
        let stats: StatsSnapshot = try #require(pair.b.statsSnapshot())
        let noSocket = stats.cores.reduce(0) { total, core in total + (core.drops.first { $0.reason == "udp-no-socket" }?.count ?? 0) }
        #expect(noSocket == 1, "the stranger's datagram was refused")
        a.close(); b.close(); clash.close(); other.close()
    }

    /// Linux's __udp4_lib_err: a port unreachable about a datagram a connected socket sent
    /// to its peer fails that socket's next call with ECONNREFUSED, once; an unconnected
    /// socket hears nothing of it (without IP_RECVERR).
    @Test func connectedSocket_portUnreachable_nextCallRefused() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let connected = DatagramSocket(stack: pair.a)
        try connected.connect(to: Endpoint(StackPair.addressB, 9200)) // nobody listens there
        let loose = DatagramSocket(stack: pair.a)
        let ping = Array("ping".utf8)
        _ = try ping.withUnsafeBytes { try loose.send($0, to: Endpoint(StackPair.addressB, 9200)) }
        _ = try ping.withUnsafeBytes { try connected.send($0) }
        var buffer = [UInt8](repeating: 0, count: 16)
        connected.setReceiveTimeout(2_000_000_000)
        expectErrno(ECONNREFUSED) { _ = try buffer.withUnsafeMutableBytes { try connected.receive(into: $0) } }
        #expect(connected.takeError() == 0 && !connected.readiness.contains(.error), "reported once")
        loose.setReceiveTimeout(200_000_000)
        expectErrno(EAGAIN) { _ = try buffer.withUnsafeMutableBytes { try loose.receive(into: $0) } }
        // The next datagram draws the next refusal, now through SO_ERROR and poll.
        _ = try ping.withUnsafeBytes { try connected.send($0) }
        for _ in 0..<200 where !connected.readiness.contains(.error) { usleep(5000) }
        #expect(connected.readiness.contains(.error) && connected.takeError() == ECONNREFUSED)
        connected.close(); loose.close()
    }
}
