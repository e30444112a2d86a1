import NetMPStack
import NetMPWire
import Testing

@Suite struct HostARPTests {
    /// RFC 826: a request for our address is answered with a reply to the asker, and the
    /// asker is learnt, so our answer to its next packet needs no request of our own.
    @Test func request_forOurAddress_isAnsweredAndSenderLearnt() throws {
        let host = Lab.host()
        let out = host.feed(Lab.arp(.request))
        #expect(out.count == 1)
        let sent = try Sent(out[0])
        #expect(sent.ethernet == EthernetHeader(destination: Lab.peerMAC, source: Lab.ourMAC, etherType: EtherType.arp))
        #expect(try sent.arp() == ARPPacket(operation: .reply, senderMAC: Lab.ourMAC, senderIP: Lab.us,
                                            targetMAC: Lab.peerMAC, targetIP: Lab.peer))
        #expect(host.arp.lookup(Lab.peer, now: .zero) == Lab.peerMAC)
    }

    @Test func request_forAnotherAddress_isIgnoredAndStrangerNotLearnt() {
        let host = Lab.host()
        #expect(host.feed(Lab.arp(.request, asking: IPv4Address(10, 77, 0, 9))).isEmpty)
        #expect(host.arp.lookup(Lab.peer, now: .zero) == nil)
        #expect(host.counters.drops[.notForUs] == 1)
    }

    /// RFC 826 merge: an entry we already hold is refreshed by any ARP from that sender.
    @Test func knownSender_isUpdatedEvenWhenNotAskingUs() {
        let host = Lab.host()
        _ = host.feed(Lab.arp(.request))
        let moved = MACAddress(value: 0x0200_0000_0099)
        _ = host.feed(Lab.arp(.request, from: moved, asking: IPv4Address(10, 77, 0, 9)))
        #expect(host.arp.lookup(Lab.peer, now: .zero) == moved)
    }

    @Test func someoneClaimingOurAddress_isCountedNotLearnt() {
        let host = Lab.host()
        #expect(host.feed(Lab.arp(.request, ip: Lab.us, asking: Lab.us)).isEmpty)
        #expect(host.counters.drops[.arpAddressConflict] == 1)
    }

    /// RFC 5227 2.3: the announcement is a broadcast request with sender = target = us.
    @Test func announce_sendsGratuitousRequest() throws {
        let host = Lab.host()
        var sink = CollectingSink()
        host.announce(sink: &sink)
        let sent = try Sent(sink.frames[0])
        #expect(sent.ethernet.destination == .broadcast && sent.ethernet.source == Lab.ourMAC)
        #expect(try sent.arp() == ARPPacket(operation: .request, senderMAC: Lab.ourMAC, senderIP: Lab.us,
                                            targetMAC: .zero, targetIP: Lab.us))
    }

    @Test func malformedARP_countedByReason() {
        let host = Lab.host()
        var frame = Lab.arp(.request)
        frame[14 + 4] = 8 // hardware length
        #expect(host.feed(frame).isEmpty)
        #expect(host.feed(Array(Lab.arp(.request)[0..<30])).isEmpty)
        #expect(host.counters.drops[.arpUnsupportedHardware] == 1)
        #expect(host.counters.drops[.arpTruncated] == 1)
    }
}

@Suite struct ResolverTests {
    func send(_ host: Host, to destination: IPv4Address, now: Instant = .zero) -> (Result<Void, SendError>, [[UInt8]]) {
        var sink = CollectingSink()
        let result = host.sendIPv4(to: destination, proto: IPProtocol.udp, payloadLength: 4, now: now, sink: &sink) { out in
            for i in 0..<4 { out[i] = UInt8(i) }
        }
        return (result, sink.frames)
    }

    /// RFC 1122 2.3.2.2: a packet to an unresolved neighbour waits while a request goes out,
    /// and leaves when the reply arrives, addressed to the MAC the reply gave.
    @Test func unresolvedNeighbour_queuesPacket_untilReplyFlushesIt() throws {
        let host = Lab.host()
        let (result, out) = send(host, to: Lab.peer)
        #expect(throws: Never.self) { try result.get() }
        #expect(out.count == 1)
        let request = try Sent(out[0])
        #expect(request.ethernet.destination == .broadcast)
        #expect(try request.arp().targetIP == Lab.peer && request.arp().operation == .request)
        // A second packet joins the queue without a second request.
        #expect(send(host, to: Lab.peer).1.isEmpty)
        let flushed = host.feed(Lab.arp(.reply, asking: Lab.us, to: Lab.ourMAC, targetMAC: Lab.ourMAC))
        #expect(flushed.count == 2)
        for frame in flushed {
            let sent = try Sent(frame)
            #expect(sent.ethernet.destination == Lab.peerMAC)
            #expect(try sent.ip().destination == Lab.peer)
            #expect(try sent.ipPayload() == [0, 1, 2, 3])
        }
        // Now resolved: the next packet goes straight out.
        let direct = send(host, to: Lab.peer).1
        #expect(direct.count == 1)
        #expect(try Sent(direct[0]).ethernet.destination == Lab.peerMAC)
    }

