import Glibc
import NetMPStack
import NetMPTCP
import NetMPTestSupport
import NetMPWire
import Testing

/// The lab's IPv6: netmp at fd77::2 (and its link-local address), the kernel at fd77::1.
enum Lab6 {
    static let us = IPv6Address("fd77::2")!
    static let peer = IPv6Address("fd77::1")!
    static let ourLinkLocal = IPv6Address.linkLocal(for: Lab.ourMAC)
    static let peerLinkLocal = IPv6Address.linkLocal(for: Lab.peerMAC)

    /// A host whose addresses passed duplicate address detection (at 1 s).
    static func host(timing: NeighbourCache.Timing = .init()) -> Host {
        let host = fresh(timing: timing)
        var sink = CollectingSink()
        host.startDuplicateAddressDetection(now: .zero, probes: false, sink: &sink)
        host.tick(now: .zero + .seconds(1), sink: &sink)
        return host
    }

    static func fresh(timing: NeighbourCache.Timing = .init()) -> Host {
        var configuration = StackConfiguration(tapName: "t", address: Lab.us, prefixLength: 24, mac: Lab.ourMAC)
        configuration.ipv6Addresses = [IPv6InterfaceAddress(us, prefixLength: 64)]
        return Host(configuration: configuration, neighbourTiming: timing)
    }

    /// A frame from the peer holding `packet` (an IPv6 packet).
    static func frame(_ packet: [UInt8], to mac: MACAddress = Lab.ourMAC, from peerMAC: MACAddress = Lab.peerMAC) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 14)
        header.withUnsafeMutableBytes { _ = EthernetHeader(destination: mac, source: peerMAC, etherType: EtherType.ipv6).emit(into: $0) }
        return header + packet
    }

    static func icmp(_ length: Int, _ emit: (UnsafeMutableRawBufferPointer) -> Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        let used = bytes.withUnsafeMutableBytes(emit)
        return Array(bytes[0..<used])
    }

    static func echoRequest(from source: IPv6Address = peer, to destination: IPv6Address = us,
                            mac: MACAddress = Lab.ourMAC, data: [UInt8] = Array(0..<56)) -> [UInt8] {
        let message = icmp(8 + data.count) { out in
            data.withUnsafeBytes { ICMPv6Message.emitEcho(reply: false, identifier: 0x77, sequence: 3, data: $0,
                                                          source: source, destination: destination, into: out) }
        }
        return frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: message, source: source, destination: destination), to: mac)
    }

    static func solicitation(for target: IPv6Address, from source: IPv6Address = peer, mac: MACAddress? = Lab.peerMAC) -> [UInt8] {
        let group = target.solicitedNodeMulticast
        let message = icmp(32) { out in
            ICMPv6Message.emitNeighbourSolicitation(target: target, sourceLinkLayer: mac, source: source, destination: group, into: out)
        }
        return frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: message, source: source, destination: group, hopLimit: 255),
                     to: group.multicastMAC)
    }

    static func advertisement(_ advertisement: NeighbourAdvertisement, from source: IPv6Address = peer,
                              to destination: IPv6Address = us, mac: MACAddress = Lab.ourMAC) -> [UInt8] {
        let message = icmp(32) { out in
            ICMPv6Message.emitNeighbourAdvertisement(advertisement, source: source, destination: destination, into: out)
        }
        return frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: message, source: source, destination: destination,
                                hopLimit: 255), to: mac)
    }
}

/// A frame the host sent, taken apart as IPv6.
struct Sent6 {
    let ethernet: EthernetHeader
    let header: IPv6Header
    let payload: [UInt8]
    init(_ frame: [UInt8]) throws {
        let sent = try Sent(frame)
        ethernet = sent.ethernet
        header = try sent.payload.withUnsafeBytes { try IPv6Header(parsing: $0) }
        payload = Array(sent.payload[40..<(40 + header.payloadLength)])
    }
    func icmp() throws -> ICMPv6Message {
        try payload.withUnsafeBytes {
            try ICMPv6Message(parsing: $0, source: header.source, destination: header.destination, hopLimit: header.hopLimit)
        }
    }
}

