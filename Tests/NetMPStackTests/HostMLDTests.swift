import NetMPStack
import NetMPTCP
import NetMPTestSupport
import NetMPWire
import Testing

/// IPv6 multicast at the host: MLDv2 reports of the groups sockets joined (RFC 3810),
/// queries answered in their version, a group's datagrams taken only while joined, and
/// datagrams sent to a group with the socket's hop limit and loop.
@Suite struct HostMLDTests {
    static let group = IPv6Address("ff12::1:2:3")!

    /// A host whose addresses are ready and that speaks for the link (as core 0's does).
    func speakingHost() -> Host {
        let host = Lab6.fresh()
        var sink = CollectingSink()
        host.startDuplicateAddressDetection(now: .zero, probes: true, sink: &sink)
        host.tick(now: .zero + .seconds(1), sink: &sink)
        return host
    }

    /// The MLD messages among `frames`, checked for what every one must carry (hop limit 1,
    /// a link-local source, Router Alert in a hop-by-hop header): (type, destination, bytes).
    func mld(_ frames: [[UInt8]]) throws -> [(UInt8, IPv6Address, [UInt8])] {
        try frames.compactMap { frame in
            let sent = try Sent(frame)
            guard sent.ethernet.etherType == EtherType.ipv6 else { return nil }
            let header = try sent.payload.withUnsafeBytes { try IPv6Header(parsing: $0) }
            guard header.nextHeader == IPv6NextHeader.hopByHop else { return nil }
            #expect(header.hopLimit == 1 && header.source == Lab6.ourLinkLocal)
            #expect(Array(sent.payload[40..<48]) == [IPv6NextHeader.icmpv6, 0, 5, 2, 0, 0, 1, 0])
            #expect(sent.ethernet.destination == header.destination.multicastMAC)
            let message = Array(sent.payload[48..<(40 + header.payloadLength)])
            var sum = InternetChecksum()
            sum.addPseudoHeader(source: header.source, destination: header.destination, nextHeader: IPv6NextHeader.icmpv6,
                                length: message.count)
            message.withUnsafeBytes { sum.add(bytes: $0) }
            #expect(sum.isValid)
            return (message[0], header.destination, message)
        }
    }

    func change(_ host: Host, join: Bool, _ group: IPv6Address = group) -> [[UInt8]] {
        var sink = CollectingSink()
        if join { host.joinGroup6(group, now: .zero, sink: &sink) } else { host.leaveGroup6(group, now: .zero, sink: &sink) }
        return sink.frames
    }

    /// RFC 3810 6.1: the first join and the last leave are reported to ff02::16 as
    /// CHANGE_TO_EXCLUDE and CHANGE_TO_INCLUDE records, and again once; all-nodes and an
    /// interface-local group never.
    @Test func joinsAndLeaves_areReported() throws {
        let host = speakingHost()
        let joined = try mld(change(host, join: true))
        #expect(joined.count == 1 && joined[0].0 == 143 && joined[0].1 == MLDMessage.reportDestination)
        #expect(Array(joined[0].2[6..<12]) == [0, 1, 4, 0, 0, 0]) // one record, CHANGE_TO_EXCLUDE, no sources
        #expect(Array(joined[0].2[12..<28]) == Self.bytes(Self.group))
        #expect(try mld(change(host, join: true)).isEmpty)
        #expect(try mld(change(host, join: true, IPv6Address("ff01::7")!)).isEmpty)
        _ = change(host, join: false)
        let left = try mld(change(host, join: false))
        #expect(left.count == 1 && left[0].2[8] == 3)
        var sink = CollectingSink()
        host.tick(now: .zero + .milliseconds(500), sink: &sink)
        let again = try mld(sink.frames)
        #expect(again.count == 1 && again[0].2[8] == 3) // the last state: left
    }

    static func bytes(_ address: IPv6Address) -> [UInt8] {
        withUnsafeBytes(of: address.high.bigEndian, Array.init) + withUnsafeBytes(of: address.low.bigEndian, Array.init)
    }

