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
        client.close(now: now)
        tcp.settle(client, now: now, host: host, sink: &link)
        host.receiveLoopedFrames(now: now, sink: &link)
        server.close(now: now)
        tcp.settle(server, now: now, host: host, sink: &link)
        host.receiveLoopedFrames(now: now, sink: &link)
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