@Suite struct HostIPv6Tests {
    /// RFC 4862 5.4: each address is probed once from :: at its solicited-node group, and
    /// used only after a retransmission time without an objection.
    @Test func addresses_areProbedBeforeUse() throws {
        let host = Lab6.fresh()
        var sink = CollectingSink()
        host.startDuplicateAddressDetection(now: .zero, probes: true, sink: &sink)
        #expect(sink.frames.count == 2)
        for (frame, target) in zip(sink.frames, [Lab6.ourLinkLocal, Lab6.us]) {
            let sent = try Sent6(frame)
            #expect(sent.header.source == .any && sent.header.destination == target.solicitedNodeMulticast)
            #expect(sent.header.hopLimit == 255 && sent.ethernet.destination == target.solicitedNodeMulticast.multicastMAC)
            #expect(try sent.icmp() == .neighbourSolicitation(target: target, sourceLinkLayer: nil))
        }
        // Tentative: neither a solicitation nor an echo is answered.
        #expect(host.feed(Lab6.solicitation(for: Lab6.us)).isEmpty)
        #expect(host.feed(Lab6.echoRequest()).isEmpty)
        #expect(host.counters.drops[.ipv6NotForUs] == 1)
        #expect(host.nextDeadline == .zero + .seconds(1))
        host.tick(now: .zero + .seconds(1), sink: &sink)
        #expect(host.ipv6.isPreferred(Lab6.us) && host.ipv6.isPreferred(Lab6.ourLinkLocal))
        #expect(host.nextDeadline == nil)
    }

    /// Another node answering for, or probing for, a tentative address takes it from us.
    @Test func duplicateAddress_isNeverUsed() throws {
        for objection in [Lab6.advertisement(.init(target: Lab6.us, solicited: false, override: true, targetLinkLayer: Lab.peerMAC),
                                             to: .allNodes, mac: IPv6Address.allNodes.multicastMAC),
                          Lab6.solicitation(for: Lab6.us, from: .any, mac: nil)] {
            let host = Lab6.fresh()
            var sink = CollectingSink()
            host.startDuplicateAddressDetection(now: .zero, probes: true, sink: &sink)
            #expect(host.feed(objection).isEmpty)
            #expect(host.counters.drops[.ndpDuplicateAddress] == 1)
            host.tick(now: .zero + .seconds(2), sink: &sink)
            #expect(host.ipv6.state(of: Lab6.us) == .duplicate)
            #expect(host.ipv6.isPreferred(Lab6.ourLinkLocal))
            #expect(host.feed(Lab6.solicitation(for: Lab6.us)).isEmpty)
            #expect(host.feed(Lab6.echoRequest()).isEmpty)
        }
    }

