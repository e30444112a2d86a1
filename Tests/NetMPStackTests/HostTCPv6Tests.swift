import NetMPStack
import NetMPTCP
import NetMPTestSupport
import NetMPWire
import Testing

/// TCP over IPv6 runs on the same engine, table and owner hash as IPv4's; only the
/// addresses, the pseudo-header, the MSS and the segmentation type differ.
@Suite struct HostTCPv6Tests {
    /// A host with its IPv6 addresses ready, TCP, and a link that offloads checksums and
    /// segmentation of both families, as the TAP does.
    func host() -> Host { HostOffloadTests().offloadingHost(Lab6.host()) }

    /// The segment a frame the host sent carries, checked against the IPv6 pseudo-header.
    func segment(_ frame: [UInt8]) throws -> (Sent6, TCPSegmentHeader) {
        let sent = try Sent6(frame)
        #expect(sent.header.nextHeader == IPProtocol.tcp)
        let header = try sent.payload.withUnsafeBytes {
            try TCPSegmentHeader(parsing: $0, addresses: .v6(source: sent.header.source, destination: sent.header.destination))
        }
        return (sent, header)
    }

    func syn(to port: UInt16) -> [UInt8] {
        var options = TCPOptions()
        options.maximumSegmentSize = 1440
        let header = TCPSegmentHeader(sourcePort: 40001, destinationPort: port, sequenceNumber: 1000, acknowledgmentNumber: 0,
                                      flags: .syn, window: 65535, options: options)
        var bytes = [UInt8](repeating: 0, count: header.headerLength)
        bytes.withUnsafeMutableBytes { _ = header.emit(into: $0, segmentLength: header.headerLength,
                                                       addresses: .v6(source: Lab6.peer, destination: Lab6.us)) }
        return Lab6.frame(ipv6Packet(upper: IPProtocol.tcp, payload: bytes, source: Lab6.peer, destination: Lab6.us))
    }

