import Glibc
import NetMPRuntime
import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// A port held in IPv4's namespace and in IPv6's apart, as Linux's bind conflicts allow:
/// the two sockets of nginx's `listen 80; listen [::]:80;` (an IPv4 one and a v6-only
/// one) share the number, each taking its own family's peers; a dual-stack socket needs
/// it free in both.
@Suite(.serialized) struct FamilyPortTests {
    func expectErrno(_ errno: Int32, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        do { try body(); Issue.record("no error, expected errno \(errno)", sourceLocation: sourceLocation) } catch {
            #expect((error as? SocketError)?.errno == errno, "got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func listenersOfEachFamily_shareThePort_eachAcceptsItsOwn() throws {
        let pair = try StackPair(cores: 2, ipv6: true)
        defer { pair.stop() }
        let four = StreamSocket(stack: pair.b)
        try four.bind(Endpoint(IPv4Address.any, 9500))
        try four.listen()
        let six = StreamSocket(client: pair.b.primary, family: .ipv6)
        try six.setV6Only(true)
        try six.bind(Endpoint(IPv6Address.any, 9500))
        try six.listen()
        let both = StreamSocket(client: pair.b.primary, family: .ipv6)
        expectErrno(EADDRINUSE) { try both.bind(Endpoint(IPv6Address.any, 9500)) }

        for (listener, peer) in [(four, Endpoint(StackPair.addressB, 9500)), (six, Endpoint(StackPair.address6B, 9500))] {
            let client = StreamSocket(client: pair.a.primary, family: peer.address.isIPv4 ? .ipv4 : .ipv6)
            try client.connect(to: peer)
            let accepted = try listener.accept()
            #expect(try accepted.peerAddress() == client.localAddress, "\(peer) reached its own family's listener")
            accepted.close(); client.close()
        }
        // Closing the IPv4 listener frees IPv4's half only.
        four.close()
        let again = StreamSocket(stack: pair.b)
        try again.bind(Endpoint(IPv4Address.any, 9500))
        expectErrno(EADDRINUSE) { try StreamSocket(client: pair.b.primary, family: .ipv6).bind(Endpoint(IPv6Address.any, 9500)) }
        again.close(); six.close(); both.close()
        try StreamSocket(client: pair.b.primary, family: .ipv6).bind(Endpoint(IPv6Address.any, 9500)) // both free
    }

    @Test func datagramSocketsOfEachFamily_shareThePort() throws {
        let pair = try StackPair(cores: 2, ipv6: true)
        defer { pair.stop() }
        let four = DatagramSocket(stack: pair.b)
        try four.bind(Endpoint(IPv4Address.any, 9501))
        let six = DatagramSocket(stack: pair.b, family: .ipv6)
        try six.setV6Only(true)
        try six.bind(Endpoint(IPv6Address.any, 9501))
        expectErrno(EADDRINUSE) { try DatagramSocket(stack: pair.b, family: .ipv6).bind(Endpoint(IPv6Address.any, 9501)) }
        let sender = DatagramSocket(stack: pair.a, family: .ipv6)
        for (socket, peer, text) in [(four, Endpoint(StackPair.addressB, 9501), "four"), (six, Endpoint(StackPair.address6B, 9501), "six")] {
            _ = try Array(text.utf8).withUnsafeBytes { try sender.send($0, to: peer) }
            socket.setReceiveTimeout(2_000_000_000)
            var buffer = [UInt8](repeating: 0, count: 16)
            let (length, _) = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) }
            #expect(String(decoding: buffer[0..<length], as: UTF8.self) == text)
        }
        four.close(); six.close(); sender.close()
    }
}