    /// RFC 4861 7.2.4: a solicitation for our address is answered from it, solicited and
    /// override, with our link-layer address; the asker is learnt (STALE) on the way.
    @Test func solicitation_isAnsweredAndAskerLearnt() throws {
        let host = Lab6.host()
        let out = host.feed(Lab6.solicitation(for: Lab6.us))
        #expect(out.count == 1)
        let sent = try Sent6(out[0])
        #expect(sent.ethernet.destination == Lab.peerMAC && sent.ethernet.source == Lab.ourMAC)
        #expect(sent.header.source == Lab6.us && sent.header.destination == Lab6.peer && sent.header.hopLimit == 255)
        #expect(try sent.icmp() == .neighbourAdvertisement(.init(target: Lab6.us, solicited: true, override: true,
                                                                 targetLinkLayer: Lab.ourMAC)))
        // Learnt STALE, and sending the answer to it started the delay before a probe (7.3.3).
        #expect(host.neighbours6.state(of: Lab6.peer) == .delay(until: .zero + .seconds(5)))
        // A probe from :: is answered to all nodes, unsolicited.
        let probe = try Sent6(try #require(host.feed(Lab6.solicitation(for: Lab6.ourLinkLocal, from: .any, mac: nil)).first))
        #expect(probe.header.destination == .allNodes && probe.ethernet.destination == IPv6Address.allNodes.multicastMAC)
        #expect(try probe.icmp() == .neighbourAdvertisement(.init(target: Lab6.ourLinkLocal, solicited: false, override: true,
                                                                  targetLinkLayer: Lab.ourMAC)))
        // A solicitation for another node's address that shares our group is not ours to answer.
        #expect(host.feed(Lab6.solicitation(for: IPv6Address("fd77::1:0:2")!)).isEmpty)
    }

    /// An echo from a stranger waits for its resolution; the advertisement releases it.
    @Test func echo_fromStranger_waitsForResolution() throws {
        let host = Lab6.host()
        let asked = host.feed(Lab6.echoRequest())
        #expect(asked.count == 1)
        let solicitation = try Sent6(asked[0])
        #expect(solicitation.header.destination == Lab6.peer.solicitedNodeMulticast && solicitation.header.source == Lab6.us)
        #expect(try solicitation.icmp() == .neighbourSolicitation(target: Lab6.peer, sourceLinkLayer: Lab.ourMAC))
        let out = host.feed(Lab6.advertisement(.init(target: Lab6.peer, solicited: true, override: true, targetLinkLayer: Lab.peerMAC)))
        #expect(out.count == 1)
        let reply = try Sent6(out[0])
        #expect(reply.ethernet.destination == Lab.peerMAC && reply.header.source == Lab6.us && reply.header.destination == Lab6.peer)
        #expect(try reply.icmp() == .echoReply(identifier: 0x77, sequence: 3))
        #expect(Array(reply.payload[8...]) == Array(0..<56))
        if case .reachable? = host.neighbours6.state(of: Lab6.peer) {} else { Issue.record("peer not reachable") }
        // Known now: the next echo is answered at once.
        #expect(try Sent6(try #require(host.feed(Lab6.echoRequest()).first)).icmp() == .echoReply(identifier: 0x77, sequence: 3))
    }

    /// Echoes to the all-nodes group are answered from the link-local address, as Linux does.
    @Test func echo_toAllNodes_isAnsweredFromLinkLocal() throws {
        let host = Lab6.host()
        _ = host.feed(Lab6.solicitation(for: Lab6.ourLinkLocal, from: Lab6.peerLinkLocal))
        let out = host.feed(Lab6.echoRequest(from: Lab6.peerLinkLocal, to: .allNodes, mac: IPv6Address.allNodes.multicastMAC))
        let reply = try Sent6(try #require(out.first))
        #expect(reply.header.source == Lab6.ourLinkLocal && reply.header.destination == Lab6.peerLinkLocal)
        // Another group's frames are not ours.
        #expect(host.feed(Lab6.echoRequest(to: IPv6Address("ff02::fb")!, mac: IPv6Address("ff02::fb")!.multicastMAC)).isEmpty)
        #expect(host.counters.drops[.notForUs] == 1)
    }

    /// RFC 4861 7.3.3: a STALE entry used goes to DELAY, then to PROBE with unicast
    /// solicitations, and is given up on after three unanswered.
    @Test func staleNeighbour_isProbedAndForgotten() throws {
        let host = Lab6.host()
        _ = host.feed(Lab6.solicitation(for: Lab6.us))  // learnt STALE, used at once for the answer
        let t0 = Instant.zero
        #expect(host.neighbours6.state(of: Lab6.peer) == .delay(until: t0 + .seconds(5)))
        #expect(host.feed(Lab6.echoRequest(), now: t0 + .seconds(2)).count == 1)  // DELAY still sends
        var sink = CollectingSink()
        host.tick(now: t0 + .seconds(5), sink: &sink)
        let probe = try Sent6(try #require(sink.frames.first))
        #expect(probe.ethernet.destination == Lab.peerMAC && probe.header.destination == Lab6.peer)
        #expect(try probe.icmp() == .neighbourSolicitation(target: Lab6.peer, sourceLinkLayer: Lab.ourMAC))
        for second in 6...8 { host.tick(now: t0 + .seconds(UInt64(second)), sink: &sink) }
        #expect(sink.frames.count == 3)
        #expect(host.neighbours6.state(of: Lab6.peer) == nil)
        // Resolution of a stranger gives up after three multicast solicitations, dropping what waited.
        #expect(host.feed(Lab6.echoRequest(), now: t0 + .seconds(10)).count == 1)
        for second in 11...13 { host.tick(now: t0 + .seconds(UInt64(second)), sink: &sink) }
        #expect(host.counters.drops[.ndpUnresolved] == 1)
    }

    /// With no socket bound, every port is closed: UDP gets a port unreachable quoting the
    /// datagram, TCP a RST, and an unknown next header a parameter problem.
    @Test func closedPorts_andUnknownProtocols_areRefused() throws {
        let host = Lab6.host()
        _ = host.feed(Lab6.solicitation(for: Lab6.us))
        var udp = [UInt8](repeating: 0, count: 12)
        udp.withUnsafeMutableBytes { b in
            UDPHeader(sourcePort: 40000, destinationPort: 9, datagramLength: 12)
                .emit(into: b, source: Lab.peer, destination: Lab.us) // checksum fixed below
        }
        udp[6] = 0; udp[7] = 0
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: Lab6.peer, destination: Lab6.us, nextHeader: IPProtocol.udp, length: 12)
        udp.withUnsafeBytes { sum.add(bytes: $0) }
        udp[6] = UInt8(sum.value >> 8); udp[7] = UInt8(sum.value & 0xFF)
        let datagram = ipv6Packet(upper: IPProtocol.udp, payload: udp, source: Lab6.peer, destination: Lab6.us)
        let unreachable = try Sent6(try #require(host.feed(Lab6.frame(datagram)).first))
        guard case .destinationUnreachable(4, let quoted) = try unreachable.icmp() else { Issue.record("no port unreachable"); return }
        #expect(quoted.ports?.destination == 9 && Array(unreachable.payload[8...]) == datagram)
        // The same datagram with a checksum that fails is dropped by its reason, unanswered.
        var corrupt = datagram
        corrupt[40 + 8] ^= 0xFF
        #expect(host.feed(Lab6.frame(corrupt)).isEmpty)
        #expect(host.counters.drops[.udpBadChecksum] == 1)

        let syn = TCPSegmentHeader(sourcePort: 40001, destinationPort: 80, sequenceNumber: 1000, acknowledgmentNumber: 0,
                                   flags: .syn, window: 65535)
        var segment = [UInt8](repeating: 0, count: 20)
        segment.withUnsafeMutableBytes { _ = syn.emit(into: $0, segmentLength: 20, addresses: .v6(source: Lab6.peer, destination: Lab6.us)) }
        let rst = try Sent6(try #require(host.feed(Lab6.frame(ipv6Packet(upper: IPProtocol.tcp, payload: segment,
                                                                         source: Lab6.peer, destination: Lab6.us))).first))
        let reply = try rst.payload.withUnsafeBytes {
            try TCPSegmentHeader(parsing: $0, addresses: .v6(source: Lab6.us, destination: Lab6.peer))
        }
        #expect(reply.flags == [.rst, .ack] && reply.acknowledgmentNumber == 1001 && reply.destinationPort == 40001)

        let sctp = ipv6Packet(upper: 132, payload: [0, 0, 0, 0], source: Lab6.peer, destination: Lab6.us)
        let problem = try Sent6(try #require(host.feed(Lab6.frame(sctp)).first))
        guard case .parameterProblem(1, 6, _) = try problem.icmp() else { Issue.record("no parameter problem"); return }
        #expect(host.counters.drops[.ipv6UnsupportedNextHeader] == 1)
    }

    /// A UDP datagram from `source` to `destination`, checksummed (or with `checksum`).
    static func udp6(from source: IPv6Address = Lab6.peer, to destination: IPv6Address = Lab6.us, port: UInt16,
                     payload: [UInt8], checksum: UInt16? = nil) -> [UInt8] {
        var udp = [UInt8](repeating: 0, count: 8) + payload
        udp.withUnsafeMutableBytes { b in
            UDPHeader(sourcePort: 40000, destinationPort: port, datagramLength: b.count)
                .emit(into: b, addresses: .v6(source: source, destination: destination))
        }
        if let checksum { udp[6] = UInt8(checksum >> 8); udp[7] = UInt8(checksum & 0xFF) }
        return ipv6Packet(upper: IPProtocol.udp, payload: udp, source: source, destination: destination)
    }

    /// UDP over IPv6 end to end on one host: a datagram reaches the socket of its port
    /// with its source and the address it was sent to; a zero checksum (legal only over
    /// IPv4) is dropped by its reason, unanswered; a reply leaves from our address with a
    /// checksum over the IPv6 pseudo-header; a port unreachable quoting it reaches the
    /// transport as the error of that datagram.
    @Test func udpOverIPv6_deliveredSentAndErrorsReported() throws {
        let host = Lab6.host()
        _ = host.feed(Lab6.solicitation(for: Lab6.us)) // the peer's link-layer address, learnt
        var delivered: [(port: UInt16, payload: [UInt8], source: Endpoint, destination: IPAddress)] = []
        host.udpReceiver = { payload, arrival in
            guard arrival.destination.port == 9 else { return .noSocket }
            delivered.append((arrival.destination.port, Array(payload), arrival.source, arrival.destination.address))
            return .delivered
        }
        var errors: [(DatagramError, [UInt8])] = []
        host.datagramErrorHandler = { errors.append(($0, Array($1))) }

        #expect(host.feed(Lab6.frame(Self.udp6(port: 9, payload: [1, 2, 3]))).isEmpty)
        #expect(delivered.count == 1 && delivered.first?.payload == [1, 2, 3])
        #expect(delivered.first?.source == Endpoint(Lab6.peer, 40000) && delivered.first?.destination == IPAddress(Lab6.us))
        #expect(host.feed(Lab6.frame(Self.udp6(port: 9, payload: [4], checksum: 0))).isEmpty)
        #expect(delivered.count == 1 && host.counters.drops[.udpZeroChecksumIPv6] == 1)
        let refused = try Sent6(try #require(host.feed(Lab6.frame(Self.udp6(port: 10, payload: [5]))).first))
        guard case .destinationUnreachable(4, _) = try refused.icmp() else { Issue.record("no port unreachable"); return }

        var sink = CollectingSink()
        let result = host.sendUDP(from: 9, to: Endpoint(Lab6.peer, 40000), length: 5, now: .zero, sink: &sink) { out in
            out.copyBytes(from: Array("hello".utf8))
        }
        guard case .success = result else { Issue.record("not sent: \(result)"); return }
        let reply = try Sent6(try #require(sink.frames.first))
        #expect(reply.header.source == Lab6.us && reply.header.destination == Lab6.peer && reply.header.nextHeader == IPProtocol.udp)
        let header = try reply.payload.withUnsafeBytes {
            try UDPHeader(parsing: $0, addresses: .v6(source: Lab6.us, destination: Lab6.peer))
        }
        #expect(header.sourcePort == 9 && header.destinationPort == 40000 && Array(reply.payload[8...]) == Array("hello".utf8))

        let packet = Array(sink.frames[0][14...])
        let error = Lab6.icmp(8 + packet.count) { out in
            packet.withUnsafeBytes {
                ICMPv6Message.emitError(type: ICMPv6Message.Kind.destinationUnreachable, code: ICMPv6Message.UnreachableCode.port,
                                        original: $0, source: Lab6.peer, destination: Lab6.us, into: out)
            }
        }
        #expect(host.feed(Lab6.frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: error))).isEmpty)
        // As IPV6_RECVERR reports it: ECONNREFUSED, ICMPv6's type and code, from the peer,
        // about the datagram it quoted, whose payload comes along.
        #expect(errors.count == 1)
        #expect(errors.first?.0 == DatagramError(errorNumber: ECONNREFUSED, hard: true, origin: DatagramError.originICMP6,
                                                 type: ICMPv6Message.Kind.destinationUnreachable,
                                                 code: ICMPv6Message.UnreachableCode.port, offender: IPAddress(Lab6.peer),
                                                 datagram: FourTuple(local: Endpoint(Lab6.us, 9), remote: Endpoint(Lab6.peer, 40000))))
        #expect(errors.first?.1 == Array("hello".utf8))
    }

    /// Malformed IPv6 is counted by reason and never answered.
    @Test func malformedPackets_areCountedByReason() {
        let host = Lab6.host()
        var truncatedChain = ipv6Packet([(IPv6NextHeader.destinationOptions, [0, 0, 0, 0, 0, 0, 0, 0])],
                                        upper: IPv6NextHeader.icmpv6, payload: [], source: Lab6.peer, destination: Lab6.us)
        truncatedChain[41] = 3
        #expect(host.feed(Lab6.frame(truncatedChain)).isEmpty)
        #expect(host.counters.drops[.ipv6ExtensionTruncated] == 1)
        var badChecksum = Lab6.echoRequest()
        badChecksum[14 + 40 + 9] ^= 1
        #expect(host.feed(badChecksum).isEmpty)
        #expect(host.counters.drops[.icmpv6BadChecksum] == 1)
        var forwarded = Lab6.solicitation(for: Lab6.us)
        forwarded[14 + 7] = 64  // a hop limit below 255: it crossed a router
        #expect(host.feed(forwarded).isEmpty)
        #expect(host.counters.drops[.ndpBadHopLimit] == 1)
        let fromGroup = Lab6.frame(ipv6Packet(upper: IPv6NextHeader.noNextHeader, payload: [], source: .allNodes, destination: Lab6.us))
        #expect(host.feed(fromGroup).isEmpty)
        #expect(host.counters.drops[.ipv6BadSource] == 1)
    }
}

