import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

@Suite struct HostIPv4Tests {
    /// A host with the peer already in its neighbour cache (as after the peer's ARP request).
    func resolvedHost() -> Host {
        let host = Lab.host()
        _ = host.feed(Lab.arp(.request))
        return host
    }

    /// RFC 792 / RFC 1122 3.2.2.6: the reply carries the request's identifier, sequence
    /// and data, from the address the request was sent to.
    @Test func echoRequest_answeredWithMatchingReply() throws {
        let host = resolvedHost()
        let data = (0..<56).map { UInt8($0 * 3 & 0xFF) }
        let out = host.feed(Lab.echoRequest(id: 0xBEEF, sequence: 42, data: data))
        #expect(out.count == 1)
        let reply = try Sent(out[0])
        #expect(reply.ethernet == EthernetHeader(destination: Lab.peerMAC, source: Lab.ourMAC, etherType: EtherType.ipv4))
        let ip = try reply.ip()
        #expect(ip.source == Lab.us && ip.destination == Lab.peer && ip.proto == IPProtocol.icmp)
        #expect(try reply.icmp() == .echoReply(identifier: 0xBEEF, sequence: 42))
        #expect(Array(try reply.ipPayload()[8...]) == data)
    }

    /// A datagram reaches its socket with what its headers and arrival say: the address and
    /// port it was sent to, its TOS and TTL, and when it came (the ancillary data
    /// IP_PKTINFO, IP_RECVTOS, IP_RECVTTL and SO_TIMESTAMP return).
    @Test func udpDatagram_carriesItsHeadersToTheSocket() throws {
        let host = resolvedHost()
        var arrivals: [DatagramArrival] = []
        host.udpReceiver = { _, arrival in arrivals.append(arrival); return .delivered }
        var frame = Lab.udp(port: 53)
        frame[14 + 1] = 0x2e // TOS
        frame[14 + 8] = 33   // TTL
        frame[14 + 10] = 0; frame[14 + 11] = 0
        var sum = InternetChecksum()
        frame.withUnsafeBytes { sum.add(bytes: UnsafeRawBufferPointer(rebasing: $0[14..<34])) }
        frame[14 + 10] = UInt8(sum.value >> 8); frame[14 + 11] = UInt8(sum.value & 0xFF)
        let now = Instant(nanoseconds: 5_000_000_123)
        _ = host.feed(frame, now: now)
        #expect(arrivals == [DatagramArrival(source: Endpoint(Lab.peer, 40000), destination: Endpoint(Lab.us, 53),
                                             trafficClass: 0x2e, hopLimit: 33, at: now)])
    }

    @Test func echoRequest_fromUnresolvedPeer_repliesAfterResolving() throws {
        let host = Lab.host()
        let out = host.feed(Lab.echoRequest())
        #expect(try Sent(out[0]).arp().targetIP == Lab.peer)
        let flushed = host.feed(Lab.arp(.reply, to: Lab.ourMAC, targetMAC: Lab.ourMAC))
        #expect(try Sent(flushed[0]).icmp() == .echoReply(identifier: 0x1234, sequence: 1))
    }

    @Test func broadcastEcho_ignoredLikeLinux() {
        let host = resolvedHost()
        #expect(host.feed(Lab.echoRequest(to: IPv4Address(10, 77, 0, 255), destinationMAC: .broadcast)).isEmpty)
        #expect(host.counters.drops[.icmpIgnored] == 1)
    }

    /// Ethernet pads frames to 60 bytes: the datagram ends at its total length.
    @Test func paddedShortFrame_repliesWithoutThePadding() throws {
        let host = resolvedHost()
        let out = host.feed(Lab.echoRequest(data: [1, 2]) + [UInt8](repeating: 0xEE, count: 20))
        #expect(try Sent(out[0]).ipPayload().count == 10)
    }

    @Test func ipOptions_skipped() throws {
        let host = resolvedHost()
        var frame = Lab.echoRequest(data: [9, 9, 9, 9])
        frame.insert(contentsOf: [0x94, 0x04, 0x00, 0x00], at: 34) // Router Alert
        frame[14] = 0x46
        frame[17] += 4
        Lab.fixIPChecksum(&frame)
        let out = host.feed(frame)
        #expect(try Sent(out[0]).icmp() == .echoReply(identifier: 0x1234, sequence: 1))
    }

    @Test func malformedAndForeignDatagrams_countedByReason() {
        let host = resolvedHost()
        var badChecksum = Lab.echoRequest()
        badChecksum[24] ^= 0xFF
        var fragment = Lab.echoRequest()
        fragment[20] = 0x3F; fragment[21] = 0xFF // more fragments, at the last offset: past 64 KiB
        Lab.fixIPChecksum(&fragment)
        var broadcastSource = Lab.echoRequest()
        broadcastSource[26...29] = [255, 255, 255, 255]
        Lab.fixIPChecksum(&broadcastSource)
        var icmpChecksum = Lab.echoRequest()
        icmpChecksum[36] ^= 1
        var vlan = Lab.echoRequest()
        vlan.insert(contentsOf: [0x81, 0x00, 0x00, 0x05], at: 12)
        let cases: [([UInt8], PolicyDrop?, WireError?)] = [
            (badChecksum, nil, .ipv4BadChecksum),
            (fragment, .fragmentTooLarge, nil),
            (broadcastSource, .ipBadSource, nil),
            (icmpChecksum, nil, .icmpBadChecksum),
            (vlan, .vlanTagged, nil),
            (Lab.echoRequest(to: IPv4Address(10, 77, 0, 3)), .ipNotForUs, nil),
            (Lab.echoRequest(destinationMAC: MACAddress(value: 0x0200_0000_0033)), .notForUs, nil),
            (Array(Lab.echoRequest()[0..<30]), nil, .ipv4Truncated),
        ]
        for (frame, policy, malformed) in cases {
            #expect(host.feed(frame).isEmpty)
            if let policy { #expect(host.counters.drops[policy] == 1, "\(policy)") }
            if let malformed { #expect(host.counters.drops[malformed] == 1, "\(malformed)") }
        }
        #expect(host.counters.drops.total == UInt64(cases.count))
    }

    /// RFC 1122 4.1.3.1: a datagram to a port nobody listens on gets port unreachable,
    /// quoting the datagram.
    @Test func udpToClosedPort_answeredWithPortUnreachable() throws {
        let host = resolvedHost()
        let out = host.feed(Lab.udp(port: 5999))
        guard case .destinationUnreachable(3, 0, let quoted) = try Sent(out[0]).icmp() else {
            Issue.record("no port unreachable"); return
        }
        #expect(quoted.destinationPort == 5999 && quoted.sourcePort == 40000 && quoted.header.destination == Lab.us)
        #expect(host.counters.drops[.udpNoSocket] == 1)
    }

    /// RFC 9293 3.10.7.1: a SYN to a closed port gets <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>;
    /// a segment with ACK gets <SEQ=SEG.ACK><CTL=RST>; a RST gets nothing.
    @Test func tcpToClosedPort_answeredWithReset() throws {
        let host = resolvedHost()
        let rstForSYN = try Sent(host.feed(Lab.tcp(flags: .syn, sequence: 5000))[0]).tcp()
        #expect(rstForSYN.flags == [.rst, .ack] && rstForSYN.sequenceNumber == 0 && rstForSYN.acknowledgmentNumber == 5001)
        #expect(rstForSYN.sourcePort == 5201 && rstForSYN.destinationPort == 40001)
        let rstForData = try Sent(host.feed(Lab.tcp(flags: [.ack, .psh], sequence: 10, ack: 777, payload: 100))[0]).tcp()
        #expect(rstForData.flags == .rst && rstForData.sequenceNumber == 777)
        #expect(host.feed(Lab.tcp(flags: .rst)).isEmpty)
    }

    @Test func unknownProtocol_answeredWithProtocolUnreachable() throws {
        let host = resolvedHost()
        let out = host.feed(Lab.ipv4(proto: 132, payloadLength: 12) { _ in })
        guard case .destinationUnreachable(2, _, _) = try Sent(out[0]).icmp() else { Issue.record("no answer"); return }
        #expect(host.counters.drops[.unsupportedProtocol] == 1)
    }

    /// ICMP errors about our datagrams reach the transport hook with the quoted ports.
    @Test func icmpError_handedToTransportHook() {
        let host = resolvedHost()
        var reports: [ICMPErrorReport] = []
        host.icmpErrorHandler = { reports.append($0) }
        let original = Lab.ipv4(proto: IPProtocol.tcp, payloadLength: 20, from: Lab.us, to: IPv4Address(10, 9, 9, 9)) { out in
            out[0] = 0x9C; out[1] = 0x40; out[2] = 0x14; out[3] = 0x51 // ports 40000 -> 5201
            out[4] = 0; out[5] = 0; out[6] = 0; out[7] = 99                // sequence 99
        }
        let datagram = Array(original[14...])
        let error = Lab.ipv4(proto: IPProtocol.icmp, payloadLength: 8 + 28, from: Lab.gateway) { out in
            _ = datagram.withUnsafeBytes { ICMPv4Message.emitError(type: 3, code: 4, nextHopMTU: 1400, original: UnsafeRawBufferPointer(rebasing: $0[0..<28]), into: out) }
        }
        #expect(host.feed(error).isEmpty)
        #expect(reports.count == 1)
        #expect(reports.first?.kind == .fragmentationNeeded(nextHopMTU: 1400))
        #expect(reports.first?.reporter == Lab.gateway)
        #expect(reports.first?.quoted.sourcePort == 40000 && reports.first?.quoted.sequenceNumber == 99)
    }

    /// An IPv4 packet labelled IPv6 reaches the IPv6 parser, which refuses its version; an
    /// EtherType netmp has no use for (LLDP) is counted as such.
    @Test func mislabelledAndOtherEtherTypes_counted() {
        let host = resolvedHost()
        var frame = Lab.echoRequest()
        frame[12] = 0x86; frame[13] = 0xDD
        #expect(host.feed(frame).isEmpty)
        #expect(host.counters.drops[.ipv6BadVersion] == 1)
        frame[12] = 0x88; frame[13] = 0xCC
        #expect(host.feed(frame).isEmpty)
        #expect(host.counters.drops[.unsupportedEtherType] == 1)
    }
}
