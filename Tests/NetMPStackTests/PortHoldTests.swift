import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// A connection tells the owner's port-hold observer (the stack's port table) when it
/// starts and stops holding its local port: from its entry into the table to its end,
/// TIME-WAIT included, with its own SO_REUSEADDR/SO_REUSEPORT, or its listener's for an
/// accepted one.
@Suite struct PortHoldTests {
    struct Change: Equatable { var port: UInt16; var reuse: PortReuse; var held: Bool }

    @Test func holds_fromTheFirstSegment_toTheEndOfTimeWait() throws {
        let host = HostOffloadTests().offloadingHost()
        let tcp = host.tcp!
        var changes: [Change] = []
        tcp.portHoldChanged = { port, reuse, held in
            #expect(!port.ipv6)
            changes.append(Change(port: port.port, reuse: reuse, held: held))
        }
        let listening = PortReuse(address: true, uid: 1000), connecting = PortReuse(port: true, uid: 1001)
        try tcp.listen(port: 80, reuse: listening)
        var link = CollectingSink()
        var now = Instant.zero
        let client = try tcp.connect(from: IPAddress(Lab.us), to: Endpoint(Lab.us, 80), now: now, reuse: connecting)
        let clientPort = client.tuple.local.port
        #expect(changes == [Change(port: clientPort, reuse: connecting, held: true)])
        tcp.settle(client, now: now, host: host, sink: &link)
        host.receiveLoopedFrames(now: now, sink: &link)
        let server = try #require(tcp.accept(port: 80))
        #expect(changes.last == Change(port: 80, reuse: listening, held: true)) // from its SYN, as its listener shares
        #expect(changes.count == 2)

        // The client closes first: the server's end leaves at once, the client's holds
        // its port through TIME-WAIT.
        closeOverLoopback(client, then: server, host: host, now: now, link: &link)
        #expect(client.state == .timeWait && server.state == .closed)
        #expect(changes.count == 3 && changes.last == Change(port: 80, reuse: listening, held: false))
        now = now + .seconds(30)
        tcp.tick(now: now, host: host, sink: &link)
        #expect(changes.count == 3, "TIME-WAIT lets its port go early")
        now = now + .seconds(31)
        tcp.tick(now: now, host: host, sink: &link)
        #expect(changes.count == 4 && changes.last == Change(port: clientPort, reuse: connecting, held: false))
        #expect(tcp.connectionCount == 0)
    }
}

/// Ephemeral ports as RFC 6056's double-hash selection picks them (Linux's): where the
/// search starts depends on a secret and the peer, so ports are not predictable from one
/// stack to another or from one peer to another; one peer's connections take distinct
/// ports; and the search covers the whole range.
@Suite struct EphemeralPortTests {
    func endpoints(_ secret: UInt64) -> TCPEndpoints {
        TCPEndpoints(configuration: TCPConfiguration(), secret: (secret, secret &* 31))
    }

    @Test func startDependsOnTheSecretAndThePeer() throws {
        let peerA = Endpoint(Lab.peer, 80), peerB = Endpoint(IPv4Address(10, 77, 0, 9), 443)
        let first = try (1...8).map { try endpoints($0).connect(from: IPAddress(Lab.us), to: peerA, now: .zero).tuple.local.port }
        #expect(Set(first).count >= 6, "\(first)")
        let tcp = endpoints(1)
        let a = try (0..<4).map { _ in try tcp.connect(from: IPAddress(Lab.us), to: peerA, now: .zero).tuple.local.port }
        let b = try tcp.connect(from: IPAddress(Lab.us), to: peerB, now: .zero).tuple.local.port
        #expect(Set(a).count == 4 && !a.contains(b), "\(a) \(b)")
        #expect(a.allSatisfy { TCPEndpoints.ephemeralPorts.contains($0) })
    }

    @Test func searchCoversTheWholeRange() throws {
        let tcp = endpoints(5)
        for wanted in [TCPEndpoints.ephemeralPorts.lowerBound, 45_000, TCPEndpoints.ephemeralPorts.upperBound] {
            let socket = try tcp.connect(from: IPAddress(Lab.us), to: Endpoint(Lab.peer, 80), now: .zero,
                                         acceptable: { $0.local.port == wanted })
            #expect(socket.tuple.local.port == wanted)
        }
        #expect(throws: TCPTableError.noEphemeralPorts) {
            try tcp.connect(from: IPAddress(Lab.us), to: Endpoint(Lab.peer, 80), now: .zero, acceptable: { _ in false })
        }
    }
}