@Suite struct NeighbourCacheTests {
    let peer = IPv6Address("fd77::1")!
    let t0 = Instant.zero

    @Test func resolution_solicitsThreeTimesThenDrops() {
        var cache = NeighbourCache()
        #expect(cache.enqueue(PendingFrame([1]), for: peer, now: t0) == .sendRequest)
        #expect(cache.enqueue(PendingFrame([2]), for: peer, now: t0) == .queued)
        #expect(cache.nextDeadline == t0 + .seconds(1))
        #expect(cache.expire(now: t0 + .seconds(1)).multicast == [peer])
        #expect(cache.expire(now: t0 + .seconds(2)).multicast == [peer])
        let due = cache.expire(now: t0 + .seconds(3))
        #expect(due.failed.count == 1 && due.failed[0].droppedPackets == 2)
        #expect(cache.count == 0 && cache.nextDeadline == nil)
    }

    /// RFC 4861 7.2.5: an override-less advertisement with another address does not move a
    /// known entry, but makes a REACHABLE one STALE.
    @Test func advertisements_followTheOverrideRules() {
        var cache = NeighbourCache()
        _ = cache.enqueue(PendingFrame([1]), for: peer, now: t0)
        let first = MACAddress(value: 0x0200_0000_0001), second = MACAddress(value: 0x0200_0000_0002)
        #expect(cache.advertised(.init(target: peer, solicited: true, override: false, targetLinkLayer: first), now: t0).count == 1)
        #expect(cache.state(of: peer) == .reachable(until: t0 + .seconds(30)))
        #expect(cache.nextDeadline == nil)
        _ = cache.advertised(.init(target: peer, solicited: true, override: false, targetLinkLayer: second), now: t0)
        #expect(cache.state(of: peer) == .stale)
        #expect(cache.lookup(peer, now: t0) == first)
        #expect(cache.state(of: peer) == .delay(until: t0 + .seconds(5)))
        _ = cache.advertised(.init(target: peer, solicited: false, override: true, targetLinkLayer: second), now: t0)
        #expect(cache.state(of: peer) == .stale && cache.lookup(peer, now: t0) == second)
        cache.confirm(peer, now: t0 + .seconds(1))
        #expect(cache.state(of: peer) == .reachable(until: t0 + .seconds(31)))
        // Past its reachable time, a lookup still sends, and starts the delay.
        #expect(cache.lookup(peer, now: t0 + .seconds(40)) == second)
        #expect(cache.nextDeadline == t0 + .seconds(45))
    }