    /// A listener takes the families it was made for: an IPv4 one answers an IPv6 SYN as
    /// CLOSED does, an IPv6 one with a SYN-ACK from our address whose MSS leaves room for
    /// IPv6's longer header.
    @Test func listeners_takeTheirFamilyOnly() throws {
        let host = host()
        _ = host.feed(Lab6.solicitation(for: Lab6.us)) // the peer is known over IPv6
        _ = host.feed(Lab.arp(.request))               // and over IPv4
        try host.tcp!.listen(port: 80)
        let refused = try segment(try #require(host.feed(syn(to: 80)).first)).1
        #expect(refused.flags == [.rst, .ack] && refused.acknowledgmentNumber == 1001)

        try host.tcp!.listen(port: 81, families: .ipv6)
        let (sent, answer) = try segment(try #require(host.feed(syn(to: 81)).first))
        #expect(answer.flags == [.syn, .ack] && answer.acknowledgmentNumber == 1001)
        #expect(answer.options.maximumSegmentSize == 1440)
        #expect(sent.header.source == Lab6.us && sent.header.destination == Lab6.peer && sent.ethernet.destination == Lab.peerMAC)
        // The same SYN over IPv4 is not for the IPv6 listener.
        let v4 = try Sent(try #require(host.feed(Lab.tcp(flags: .syn, port: 81)).first))
        #expect(try v4.ip().destination == Lab.peer)
        #expect(host.counters.drops[.tcpNoSocket] == 2)
    }

    /// IPv4's ports and IPv6's are held apart: an IPv4 listener and an IPv6 one share port
    /// 80 (nginx's `listen 80; listen [::]:80;`), each answering its own family's SYNs; a
    /// dual-stack one cannot join them; stopping one leaves the other.
    @Test func listenersOfEachFamily_shareAPort() throws {
        let host = host()
        _ = host.feed(Lab6.solicitation(for: Lab6.us))
        _ = host.feed(Lab.arp(.request))
        let tcp = host.tcp!
        try tcp.listen(port: 80, families: .ipv4)
        try tcp.listen(port: 80, families: .ipv6)
        #expect(throws: TCPTableError.addressInUse) { try tcp.listen(port: 80, families: .both) }
        #expect(throws: TCPTableError.addressInUse) { try tcp.listen(port: 80, families: .ipv6) }
        #expect(try segment(try #require(host.feed(syn(to: 80)).first)).1.flags == [.syn, .ack])
        let v4 = try Sent(try #require(host.feed(Lab.tcp(flags: .syn, port: 80)).first))
        #expect(try v4.tcp().flags == [.syn, .ack])
        var sink = CollectingSink()
        tcp.stopListening(port: 80, families: .ipv4, now: .zero, host: host, sink: &sink)
        // The IPv4 connection still opening goes with its listener; the IPv6 one stays.
        #expect(sink.frames.count == 1)
        #expect(try Sent(try #require(sink.frames.first)).tcp().flags.contains(.rst))
        #expect(tcp.connectionCount == 1)
        let refused = try Sent(try #require(host.feed(Lab.tcp(flags: .syn, port: 80)).first))
        #expect(try refused.tcp().flags == [.rst, .ack])
        try tcp.listen(port: 80, families: .ipv4) // free again in IPv4's namespace
    }

    /// A connection from the host to its own IPv6 address: handshake, 1 MiB each way in
    /// super-segments (the IPv6 segmentation type), both closes, nothing on the link.
    @Test func connectionToOwnIPv6Address_carriesBothWays() throws {
        let host = host()
        let tcp = host.tcp!
        try tcp.listen(port: 80, families: .both)
        var link = CollectingSink()
        var now = Instant.zero + .seconds(1)
        let client = try tcp.connect(from: IPAddress(Lab6.us), to: Endpoint(Lab6.us, 80), now: now)
        tcp.settle(client, now: now, host: host, sink: &link)
        host.receiveLoopedFrames(now: now, sink: &link)
        let server = try #require(tcp.accept(port: 80))
        #expect(client.state == .established && server.state == .established)
        #expect(server.tuple.remote == client.tuple.local && server.tuple.local == Endpoint(Lab6.us, 80))
        #expect(client.connection.sendMSS == 1440 && server.connection.sendMSS == 1440)
        #expect(client.tuple.description.hasPrefix("[fd77::2]:"))

        let length = 1 << 20
        let (data, got) = exchangeOverLoopback(client, server, length: length, host: host, now: &now, link: &link)
        #expect(got[0] == data && got[1] == data, "received \(got[0].count) and \(got[1].count) of \(length)")
        #expect(host.counters.superFramesIn > 0, "the loopback carried no super-segment")
        closeOverLoopback(client, then: server, host: host, now: now, link: &link)
        #expect(client.state == .timeWait && server.state == .closed, "\(client.state) \(server.state)")
        #expect(link.frames.isEmpty && host.counters.drops.total == 0)
    }

    /// An ICMPv6 error from `reporter` quoting the start of `frame` (one the host sent).
    func icmpError(type: UInt8, code: UInt8, parameter: UInt32, quoting frame: [UInt8],
                   reporter: IPv6Address = IPv6Address("fd77::fe")!) -> [UInt8] {
        let original = Array(frame[14...])
        let message = Lab6.icmp(8 + original.count) { out in
            original.withUnsafeBytes { ICMPv6Message.emitError(type: type, code: code, parameter: parameter, original: $0,
                                                               source: reporter, destination: Lab6.us, into: out) }
        }
        return Lab6.frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: message, source: reporter, destination: Lab6.us))
    }

    /// RFC 8201: a packet too big lowers the connection's MSS to what the path carries;
    /// RFC 4443 with RFC 1122 4.2.3.9: a port unreachable ends a connect at once, as
    /// ECONNREFUSED. Both are steered to the connection's owner.
    @Test func icmpv6Errors_reachTheirConnection() throws {
        let host = host()
        _ = host.feed(Lab6.solicitation(for: Lab6.us))
        var sink = CollectingSink()
        let now = Instant.zero + .seconds(1)
        let socket = try host.tcp!.connect(from: IPAddress(Lab6.us), to: Endpoint(Lab6.peer, 5201), now: now)
        host.tcp!.settle(socket, now: now, host: host, sink: &sink)
        let synFrame = try #require(sink.frames.last)
        #expect(try segment(synFrame).1.options.maximumSegmentSize == 1440)
        let steering = FlowSteering(cores: 4)
        let tooBig = icmpError(type: ICMPv6Message.Kind.packetTooBig, code: 0, parameter: 1400, quoting: synFrame)
        #expect(tooBig.withUnsafeBytes { steering.target(of: $0, localAddress: Lab.us) } == .owner(steering.owner(of: socket.tuple)))

        let refused = icmpError(type: ICMPv6Message.Kind.destinationUnreachable, code: ICMPv6Message.UnreachableCode.port,
                                parameter: 0, quoting: synFrame)
        _ = host.feed(refused, now: now)
        #expect(socket.state == .closed && socket.error == .connectionRefused)

        // An established connection: the packet too big lowers its MSS (1400 - 60).
        try host.tcp!.listen(port: 82, families: .ipv6)
        _ = host.feed(syn(to: 82), now: now)
        let server = try #require(host.tcp!.sockets.values.first { $0.tuple.local.port == 82 })
        #expect(server.connection.sendMSS == 1440)
        var answer = [UInt8](repeating: 0, count: 14 + 40 + 20)
        answer.withUnsafeMutableBytes { b in
            EthernetHeader(destination: Lab.peerMAC, source: Lab.ourMAC, etherType: EtherType.ipv6).emit(into: b)
            IPv6Header(payloadLength: 20, nextHeader: IPProtocol.tcp, source: Lab6.us, destination: Lab6.peer)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: b[14...]))
            TCPSegmentHeader(sourcePort: 82, destinationPort: 40001, sequenceNumber: 0, acknowledgmentNumber: 0, flags: .ack, window: 0)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: b[54...]), segmentLength: 20,
                      addresses: .v6(source: Lab6.us, destination: Lab6.peer))
        }
        _ = host.feed(icmpError(type: ICMPv6Message.Kind.packetTooBig, code: 0, parameter: 1400, quoting: answer), now: now)
        #expect(server.connection.sendMSS == 1340)
        // Errors about another node's packets are not ours.
        let stranger = icmpError(type: ICMPv6Message.Kind.packetTooBig, code: 0, parameter: 1280,
                                 quoting: Lab6.frame(ipv6Packet(upper: IPProtocol.tcp, payload: Array(answer[54...]),
                                                                source: IPv6Address("fd77::99")!, destination: Lab6.peer)))
        _ = host.feed(stranger, now: now)
        #expect(server.connection.sendMSS == 1340)
    }

    /// What the link is asked to do with an IPv6 super-segment, done in software: each wire
    /// segment gets its own payload length, sequence number and a checksum that holds.
    @Test func superSegment_cutAsTheKernelCutsIt() throws {
        let payload = 3 * 1440 + 100
        var header = TCPSegmentHeader(sourcePort: 80, destinationPort: 40001, sequenceNumber: 5000, acknowledgmentNumber: 1,
                                      flags: [.ack, .psh, .fin], window: 100)
        let transport = header.headerLength + payload
        var frame = [UInt8](repeating: 0x5A, count: 14 + 40 + transport)
        frame.withUnsafeMutableBytes { b in
            EthernetHeader(destination: Lab.peerMAC, source: Lab.ourMAC, etherType: EtherType.ipv6).emit(into: b)
            IPv6Header(payloadLength: transport, nextHeader: IPProtocol.tcp, source: Lab6.us, destination: Lab6.peer)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: b[14...]))
            header.emit(into: UnsafeMutableRawBufferPointer(rebasing: b[54...]), segmentLength: transport,
                        addresses: .v6(source: Lab6.us, destination: Lab6.peer), partialChecksum: true)
        }
        header.flags = [.ack]
        let offload = FrameOffload(checksumStart: 54, checksumOffset: 16, segmentSize: 1440, headerLength: 54 + 20, ipv6: true)
        #expect(offload.wireSegments(frameLength: frame.count) == 4)
        var wire: [[UInt8]] = []
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 74 + 1440, alignment: 16)
        defer { scratch.deallocate() }
        frame.withUnsafeMutableBytes { offload.complete($0, scratch: scratch) { wire.append(Array($0)) } }
        #expect(wire.map(\.count) == [74 + 1440, 74 + 1440, 74 + 1440, 74 + 100])
        for (i, out) in wire.enumerated() {
            let (sent, tcp) = try segment(out)
            #expect(sent.header.payloadLength == out.count - 54)
            #expect(tcp.sequenceNumber == 5000 + UInt32(1440 * i))
            #expect(tcp.flags.contains(.fin) == (i == 3) && tcp.flags.contains(.psh) == (i == 3))
        }
    }

    /// Both directions of an IPv6 connection hash to one owner, and its frames are steered
    /// there; IPv4 keeps its own 12-byte input.
    @Test func steering_ownsIPv6ConnectionsByTheirTuple() {
        let steering = FlowSteering(cores: 4)
        var owners = Set<Int>()
        for port in UInt16(40000)..<40064 {
            let tuple = FourTuple(local: Endpoint(Lab6.us, 80), remote: Endpoint(Lab6.peer, port))
            let reverse = FourTuple(local: tuple.remote, remote: tuple.local)
            #expect(steering.owner(of: tuple) == steering.owner(of: reverse))
            #expect(steering.hash(source: tuple.local, destination: tuple.remote)
                    == Toeplitz.symmetric.hash(source: tuple.local, destination: tuple.remote))
            owners.insert(steering.owner(of: tuple))
            var segment = [UInt8](repeating: 0, count: 20)
            segment[0] = UInt8(port >> 8); segment[1] = UInt8(port & 0xFF); segment[3] = 80; segment[12] = 0x50
            let frame = Lab6.frame(ipv6Packet(upper: IPProtocol.tcp, payload: segment, source: Lab6.peer, destination: Lab6.us))
            let target = frame.withUnsafeBytes { steering.target(of: $0, localAddress: Lab.us) }
            #expect(target == .owner(steering.owner(of: tuple)))
        }
        #expect(owners.count == 4, "64 connections should reach every core")
        let v4 = FourTuple(local: Endpoint(Lab.us, 80), remote: Endpoint(Lab.peer, 40000))
        #expect(steering.hash(source: v4.local, destination: v4.remote) == Toeplitz.symmetric.hash(source: v4.local, destination: v4.remote))
    }
}
