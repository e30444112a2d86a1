import Foundation
import Glibc
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPStackProcess
import NetMPSystem
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
        let big = [UInt8](repeating: 1, count: 65_508) // past IPv4's 65,507 (larger than the MTU, a datagram is fragmented)
        expectErrno(EMSGSIZE) { _ = try big.withUnsafeBytes { try a.send($0, to: Endpoint(StackPair.addressB, 9)) } }
        expectErrno(EDESTADDRREQ) { _ = try big.withUnsafeBytes { try a.send(UnsafeRawBufferPointer(rebasing: $0[0..<10])) } }
        expectErrno(ENETUNREACH) { _ = try big.withUnsafeBytes { try a.send(UnsafeRawBufferPointer(rebasing: $0[0..<10]), to: Endpoint(IPv4Address(192, 0, 2, 1), 9)) } }
        expectErrno(EACCES) { _ = try big.withUnsafeBytes { try a.send(UnsafeRawBufferPointer(rebasing: $0[0..<10]), to: Endpoint(IPv4Address(10, 88, 0, 255), 9100)) } }
        #expect(a.localAddress.port != 0, "the first send bound an ephemeral port")
        #expect(a.localAddress.address == IPAddress(IPv4Address.any), "on the wildcard address, as Linux binds it")
        let aSeen = Endpoint(StackPair.addressA, a.localAddress.port) // how B sees A
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
        #expect(length == 100 && from == aSeen && small == [1, 1, 1, 1])

        // Connected, B hears only its peer: a third socket's datagram is refused (port unreachable).
        let other = DatagramSocket(stack: pair.a)
        try b.connect(to: aSeen)
        #expect(try b.peerAddress() == aSeen)
        #expect(b.localAddress == Endpoint(StackPair.addressB, 9100), "connected: named by the address it sends from")
        _ = try big.withUnsafeBytes { try other.send(UnsafeRawBufferPointer(rebasing: $0[0..<5]), to: Endpoint(StackPair.addressB, 9100)) }
        let hello = Array("hello".utf8)
        _ = try hello.withUnsafeBytes { try a.send($0, to: Endpoint(StackPair.addressB, 9100)) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let got = try buffer.withUnsafeMutableBytes { try b.receive(into: $0) }
        #expect(got.length == 5 && Array(buffer[0..<5]) == hello && got.from == aSeen)
        // The cores publish their counters a few times a second: read until they show it.
        #expect(noSocketDrops(pair.b, reaching: 1) == 1, "the stranger's datagram was refused")
        try b.connect(to: nil)
        #expect(b.localAddress == Endpoint(IPv4Address.any, 9100), "dissolved: the wildcard again")
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

    /// Sockets that all set SO_REUSEADDR share a port (Linux's udp_lib_lport_inuse), and a
    /// broadcast goes to each of them (__udp4_lib_mcast_deliver), SO_REUSEPORT or not; a
    /// socket without SO_REUSEADDR may not join them, and one bound to the unicast address
    /// takes no broadcast.
    /// The datagrams `stack` refused for want of a socket, as its counters show once they
    /// reach `count` (or after 2 s, whatever they show then).
    func noSocketDrops(_ stack: NetworkStack, reaching count: Int) -> Int {
        var seen = -1
        for _ in 0..<200 {
            seen = (stack.statsSnapshot()?.cores ?? []).reduce(0) { total, core in
                total + Int(core.drops.first { $0.reason == "udp-no-socket" }?.count ?? 0)
            }
            if seen >= count { break }
            usleep(10_000)
        }
        return seen
    }

    /// On a driven pair, so that "nothing came" is known once every frame has crossed rather
    /// than assumed after a sleep.
    @Test func broadcast_reachesEverySocketSharingThePort() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let sharers = (0..<3).map { _ in DatagramSocket(stack: pair.b) }
        for (i, socket) in sharers.enumerated() {
            socket.setReuseAddress(true)
            if i == 2 { socket.setReusePort(true) }
            try pair.whileTurning { try socket.bind(Endpoint(i == 2 ? StackPair.addressB : IPv4Address(0), 9500)) }
            socket.nonBlocking = true
        }
        let latecomer = DatagramSocket(stack: pair.b)
        #expect(throws: SocketError(EADDRINUSE)) { try pair.whileTurning { try latecomer.bind(Endpoint(IPv4Address(0), 9500)) } }
        let sender = DatagramSocket(stack: pair.a)
        sender.setBroadcast(true)
        let hello = Array("to all".utf8)
        _ = try pair.whileTurning { try hello.withUnsafeBytes { try sender.send($0, to: Endpoint(IPv4Address(10, 88, 0, 255), 9500)) } }
        pair.settle()
        var buffer = [UInt8](repeating: 0, count: 16)
        for socket in sharers.prefix(2) {
            let got = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) }
            #expect(Array(buffer[0..<got.length]) == hello)
        }
        expectErrno(EAGAIN) { _ = try buffer.withUnsafeMutableBytes { try sharers[2].receive(into: $0) } }
        try pair.whileTurning { for socket in sharers + [latecomer, sender] { socket.close() } }
    }

    /// IP_RECVERR: every socket finds the error about its own datagram in its error queue,
    /// with the datagram's payload and destination, whichever core heard the ICMP (the
    /// sockets' home cores alternate, so some errors are forwarded to them).
    @Test func errorQueue_eachSocketGetsItsOwn_whicheverCoreHearsIt() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let sockets = (0..<4).map { _ in DatagramSocket(stack: pair.a) }
        for (i, socket) in sockets.enumerated() {
            socket.setReceiveErrors(i < 3, ipv6: false)
            let payload = Array("datagram \(i)".utf8)
            _ = try payload.withUnsafeBytes { try socket.send($0, to: Endpoint(StackPair.addressB, UInt16(9300 + i))) }
        }
        var buffer = [UInt8](repeating: 0, count: 64)
        for (i, socket) in sockets.prefix(3).enumerated() {
            for _ in 0..<400 where !socket.readiness.contains(.error) { usleep(5000) }
            let (length, error) = try buffer.withUnsafeMutableBytes { try socket.receiveError(into: $0) }
            #expect(Array(buffer[0..<length]) == Array("datagram \(i)".utf8))
            #expect(error.errorNumber == ECONNREFUSED && error.type == 3 && error.code == 3 && error.origin == DatagramError.originICMP)
            #expect(error.datagram.remote == Endpoint(StackPair.addressB, UInt16(9300 + i)) && error.offender == IPAddress(StackPair.addressB))
            expectErrno(EAGAIN) { _ = try buffer.withUnsafeMutableBytes { try socket.receiveError(into: $0) } }
        }
        // That a socket without the option hears nothing is checked in VirtualTimeTests,
        // where every frame is known to have crossed instead of after a sleep.

        // An error heard on the core that is not the socket's home goes there to be queued.
        let socket = sockets[0], home = try #require(socket.homeCore)
        let local = try #require(socket.localAddress.port == 0 ? nil : socket.localAddress.port)
        let error = DatagramError(errorNumber: EHOSTUNREACH, hard: false, origin: DatagramError.originICMP, type: 11, code: 0,
                                  offender: IPAddress(IPv4Address(10, 88, 0, 254)),
                                  datagram: FourTuple(local: Endpoint(StackPair.addressA, local), remote: Endpoint(StackPair.addressB, 9400)))
        pair.a.hearDatagramErrorForTesting(on: 1 - home, error, quoted: Array("far".utf8))
        for _ in 0..<400 where !socket.readiness.contains(.error) { usleep(5000) }
        #expect(socket.takeError() == EHOSTUNREACH, "pending even though soft: IP_RECVERR")
        let (length, heard) = try buffer.withUnsafeMutableBytes { try socket.receiveError(into: $0) }
        #expect(Array(buffer[0..<length]) == Array("far".utf8) && heard.errorNumber == EHOSTUNREACH && heard.type == 11)
        #expect(heard.offender == IPAddress(IPv4Address(10, 88, 0, 254)) && heard.datagram.remote == Endpoint(StackPair.addressB, 9400))
        for socket in sockets { socket.close() }
    }

    /// UDP over IPv6 between two stacks: a dual-stack socket on :: takes both families
    /// (IPv4 peers at their mapped addresses) and answers each; a v6-only socket refuses
    /// IPv4 (port unreachable, counted); one bound to an IPv6 address sends from it; the
    /// errnos of inet6_bind, IPV6_V6ONLY and udpv6_sendmsg; a connected socket learns of a
    /// port unreachable from ICMPv6 as from ICMP.
    @Test func ipv6Datagrams_bothFamiliesOneSocket_errnosAsLinux() throws {
        let pair = try StackPair(cores: 2, ipv6: true)
        defer { pair.stop() }
        let server = DatagramSocket(stack: pair.b, family: .ipv6)
        try server.bind(Endpoint(IPv6Address.any, 9300))
        server.setReceiveTimeout(2_000_000_000)
        #expect(server.localAddress == Endpoint(IPv6Address.any, 9300))
        let six = DatagramSocket(stack: pair.a, family: .ipv6), four = DatagramSocket(stack: pair.a)
        six.setReceiveTimeout(2_000_000_000); four.setReceiveTimeout(2_000_000_000)
        var buffer = [UInt8](repeating: 0, count: 64)
        func receive(_ socket: DatagramSocket) throws -> (String, Endpoint) {
            let (length, from) = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) }
            return (String(decoding: buffer[0..<min(length, buffer.count)], as: UTF8.self), from)
        }
        // The first datagram of each waits for the neighbour; both arrive.
        _ = try Array("six".utf8).withUnsafeBytes { try six.send($0, to: Endpoint(StackPair.address6B, 9300)) }
        _ = try Array("four".utf8).withUnsafeBytes { try four.send($0, to: Endpoint(StackPair.addressB, 9300)) }
        let got = [try receive(server), try receive(server)].sorted { $0.0 < $1.0 }
        #expect(got.map(\.0) == ["four", "six"])
        #expect(got[0].1 == Endpoint(StackPair.addressA, four.localAddress.port), "IPv4's source, as its mapped address")
        #expect(got[1].1 == Endpoint(StackPair.address6A, six.localAddress.port))
        for (text, peer) in got { _ = try Array(text.uppercased().utf8).withUnsafeBytes { try server.send($0, to: peer) } }
        #expect(try receive(six) == ("SIX", Endpoint(StackPair.address6B, 9300)))
        #expect(try receive(four) == ("FOUR", Endpoint(StackPair.addressB, 9300)))

        // v6-only: IPv4 to its port finds no socket (refused, counted), IPv6 arrives.
        let only6 = DatagramSocket(stack: pair.b, family: .ipv6)
        try only6.setV6Only(true)
        try only6.bind(Endpoint(IPv6Address.any, 9301))
        expectErrno(EINVAL) { try only6.setV6Only(false) } // fixed once bound
        only6.setReceiveTimeout(2_000_000_000)
        _ = try Array("refused".utf8).withUnsafeBytes { try four.send($0, to: Endpoint(StackPair.addressB, 9301)) }
        _ = try Array("taken".utf8).withUnsafeBytes { try six.send($0, to: Endpoint(StackPair.address6B, 9301)) }
        #expect(try receive(only6).0 == "taken")
        let ten = [UInt8](repeating: 0, count: 10)
        expectErrno(ENETUNREACH) { _ = try ten.withUnsafeBytes { try only6.send($0, to: Endpoint(StackPair.addressA, 9)) } }

        // Bound to its IPv6 address: named by it, sends from it.
        let bound = DatagramSocket(stack: pair.b, family: .ipv6)
        expectErrno(EADDRNOTAVAIL) { try bound.bind(Endpoint(IPv6Address("fd88::99")!, 0)) }
        try bound.bind(Endpoint(StackPair.address6B, 0))
        #expect(bound.localAddress.address == IPAddress(StackPair.address6B))
        _ = try Array("from".utf8).withUnsafeBytes { try bound.send($0, to: Endpoint(StackPair.address6A, six.localAddress.port)) }
        #expect(try receive(six) == ("from", bound.localAddress))
        expectErrno(ENETUNREACH) { _ = try ten.withUnsafeBytes { try bound.send($0, to: Endpoint(StackPair.addressA, 9)) } }

        // The errnos of the rest of the calls.
        expectErrno(EAFNOSUPPORT) { try DatagramSocket(stack: pair.a).bind(Endpoint(StackPair.address6A, 0)) }
        let mapped = DatagramSocket(stack: pair.a, family: .ipv6)
        try mapped.setV6Only(true)
        expectErrno(EINVAL) { try mapped.bind(Endpoint(StackPair.addressA, 0)) }
        expectErrno(ENETUNREACH) { _ = try ten.withUnsafeBytes { try six.send($0, to: Endpoint(IPv6Address("fd99::1")!, 9)) } }
        let big = [UInt8](repeating: 1, count: 65_528) // past IPv6's 65,527
        expectErrno(EMSGSIZE) { _ = try big.withUnsafeBytes { try six.send($0, to: Endpoint(StackPair.address6B, 9300)) } }
        // Larger than the MTU: in fragments, put back together by the other stack.
        #expect(try big.withUnsafeBytes { try six.send(UnsafeRawBufferPointer(rebasing: $0[0..<9000]), to: Endpoint(StackPair.address6B, 9300)) } == 9000)
        #expect(try receive(server).1.address == IPAddress(StackPair.address6A))

        // Connected to a port nobody holds: ICMPv6's port unreachable is its next call's error.
        let connected = DatagramSocket(stack: pair.a, family: .ipv6)
        try connected.connect(to: Endpoint(StackPair.address6B, 9399))
        #expect(connected.localAddress.address == IPAddress(StackPair.address6A), "named by the address it sends from")
        _ = try Array("ping".utf8).withUnsafeBytes { try connected.send($0) }
        connected.setReceiveTimeout(2_000_000_000)
        expectErrno(ECONNREFUSED) { _ = try receive(connected) }
        // The cores publish their counters a few times a second: read until they show it.
        #expect(noSocketDrops(pair.b, reaching: 2) == 2, "the IPv4 datagram to the v6-only port and the ping to 9399")
        for socket in [server, six, four, only6, bound, mapped, connected] { socket.close() }
    }
}
