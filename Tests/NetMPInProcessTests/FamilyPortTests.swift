import Glibc
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPStackProcess
import NetMPSystem
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
        // SO_REUSEADDR, as servers set it: the accepted connections that closed first stay
        // in TIME-WAIT on the port, and hold it against a bind without it (Linux's rule).
        func reusing(_ socket: StreamSocket) -> StreamSocket { socket.setReuseAddress(true); return socket }
        let four = reusing(StreamSocket(stack: pair.b))
        try four.bind(Endpoint(IPv4Address.any, 9500))
        try four.listen()
        let six = reusing(StreamSocket(client: pair.b.primary, family: .ipv6))
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
        let again = reusing(StreamSocket(stack: pair.b))
        try again.bind(Endpoint(IPv4Address.any, 9500))
        expectErrno(EADDRINUSE) { try reusing(StreamSocket(client: pair.b.primary, family: .ipv6)).bind(Endpoint(IPv6Address.any, 9500)) }
        again.close(); six.close(); both.close()
        try reusing(StreamSocket(client: pair.b.primary, family: .ipv6)).bind(Endpoint(IPv6Address.any, 9500)) // both free
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
        #expect(table.reserve(7300, for: 1, reuse: PortReuse(port: true)) == .success(7300))
        #expect(table.reserve(7300, for: 2, reuse: PortReuse(port: true)) == .success(7300)) // another client
        #expect(table.reserve(7300, for: 1, reuse: PortReuse(port: true)) == .success(7300)) // a second socket of the first
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
        #expect(table.reserve(7301, for: 2, reuse: PortReuse(port: true)) == .failure(SocketError(EADDRINUSE)))
        // Port 0 picks a port nobody holds, even to share.
        if case .success(let port) = table.reserve(0, for: 4, reuse: PortReuse(port: true)) {
            #expect(port != 7300 && port != 7301 && table.isHeld(port, by: 4))
        } else {
            Issue.record("no ephemeral port")
        }
    }

    /// Sharing is within one user, as Linux's sk_reuseport_match: a program of another
    /// user cannot join a group and take a share of its connections or datagrams.
    @Test func sharedPort_onlyAmongOneUsersSockets() {
        let table = PortTable(seed: 1)
        #expect(table.reserve(7400, for: 1, reuse: PortReuse(port: true, uid: 1000)) == .success(7400))
        #expect(table.reserve(7400, for: 2, reuse: PortReuse(port: true, uid: 1001)) == .failure(SocketError(EADDRINUSE)))
        #expect(table.reserve(7400, for: 2, reuse: PortReuse(port: true, uid: 0)) == .failure(SocketError(EADDRINUSE))) // root too
        #expect(table.reserve(7400, for: 3, reuse: PortReuse(port: true, uid: 1000)) == .success(7400))
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
            // Until this sender is heard (bounded: a sanitized build is slow), then two quiet
            // turns, so a datagram of the flow that went to the other socket would be seen.
            var buffer = [UInt8](repeating: 0, count: 16)
            var idle = 0
            var turns = 0
            while idle < 2 && turns < 250 {
                turns += 1
                var got = false
                for (index, receiver) in receivers.enumerated() {
                    if let (length, _) = try? buffer.withUnsafeMutableBytes({ try receiver.receive(into: $0, dontWait: true) }),
                       length == 1 {
                        takers[Int(buffer[0]), default: []].insert(index)
                        got = true
                    }
                }
                if !got {
                    if takers[sender] != nil { idle += 1 }
                    usleep(20_000)
                }
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

/// Connections hold their port against binds until they end, TIME-WAIT included, as
/// Linux's bind bucket holds them: only SO_REUSEADDR on both sides, or SO_REUSEPORT on both
/// within one user, lets a socket bind the port meanwhile; an ephemeral port is never one
/// a connection holds.
@Suite struct ConnectionPortTests {
    @Test func connectionHold_refusesBinds_untilItEnds() {
        let table = PortTable(seed: 0)
        let port = FamilyPort(7500, ipv6: false)
        table.connection(on: port, PortReuse(), held: true) // a client's, without SO_REUSEADDR
        #expect(table.reserve(7500, for: 1) == .failure(SocketError(EADDRINUSE)))
        #expect(table.reserve(7500, for: 1, reuse: PortReuse(address: true)) == .failure(SocketError(EADDRINUSE)))
        #expect(table.reserve(7500, families: .ipv6, for: 1) == .success(7500)) // IPv6's namespace is apart
        table.release(7500, families: .ipv6, ifHeldBy: 1)
        table.connection(on: port, PortReuse(), held: false)
        #expect(table.reserve(7500, for: 1) == .success(7500))
        table.release(7500, ifHeldBy: 1)
    }

    @Test func reuseAddressOnBoth_admitsTheBind() {
        let table = PortTable(seed: 0)
        let port = FamilyPort(7501, ipv6: false)
        let reusing = PortReuse(address: true, uid: 1000)
        table.connection(on: port, reusing, held: true) // two accepted connections of a listener
        table.connection(on: port, reusing, held: true) // that set SO_REUSEADDR
        #expect(table.reserve(7501, for: 1) == .failure(SocketError(EADDRINUSE)))
        #expect(table.reserve(7501, for: 1, reuse: PortReuse(address: true, uid: 1001)) == .success(7501))
        table.release(7501, ifHeldBy: 1)
        table.connection(on: port, PortReuse(), held: true) // and one that did not
        #expect(table.reserve(7501, for: 1, reuse: PortReuse(address: true)) == .failure(SocketError(EADDRINUSE)))
        table.connection(on: port, PortReuse(), held: false)
        table.connection(on: port, reusing, held: false)
        #expect(table.reserve(7501, for: 1, reuse: PortReuse(address: true)) == .success(7501)) // one still holds it
        table.release(7501, ifHeldBy: 1)
        table.connection(on: port, reusing, held: false)
        #expect(table.reserve(7501, for: 2) == .success(7501))
    }

    @Test func reusePort_admitsOnlyTheSameUser() {
        let table = PortTable(seed: 0)
        table.connection(on: FamilyPort(7502, ipv6: false), PortReuse(port: true, uid: 1000), held: true)
        #expect(table.reserve(7502, for: 1, reuse: PortReuse(port: true, uid: 1001)) == .failure(SocketError(EADDRINUSE)))
        #expect(table.reserve(7502, for: 1, reuse: PortReuse(port: true, uid: 1000)) == .success(7502))
    }

    @Test func ephemeralPort_neverOneAConnectionHolds() {
        let table = PortTable(seed: 0) // its first ephemeral candidate is 32768
        table.connection(on: FamilyPort(32768, ipv6: false), PortReuse(address: true), held: true)
        let picked = table.reserve(0, for: 1, reuse: PortReuse(address: true))
        #expect(picked == .success(32769))
    }
}