/// SO_REUSEPORT in the port table: sockets that all set it share a port, each holder
/// counted, so the port is free only once the last lets go; one that did not set it, or a
/// port held by one that did not, is refused; an ephemeral port is never a shared one.
@Suite struct SharedPortTests {
    @Test func sharedHolders_counted_untilTheLastLetsGo() {
        let table = PortTable(seed: 1)
        #expect(table.reserve(7300, for: 1, sharing: true) == .success(7300))
        #expect(table.reserve(7300, for: 2, sharing: true) == .success(7300)) // another client
        #expect(table.reserve(7300, for: 1, sharing: true) == .success(7300)) // a second socket of the first
        #expect(table.reserve(7300, for: 3) == .failure(SocketError(EADDRINUSE)))
        #expect(table.isHeld(7300, by: 1) && table.isHeld(7300, by: 2) && !table.isHeld(7300, by: 3))
        table.release(7300, ifHeldBy: 1)
        #expect(table.isHeld(7300, by: 1)) // its other socket still holds it
        table.release(7300, ifHeldBy: 1)
        table.release(7300, ifHeldBy: 3) // not a holder: nothing happens
        #expect(table.isReserved(7300) && !table.isHeld(7300, by: 1))
        table.releaseAll(of: 2)
        #expect(!table.isReserved(7300))
        // Held without sharing: nobody joins, sharing or not.
        #expect(table.reserve(7301, for: 1) == .success(7301))
        #expect(table.reserve(7301, for: 2, sharing: true) == .failure(SocketError(EADDRINUSE)))
        // Port 0 picks a port nobody holds, even to share.
        if case .success(let port) = table.reserve(0, for: 4, sharing: true) {
            #expect(port != 7300 && port != 7301 && table.isHeld(port, by: 4))
        } else {
            Issue.record("no ephemeral port")
        }
    }

    /// Sharing is within one user, as Linux's sk_reuseport_match: a program of another
    /// user cannot join a group and take a share of its connections or datagrams.
    @Test func sharedPort_onlyAmongOneUsersSockets() {
        let table = PortTable(seed: 1)
        #expect(table.reserve(7400, for: 1, uid: 1000, sharing: true) == .success(7400))
        #expect(table.reserve(7400, for: 2, uid: 1001, sharing: true) == .failure(SocketError(EADDRINUSE)))
        #expect(table.reserve(7400, for: 2, uid: 0, sharing: true) == .failure(SocketError(EADDRINUSE))) // root too
        #expect(table.reserve(7400, for: 3, uid: 1000, sharing: true) == .success(7400))
        #expect(table.isHeld(7400, by: 1) && !table.isHeld(7400, by: 2) && table.isHeld(7400, by: 3))
    }

    /// Two UDP sockets sharing a port on B: datagrams from many senders on A are spread
    /// over both, each sender's datagrams always reaching the same one (a flow stays put),
    /// and a third socket that did not set SO_REUSEPORT is refused.
    @Test func udpSocketsSharingAPort_takeFlowsByTheirHash() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let receivers = [DatagramSocket(stack: pair.b), DatagramSocket(stack: pair.b)]
        for receiver in receivers {
            receiver.setReusePort(true)
            try receiver.bind(Endpoint(IPv4Address(0), 9300))
            receiver.setReceiveTimeout(200_000_000)
        }
        let plain = DatagramSocket(stack: pair.b)
        do { try plain.bind(Endpoint(IPv4Address(0), 9300)); Issue.record("a socket without SO_REUSEPORT joined") } catch {
            #expect(error.errno == EADDRINUSE)
        }
        // Sixteen senders, each its own flow, three datagrams each (the first may wait for ARP).
        var takers: [Int: Set<Int>] = [:] // sender -> receivers that got its datagrams
        for sender in 0..<16 {
            let socket = DatagramSocket(stack: pair.a)
            for _ in 0..<3 {
                let byte = [UInt8(sender)]
                _ = try byte.withUnsafeBytes { try socket.send($0, to: Endpoint(StackPair.addressB, 9300)) }
            }
            var buffer = [UInt8](repeating: 0, count: 16)
            var idle = 0
            while idle < 2 {
                var got = false
                for (index, receiver) in receivers.enumerated() {
                    if let (length, _) = try? buffer.withUnsafeMutableBytes({ try receiver.receive(into: $0, dontWait: true) }),
                       length == 1 {
                        takers[Int(buffer[0]), default: []].insert(index)
                        got = true
                    }
                }
                if !got { idle += 1; usleep(20_000) }
            }
            socket.close()
        }
        #expect(takers.count == 16, "senders heard: \(takers.keys.sorted())")
        #expect(takers.values.allSatisfy { $0.count == 1 }, "a flow was split: \(takers)")
        let perReceiver = [0, 1].map { index in takers.values.filter { $0.contains(index) }.count }
        #expect(perReceiver.allSatisfy { $0 > 0 }, "flows per socket: \(perReceiver)")
        for receiver in receivers { receiver.close() }
    }
}
