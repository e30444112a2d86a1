import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// Frames a host sends to its own address (programs on one stack talking to each other)
/// are received by the host itself and never reach the link.
@Suite struct HostLoopbackTests {
    /// A host over a link that offloads checksums and segmentation, as the TAP does.
    func host() -> Host { HostOffloadTests().offloadingHost() }

    /// A connection from the host to its own listener: the handshake, 3 MiB each way and
    /// both closes run through the host's loopback in super-segments, the bytes arrive
    /// whole and in order, and not one frame goes to the link (which has no neighbour
    /// resolved: a frame that went there would have asked ARP for our own address).
    @Test func connectionToOwnAddress_carriesBothWays_neverTouchesTheLink() throws {
        let host = host()
        let tcp = host.tcp!
        try tcp.listen(port: 80)
        var link = CollectingSink()
        var now = Instant.zero
        let client = try tcp.connect(from: IPAddress(Lab.us), to: Endpoint(Lab.us, 80), now: now)
        tcp.settle(client, now: now, host: host, sink: &link)
        host.receiveLoopedFrames(now: now, sink: &link)
        let server = try #require(tcp.accept(port: 80))
        #expect(client.state == .established && server.state == .established)
        #expect(server.tuple.remote == client.tuple.local && server.tuple.local == Endpoint(Lab.us, 80))

        let length = 3 << 20
        let (data, got) = exchangeOverLoopback(client, server, length: length, host: host, now: &now, link: &link)
        #expect(got[0] == data && got[1] == data, "received \(got[0].count) and \(got[1].count) of \(length)")
        #expect(host.counters.superFramesIn > 0, "the loopback carried no super-segment")

        client.close(now: now)
        tcp.settle(client, now: now, host: host, sink: &link)
        host.receiveLoopedFrames(now: now, sink: &link)
        #expect(server.atEndOfStream && server.state == .closeWait)
        server.close(now: now)
        tcp.settle(server, now: now, host: host, sink: &link)
        host.receiveLoopedFrames(now: now, sink: &link)
        #expect(client.state == .timeWait && server.state == .closed, "\(client.state) \(server.state)")
        #expect(link.frames.isEmpty, "\(link.frames.count) frames went to the link")
        #expect(host.counters.framesLooped > 0 && host.counters.framesOut == 0)
        #expect(host.counters.drops.total == 0)
    }

    /// A connect to a port of our own address that nobody listens on is refused at once,
    /// by the host's own RST, as Linux refuses one over its loopback.
    @Test func connectToOwnClosedPort_refused() throws {
        let host = host()
        var link = CollectingSink()
        let client = try host.tcp!.connect(from: IPAddress(Lab.us), to: Endpoint(Lab.us, 81), now: .zero)
        host.tcp!.settle(client, now: .zero, host: host, sink: &link)
        host.receiveLoopedFrames(now: .zero, sink: &link)
        #expect(client.state == .closed && client.error == .connectionRefused)
        #expect(link.frames.isEmpty)
    }

    /// UDP to our own address reaches our own port in order, with our address and port as
    /// its source; a port nobody bound answers with port unreachable, which comes back to
    /// the sender as an ICMP error. The loopback holds what it has room for: the rest is
    /// dropped and counted, and once taken the queue carries on past its end.
    @Test func datagramsToOwnAddress_deliveredInOrder_overflowCounted() throws {
        let host = host()
        var link = CollectingSink()
        var delivered: [(payload: [UInt8], source: Endpoint)] = []
        host.udpReceiver = { payload, arrival in
            guard arrival.destination.port == 6000 else { return .noSocket }
            delivered.append((Array(payload), arrival.source))
            return .delivered
        }
        var errors: [ICMPErrorReport] = []
        host.icmpErrorHandler = { errors.append($0) }
        func send(_ count: Int, from first: Int) {
            for n in first..<(first + count) {
                _ = host.sendUDP(from: 5000, to: Endpoint(Lab.us, 6000), length: 1400, now: .zero, sink: &link) { out in
                    out.storeBytes(of: UInt32(n).bigEndian, as: UInt32.self)
                }
            }
        }
        for round in 0..<3 {
            send(8000, from: round * 8000)
            host.receiveLoopedFrames(now: .zero, sink: &link)
        }
        let numbers = delivered.map { $0.payload.withUnsafeBytes { UInt32(bigEndian: $0.load(as: UInt32.self)) } }
        #expect(delivered.allSatisfy { $0.source == Endpoint(Lab.us, 5000) && $0.payload.count == 1400 })
        #expect(numbers == numbers.sorted() && Set(numbers).count == numbers.count)
        let dropped = host.counters.drops[.loopbackQueueFull]
        #expect(dropped > 0 && delivered.count + Int(dropped) == 24_000, "\(delivered.count) delivered, \(dropped) dropped")
        #expect(delivered.count > 3 * 5000, "the queue held \(delivered.count) of 24000")

        _ = host.sendUDP(from: 5000, to: Endpoint(Lab.us, 6001), length: 10, now: .zero, sink: &link) { _ in }
        host.receiveLoopedFrames(now: .zero, sink: &link)
        #expect(errors.count == 1 && errors.first?.kind == .destinationUnreachable(code: 3))
        #expect(host.counters.drops[.udpNoSocket] == 1)
        #expect(link.frames.isEmpty)
    }
}

/// `first` closes, then `second`, each close's segments carried through the host's
/// loopback at once: `first` ends in TIME-WAIT, `second` closed.
func closeOverLoopback(_ first: TCPSocket, then second: TCPSocket, host: Host, now: Instant, link: inout CollectingSink) {
    for socket in [first, second] {
        socket.close(now: now)
        host.tcp!.settle(socket, now: now, host: host, sink: &link)
        host.receiveLoopedFrames(now: now, sink: &link)
    }
}

/// Writes `length` bytes from each end of a connection of the host to itself and reads
/// what arrives, through the host's loopback, one millisecond of virtual time a round;
/// returns the bytes sent and what the server and the client received.
func exchangeOverLoopback(_ client: TCPSocket, _ server: TCPSocket, length: Int, host: Host, now: inout Instant,
                          link: inout CollectingSink) -> (data: [UInt8], got: [[UInt8]]) {
    let tcp = host.tcp!
    let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
    var sent = [0, 0], got: [[UInt8]] = [[], []]
    let ends = [client, server]
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    for _ in 0..<20_000 where got[0].count < length || got[1].count < length {
        for (i, socket) in ends.enumerated() {
            if sent[i] < length {
                sent[i] += data[sent[i]..<min(length, sent[i] + 200_000)].withUnsafeBytes { socket.write($0) }
            }
            let n = buffer.withUnsafeMutableBytes { socket.read(into: $0) }
            got[1 - i].append(contentsOf: buffer[0..<n])
            tcp.settle(socket, now: now, host: host, sink: &link)
        }
        host.receiveLoopedFrames(now: now, sink: &link)
        now = now + .milliseconds(1)
        host.tick(now: now, sink: &link)
    }
    return (data, got)
}