    @Test func fullCache_removesStaleEntriesFirst() {
        var timing = NeighbourCache.Timing()
        timing.capacity = 2
        var cache = NeighbourCache(timing: timing)
        _ = cache.learn(peer, at: MACAddress(value: 0x0200_0000_0001), now: t0)
        _ = cache.enqueue(PendingFrame([1]), for: IPv6Address("fd77::3")!, now: t0)
        #expect(cache.enqueue(PendingFrame([1]), for: IPv6Address("fd77::4")!, now: t0) == .sendRequest)
        #expect(cache.state(of: peer) == nil)
        #expect(cache.enqueue(PendingFrame([1]), for: IPv6Address("fd77::5")!, now: t0) == .cacheFull)
    }
}

/// Router advertisements (RFC 4861 6.3.4), taken when NETMP_ACCEPT_RA asks for them.
@Suite struct HostRouterTests {
    static let router = IPv6Address("fe80::1")!
    static let routerMAC = MACAddress(value: 0x5222_312C_FFFE)
    static let offLink = IPv6Address("2001:db8::5")!

    func host(accepting: Bool) -> Host {
        var configuration = StackConfiguration(tapName: "t", address: Lab.us, prefixLength: 24, mac: Lab.ourMAC)
        configuration.ipv6Addresses = [IPv6InterfaceAddress(Lab6.us, prefixLength: 64)]
        configuration.acceptRouterAdvertisements = accepting
        let host = Host(configuration: configuration)
        var sink = CollectingSink()
        host.startDuplicateAddressDetection(now: .zero, probes: false, sink: &sink)
        host.tick(now: .zero + .seconds(1), sink: &sink)
        return host
    }