    /// Requests are retried once a second and given up after three; queued packets are dropped
    /// and counted.
    @Test func unansweredRequests_retryThenGiveUp() {
        let host = Lab.host()
        _ = send(host, to: Lab.peer)
        _ = send(host, to: Lab.peer)
        #expect(host.nextDeadline == Instant.zero + .seconds(1))
        var retries = 0
        for second in 1...4 {
            var sink = CollectingSink()
            host.tick(now: Instant.zero + .seconds(UInt64(second)), sink: &sink)
            retries += sink.frames.count
        }
        #expect(retries == 2)
        #expect(host.nextDeadline == nil)
        #expect(host.counters.drops[.arpUnresolved] == 2)
    }

    @Test func offLinkDestination_resolvesTheGateway() throws {
        let host = Lab.host()
        let out = send(host, to: IPv4Address(10, 99, 1, 1)).1
        #expect(try Sent(out[0]).arp().targetIP == Lab.gateway)
        _ = host.feed(Lab.arp(.request, from: Lab.gatewayMAC, ip: Lab.gateway))
        let direct = send(host, to: IPv4Address(10, 99, 1, 1)).1
        let sent = try Sent(direct[0])
        #expect(sent.ethernet.destination == Lab.gatewayMAC)
        #expect(try sent.ip().destination == IPv4Address(10, 99, 1, 1))
    }

    @Test func noGateway_offLinkIsNoRoute() {
        let host = Lab.host(gateway: nil)
        let (result, out) = send(host, to: IPv4Address(10, 99, 1, 1))
        #expect(out.isEmpty)
        #expect(throws: SendError.noRoute) { try result.get() }
        #expect(host.counters.drops[.noRoute] == 1)
    }

    @Test func learntEntry_expiresAndIsResolvedAgain() throws {
        let host = Lab.host()
        _ = host.feed(Lab.arp(.request), now: .zero)
        #expect(send(host, to: Lab.peer, now: Instant.zero + .seconds(59)).1.count == 1)
        let later = send(host, to: Lab.peer, now: Instant.zero + .seconds(61)).1
        #expect(try Sent(later[0]).arp().operation == .request)
    }

    @Test func queuePerNeighbour_isBounded() {
        let host = Lab.host()
        let bound = ARPCache.Timing().maximumPending
        for _ in 0..<(bound + 4) { _ = send(host, to: Lab.peer) }
        #expect(host.counters.drops[.arpQueueOverflow] == 4)
        #expect(host.feed(Lab.arp(.reply, to: Lab.ourMAC, targetMAC: Lab.ourMAC)).count == bound)
    }

    @Test func broadcast_needsNoResolution() throws {
        let host = Lab.host()
        let out = send(host, to: IPv4Address(10, 77, 0, 255)).1
        let sent = try Sent(out[0])
        #expect(sent.ethernet.destination == .broadcast && sent.ethernet.etherType == EtherType.ipv4)
        #expect(try !sent.ip().dontFragment)
    }

    /// Past the MTU, TCP is refused (it finds the path's MTU instead); anything else leaves
    /// in fragments (HostFragmentTests), up to the 64 KiB an IPv4 datagram holds.
    @Test func oversizedDatagram_refused() {
        let host = Lab.host()
        var sink = CollectingSink()
        let tcp = host.sendIPv4(to: Lab.peer, proto: IPProtocol.tcp, payloadLength: 1481, now: .zero, sink: &sink) { _ in }
        #expect(throws: SendError.tooLarge) { try tcp.get() }
        let huge = host.sendIPv4(to: Lab.peer, proto: IPProtocol.udp, payloadLength: 65_516, now: .zero, sink: &sink) { _ in }
        #expect(throws: SendError.tooLarge) { try huge.get() }
    }
}

@Suite struct ARPCacheTests {
    @Test func fullCache_evictsExpiredEntries_refusesWhenAllLive() {
        var timing = ARPCache.Timing()
        timing.capacity = 2
        var cache = ARPCache(timing: timing)
        _ = cache.learn(IPv4Address(10, 0, 0, 1), at: MACAddress(value: 1), now: .zero)
        _ = cache.learn(IPv4Address(10, 0, 0, 2), at: MACAddress(value: 2), now: .zero)
        #expect(cache.enqueue(PendingFrame([1]), for: IPv4Address(10, 0, 0, 3), now: .zero) == .cacheFull)
        #expect(cache.enqueue(PendingFrame([1]), for: IPv4Address(10, 0, 0, 3), now: Instant.zero + .seconds(61)) == .sendRequest)
        #expect(cache.count == 1)
    }
}
