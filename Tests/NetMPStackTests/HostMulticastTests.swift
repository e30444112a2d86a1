import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// IPv4 multicast at the host: memberships and their IGMP version 3 reports, queries
/// answered, a group's datagrams taken only while joined, and datagrams sent to a group
/// (its Ethernet address, the socket's TTL, the looped copy).
@Suite struct HostMulticastTests {
    static let group = IPv4Address(239, 1, 2, 3)

    /// A host that speaks for the link (as core 0's does); the frames that start sends are dropped.
    func speakingHost() -> Host {
        let host = Lab.host()
        var sink = CollectingSink()
        host.startDuplicateAddressDetection(now: .zero, probes: true, sink: &sink)
        _ = host.feed(Lab.arp(.request))
        return host
    }

    /// The IGMP reports among `frames`: (record type, groups) of each.
    func reports(_ frames: [[UInt8]]) throws -> [(UInt8, [IPv4Address])] {
        try frames.compactMap { frame in
            let sent = try Sent(frame)
            guard sent.ethernet.etherType == EtherType.ipv4 else { return nil }
            let ip = try sent.ip()
            guard ip.proto == IPProtocol.igmp else { return nil }
            #expect(ip.destination == IGMPMessage.reportDestination && ip.timeToLive == 1 && ip.typeOfService == 0xC0)
            #expect(ip.headerLength == 24 && Array(sent.payload[20..<24]) == [0x94, 0x04, 0, 0]) // Router Alert
            #expect(sent.ethernet.destination == MACAddress(value: 0x0100_5E00_0016))
            let igmp = try sent.ipPayload()
            #expect(igmp[0] == 0x22 && igmp.withUnsafeBytes(InternetChecksum.of) == 0)
            let count = Int(igmp[6]) << 8 | Int(igmp[7])
            let groups = (0..<count).map { i in
                IPv4Address(igmp[8 + 8 * i + 4..<8 + 8 * i + 8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            }
            return (igmp[8], groups)
        }
    }

    func join(_ host: Host, _ group: IPv4Address = group) -> [[UInt8]] {
        var sink = CollectingSink()
        host.joinGroup(group, now: .zero, sink: &sink)
        return sink.frames
    }

    func leave(_ host: Host, _ group: IPv4Address = group) -> [[UInt8]] {
        var sink = CollectingSink()
        host.leaveGroup(group, now: .zero, sink: &sink)
        return sink.frames
    }

    /// RFC 3376 5.1: the first join and the last leave change the host's state and are
    /// reported; joins and leaves of more sockets are not. A core that does not speak for
    /// the link keeps the same count and reports nothing.
    @Test func joinsAndLeaves_reportTheHostsChangesOnly() throws {
        let host = speakingHost()
        let first = try reports(join(host))
        #expect(first.count == 1 && first[0].0 == 4 && first[0].1 == [Self.group]) // CHANGE_TO_EXCLUDE {}
        #expect(try reports(join(host)).isEmpty)
        #expect(try reports(leave(host)).isEmpty)
        #expect(host.isMember(of: Self.group))
        let last = try reports(leave(host))
        #expect(last.count == 1 && last[0].0 == 3 && last[0].1 == [Self.group]) // CHANGE_TO_INCLUDE {}
        #expect(!host.isMember(of: Self.group))
        #expect(host.counters.igmpReportsOut == 2)
        // Each change once more, half a second on: the last state only (the leave).
        var sink = CollectingSink()
        host.tick(now: .zero + .milliseconds(400), sink: &sink)
        #expect(try reports(sink.frames).isEmpty)
        #expect((host.nextDeadline ?? .zero + .seconds(9)) <= .zero + .milliseconds(500))
        host.tick(now: .zero + .milliseconds(500), sink: &sink)
        let again = try reports(sink.frames)
        #expect(again.count == 1 && again[0].0 == 3 && again[0].1 == [Self.group])
        sink.frames = []
        host.tick(now: .zero + .seconds(2), sink: &sink)
        #expect(try reports(sink.frames).isEmpty)

        let quiet = Lab.host()
        #expect(join(quiet).isEmpty && quiet.isMember(of: Self.group))
    }

    /// A general query is answered with every group joined (MODE_IS_EXCLUDE, never
    /// all-hosts); a group-specific one only by a member. Queries go to all-hosts, which
    /// every host belongs to without a join.
    @Test func queries_answeredWithTheMemberships() throws {
        let host = speakingHost()
        _ = join(host)
        _ = join(host, IPv4Address(239, 9, 9, 9))
        let general = try reports(host.feed(Self.query(group: .any)))
        #expect(general.count == 1 && general[0].0 == 2 && general[0].1 == [Self.group, IPv4Address(239, 9, 9, 9)])
        let specific = try reports(host.feed(Self.query(group: Self.group)))
        #expect(specific.count == 1 && specific[0].1 == [Self.group])
        #expect(try reports(host.feed(Self.query(group: IPv4Address(239, 5, 5, 5)))).isEmpty)
        var broken = Self.query(group: .any)
        broken[14 + 24 + 2] ^= 0xFF
        #expect(host.feed(broken).isEmpty)
        #expect(host.counters.drops[.igmpBadChecksum] == 1)
    }

    /// RFC 3376 7.2.1: a version 2 querier is answered with version 2 reports, one per
    /// group, each sent to its group.
    @Test func olderQuery_answeredInItsVersion() throws {
        let host = speakingHost()
        _ = join(host)
        _ = join(host, IPv4Address(239, 9, 9, 9))
        let out = host.feed(Self.query(group: .any, version: 2))
        #expect(out.count == 2)
        for (frame, group) in zip(out, [Self.group, IPv4Address(239, 9, 9, 9)]) {
            let sent = try Sent(frame)
            let ip = try sent.ip()
            let igmp = try sent.ipPayload()
            #expect(ip.destination == group && ip.timeToLive == 1 && sent.ethernet.destination == MACAddress(ipv4Group: group))
            #expect(igmp.count == 8 && igmp[0] == 0x16 && Array(igmp[4..<8]) == withUnsafeBytes(of: group.value.bigEndian, Array.init))
            #expect(igmp.withUnsafeBytes(InternetChecksum.of) == 0)
        }
    }

    /// A query to all-hosts (with Router Alert, as routers send it), version 3 unless asked.
    static func query(group: IPv4Address, version: Int = 3) -> [UInt8] {
        var igmp: [UInt8] = [0x11, 100, 0, 0] + withUnsafeBytes(of: group.value.bigEndian, Array.init)
        if version == 3 { igmp += [0, 125, 0, 0] }
        let sum = igmp.withUnsafeBytes(InternetChecksum.of)
        igmp[2] = UInt8(sum >> 8); igmp[3] = UInt8(sum & 0xFF)
        var frame = Lab.ipv4(proto: IPProtocol.igmp, payloadLength: igmp.count, to: IGMPMessage.allHosts,
                             destinationMAC: MACAddress(ipv4Group: IGMPMessage.allHosts)) { out in
            for (i, b) in igmp.enumerated() { out[i] = b }
        }
        frame.insert(contentsOf: [0x94, 0x04, 0x00, 0x00], at: 34)
        frame[14] = 0x46
        frame[17] += 4
        Lab.fixIPChecksum(&frame)
        return frame
    }

    /// A group's datagram: to the group's Ethernet address and IP address.
    static func datagram(to group: IPv4Address, port: UInt16 = 5000) -> [UInt8] {
        let payload = Array("to the group".utf8)
        return Lab.ipv4(proto: IPProtocol.udp, payloadLength: 8 + payload.count, to: group,
                        destinationMAC: MACAddress(ipv4Group: group)) { out in
            for (i, b) in payload.enumerated() { out[8 + i] = b }
            UDPHeader(sourcePort: 40000, destinationPort: port, datagramLength: 8 + payload.count)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<(8 + payload.count)]), source: Lab.peer, destination: group)
        }
    }

    /// RFC 1112 7.2: a group's datagrams are taken while the host belongs to it, dropped
    /// otherwise; none is answered with a port unreachable (RFC 1122 4.1.3.1).
    @Test func groupDatagrams_takenOnlyWhileJoined() throws {
        let host = speakingHost()
        var taken: [DatagramArrival] = []
        host.udpReceiver = { _, arrival in taken.append(arrival); return arrival.destination.port == 5000 ? .delivered : .noSocket }
        #expect(host.feed(Self.datagram(to: Self.group)).isEmpty)
        #expect(taken.isEmpty && host.counters.drops[.notForUs] == 1)
        _ = join(host)
        #expect(host.feed(Self.datagram(to: Self.group)).isEmpty)
        #expect(taken.map(\.destination) == [Endpoint(Self.group, 5000)])
        #expect(host.feed(Self.datagram(to: Self.group, port: 5001)).isEmpty) // no socket: no ICMP
        #expect(host.counters.drops[.udpNoSocket] == 1)
        // Another group on the same Ethernet address (the low 23 bits) is not ours.
        #expect(host.feed(Self.datagram(to: IPv4Address(239, 129, 2, 3))).isEmpty)
        #expect(host.counters.drops[.ipNotForUs] == 1)
    }

    func send(_ host: Host, to group: IPv4Address, _ multicast: MulticastSending) -> [[UInt8]] {
        var sink = CollectingSink()
        let payload = Array("out".utf8)
        _ = host.sendUDP(from: 6000, to: Endpoint(group, 5000), length: payload.count, now: .zero, sink: &sink,
                         multicast: multicast) { out in for (i, b) in payload.enumerated() { out[i] = b } }
        return sink.frames
    }

    /// RFC 1112 6.4: a datagram to a group goes to its Ethernet address with no ARP and no
    /// route, with the socket's multicast TTL; a member here gets a looped copy unless
    /// IP_MULTICAST_LOOP is off, and with TTL 0 only the looped copy exists.
    @Test func datagramsToAGroup_leaveAsTheSocketSays() throws {
        let host = Lab.host(gateway: nil)
        var out = send(host, to: Self.group, .standard)
        #expect(out.count == 1 && !host.hasLoopedFrames) // not a member: nothing looped
        var sent = try Sent(out[0])
        #expect(sent.ethernet.destination == MACAddress(value: 0x0100_5E01_0203))
        let ip = try sent.ip()
        #expect(ip.destination == Self.group && ip.timeToLive == 1 && ip.source == Lab.us)
        _ = join(host)
        out = send(host, to: Self.group, MulticastSending(timeToLive: 5, loop: true))
        sent = try Sent(out[0])
        let hops = try sent.ip().timeToLive
        #expect(out.count == 1 && hops == 5)
        var looped: [[UInt8]] = []
        #expect(host.takeLoopedFrames { frame, _ in looped.append(Array(frame)) } == 1)
        #expect(looped == out)
        #expect(send(host, to: Self.group, MulticastSending(timeToLive: 5, loop: false)).count == 1 && !host.hasLoopedFrames)
        #expect(send(host, to: Self.group, MulticastSending(timeToLive: 0, loop: true)).isEmpty && host.hasLoopedFrames)
    }
}