    /// A query from the router's link-local address to all-nodes, hop limit 1; version 2
    /// unless asked, general unless it names a group.
    static func query(group: IPv6Address = .any, version: Int = 2, from source: IPv6Address = Lab6.peerLinkLocal,
                      hopLimit: UInt8 = 1) -> [UInt8] {
        var message: [UInt8] = [130, 0, 0, 0, 0x03, 0xE8, 0, 0] + bytes(group)
        if version == 2 { message += [0, 125, 0, 0] }
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: source, destination: .allNodes, nextHeader: IPv6NextHeader.icmpv6, length: message.count)
        message.withUnsafeBytes { sum.add(bytes: $0) }
        message[2] = UInt8(sum.value >> 8); message[3] = UInt8(sum.value & 0xFF)
        return Lab6.frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: message, source: source, destination: .allNodes,
                                     hopLimit: hopLimit), to: IPv6Address.allNodes.multicastMAC)
    }

    /// RFC 3810 6.2 and 8.2.1: a general query is answered with MODE_IS_EXCLUDE records of
    /// every group; a version 1 querier gets a version 1 report per group, to the group;
    /// a query from off the link (not link-local, or forwarded) is ignored.
    @Test func queries_answeredInTheirVersion() throws {
        let host = speakingHost()
        _ = change(host, join: true)
        let answer = try mld(host.feed(Self.query()))
        #expect(answer.count == 1 && answer[0].2[8] == 2 && Array(answer[0].2[12..<28]) == Self.bytes(Self.group))
        let older = try mld(host.feed(Self.query(version: 1)))
        #expect(older.count == 1 && older[0].0 == 131 && older[0].1 == Self.group && older[0].2.count == 24)
        #expect(try mld(host.feed(Self.query(group: IPv6Address("ff12::9")!))).isEmpty)
        #expect(try mld(host.feed(Self.query(from: Lab6.peer))).isEmpty)
        #expect(try mld(host.feed(Self.query(hopLimit: 2))).isEmpty)
    }

    /// A group's datagram is taken while a socket here joined it, not before nor after.
    @Test func groupDatagrams_takenOnlyWhileJoined() throws {
        let host = speakingHost()
        var taken = 0
        host.udpReceiver = { _, _ in taken += 1; return .delivered }
        let datagram = Lab6.frame(HostIPv6Tests.udp6(to: Self.group, port: 5000, payload: [1, 2, 3]), to: Self.group.multicastMAC)
        _ = host.feed(datagram)
        #expect(taken == 0)
        _ = change(host, join: true)
        _ = host.feed(datagram)
        #expect(taken == 1)
        _ = change(host, join: false)
        _ = host.feed(datagram)
        #expect(taken == 1)
    }

    /// IPV6_MULTICAST_HOPS and _LOOP: the hop limit on the wire, a looped copy for a member
    /// here unless loop is off, and with a hop limit of 0 only that copy.
    @Test func datagramsToAGroup_leaveAsTheSocketSays() throws {
        let host = speakingHost()
        func send(_ multicast: MulticastSending) -> [[UInt8]] {
            var sink = CollectingSink()
            _ = host.sendUDP(from: 6000, to: Endpoint(IPAddress(Self.group), 5000), length: 3, now: .zero + .seconds(1), sink: &sink,
                             multicast: multicast) { out in out[0] = 7 }
            return sink.frames
        }
        var out = send(MulticastSending(timeToLive: 6, loop: true))
        #expect(out.count == 1 && !host.hasLoopedFrames)
        let sent = try Sent6(out[0])
        #expect(sent.header.hopLimit == 6 && sent.ethernet.destination == Self.group.multicastMAC)
        _ = change(host, join: true)
        out = send(.standard)
        let hops = try Sent6(out[0]).header.hopLimit
        #expect(out.count == 1 && hops == 1)
        #expect(host.takeLoopedFrames { _, _ in } == 1)
        #expect(send(MulticastSending(timeToLive: 1, loop: false)).count == 1 && !host.hasLoopedFrames)
        #expect(send(MulticastSending(timeToLive: 0, loop: true)).isEmpty && host.hasLoopedFrames)
    }
}