    /// An advertisement from the router: lifetime, hop limit, a prefix on the link, an MTU.
    func advertisement(lifetime: UInt16, prefix: IPv6Address = IPv6Address("fd99::")!, mtu: UInt32 = 1400) -> [UInt8] {
        var message: [UInt8] = [134, 0, 0, 0, 77, 0, UInt8(lifetime >> 8), UInt8(lifetime & 0xFF), 0, 0, 0, 0, 0, 0, 0, 0]
        message += [1, 1] + Self.routerMAC.octets
        message += [3, 4, 64, 0xC0] + [0, 0, 0x0E, 0x10] + [0, 0, 0x07, 0x08] + [0, 0, 0, 0]
        message += prefix.groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        message += [5, 1, 0, 0, UInt8(mtu >> 24), UInt8(mtu >> 16 & 0xFF), UInt8(mtu >> 8 & 0xFF), UInt8(mtu & 0xFF)]
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: Self.router, destination: .allNodes, nextHeader: IPv6NextHeader.icmpv6, length: message.count)
        message.withUnsafeBytes { sum.add(bytes: $0) }
        message[2] = UInt8(sum.value >> 8); message[3] = UInt8(sum.value & 0xFF)
        return Lab6.frame(ipv6Packet(upper: IPv6NextHeader.icmpv6, payload: message, source: Self.router, destination: .allNodes,
                                     hopLimit: 255), to: IPv6Address.allNodes.multicastMAC, from: Self.routerMAC)
    }

    /// Taken: an echo from beyond the link is answered through the router, with the
    /// advertised hop limit; a destination inside the advertised prefix is reached directly.
    @Test func advertisement_givesTheDefaultRouteAndPrefix() throws {
        let host = host(accepting: true)
        #expect(host.feed(advertisement(lifetime: 1800)).isEmpty)
        #expect(host.routers6.defaultRouter(now: .zero) == Self.router && host.routers6.mtu == 1400)
        let reply = try Sent6(try #require(host.feed(Lab6.echoRequest(from: Self.offLink)).first))
        #expect(reply.ethernet.destination == Self.routerMAC && reply.header.destination == Self.offLink)
        #expect(reply.header.hopLimit == 77 && reply.header.source == Lab6.us)
        let direct = try Sent6(try #require(host.feed(Lab6.echoRequest(from: IPv6Address("fd99::5")!)).first))
        #expect(try direct.icmp() == .neighbourSolicitation(target: IPv6Address("fd99::5")!, sourceLinkLayer: Lab.ourMAC))
        // Past the advertised MTU, a reply leaves in fragments of at most that MTU.
        let fragments = host.feed(Lab6.echoRequest(from: Self.offLink, data: [UInt8](repeating: 1, count: 1360)))
        #expect(fragments.count == 2 && fragments.allSatisfy { $0.count <= 14 + 1400 } && host.counters.fragmentsOut == 2)
        // The router's lifetime ends: nothing leaves the link any more.
        #expect(host.feed(Lab6.echoRequest(from: Self.offLink), now: .zero + .seconds(1801)).isEmpty)
        #expect(host.counters.drops[.noRoute] == 1)
        // A lifetime of 0 withdraws a router at once.
        _ = host.feed(advertisement(lifetime: 1800), now: .zero + .seconds(1802))
        _ = host.feed(advertisement(lifetime: 0), now: .zero + .seconds(1803))
        #expect(host.routers6.defaultRouter(now: .zero + .seconds(1803)) == nil)
    }

    /// Not asked to: the router is learnt as a neighbour, its advice counted as ignored.
    @Test func advertisement_ignoredUnlessAccepted() {
        let host = host(accepting: false)
        #expect(host.feed(advertisement(lifetime: 1800)).isEmpty)
        #expect(host.counters.drops[.icmpIgnored] == 1)
        #expect(host.feed(Lab6.echoRequest(from: Self.offLink)).isEmpty)
        #expect(host.counters.drops[.noRoute] == 1)
    }

    /// RFC 4861 6.3.7: once the link-local address is ready, up to three solicitations to
    /// all routers, four seconds apart, until an advertisement comes.
    @Test func routers_solicitedOnceTheLinkLocalAddressIsReady() throws {
        var configuration = StackConfiguration(tapName: "t", address: Lab.us, prefixLength: 24, mac: Lab.ourMAC)
        configuration.acceptRouterAdvertisements = true
        let host = Host(configuration: configuration)
        var sink = CollectingSink()
        host.startDuplicateAddressDetection(now: .zero, probes: true, sink: &sink)
        sink.frames.removeAll()
        host.tick(now: .zero + .seconds(1), sink: &sink)
        let first = try Sent6(try #require(sink.frames.first))
        #expect(first.header.destination == .allRouters && first.header.source == Lab6.ourLinkLocal && first.header.hopLimit == 255)
        #expect(try first.icmp() == .routerSolicitation(sourceLinkLayer: Lab.ourMAC))
        #expect(host.nextDeadline == .zero + .seconds(5))
        host.tick(now: .zero + .seconds(5), sink: &sink)
        #expect(sink.frames.count == 2)
        _ = host.feed(advertisement(lifetime: 600), now: .zero + .seconds(6))
        #expect(host.nextDeadline == nil)
        host.tick(now: .zero + .seconds(9), sink: &sink)
        #expect(sink.frames.count == 2)
    }
}

/// RFC 4443 2.4 (f): errors are rate-limited (Linux's 1000 a second, bursts of 50), for
/// ICMPv6 and ICMP alike, so a flood of packets that each earn one is not echoed as a flood.
@Suite struct ICMPRateLimitTests {
    @Test func errorsBeyondTheBurst_countedNotSent() throws {
        let host = Lab6.host()
        _ = host.feed(Lab6.solicitation(for: Lab6.us))
        _ = host.feed(Lab.arp(.request))
        let unknown = Lab6.frame(ipv6Packet(upper: 132, payload: [0, 0, 0, 0], source: Lab6.peer, destination: Lab6.us))
        var sent = 0
        for _ in 0..<40 { sent += host.feed(unknown).count }
        for _ in 0..<20 { sent += host.feed(Lab.udp(port: 9)).count }
        #expect(sent == 50)
        #expect(host.counters.drops[.icmpRateLimited] == 10)
        // 10 ms later, 10 tokens more.
        for _ in 0..<12 { sent += host.feed(unknown, now: .zero + .milliseconds(10)).count }
        #expect(sent == 60 && host.counters.drops[.icmpRateLimited] == 12)
    }

    @Test func bucket_refillsAtItsRateUpToItsBurst() {
        var limiter = ICMPRateLimiter()
        #expect((0..<60).filter { _ in limiter.allow(now: .zero) }.count == 50)
        #expect((0..<60).filter { _ in limiter.allow(now: .zero + .milliseconds(1)) }.count == 1)
        #expect((0..<60).filter { _ in limiter.allow(now: .zero + .seconds(5)) }.count == 50)
    }
}
