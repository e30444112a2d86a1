// errno numbers only (PureProtocolTests): the host names the errors ICMP reports.
import var Glibc.EACCES
import var Glibc.ECONNREFUSED
import var Glibc.EHOSTUNREACH
import var Glibc.EMSGSIZE
import var Glibc.ENETUNREACH
import var Glibc.EPROTO
import NetMPTCP
import NetMPWire

/// IPv6 on the host's link: input through the extension headers, ICMPv6 (echo and the
/// errors a host sends), neighbour discovery (RFC 4861) and duplicate address detection
/// (RFC 4862). Answers are built in the host's scratch buffer, as IPv4's are.
extension Host {
    /// Hop limit of every neighbour discovery message: a receiver drops one that was forwarded.
    static let neighbourDiscoveryHopLimit: UInt8 = 255

    /// Starts duplicate address detection for every IPv6 address. Every core runs it, since
    /// every core must know when an address is ready; only the one that `probes` sends the
    /// solicitations (one per address on the link, not one per core).
    public func startDuplicateAddressDetection(now: Instant, probes: Bool, sink: inout some FrameSink) {
        speaksForTheLink = probes
        for address in ipv6.startDetection(now: now, retransmitTimer: neighbours6.timing.retransmitTimer) where probes {
            sendNeighbourSolicitation(for: address, from: .any, to: address.solicitedNodeMulticast,
                                      destinationMAC: address.solicitedNodeMulticast.multicastMAC, sink: &sink)
        }
    }

    func receiveIPv6(_ bytes: UnsafeRawBufferPointer, now: Instant, sink: inout some FrameSink) {
        let header: IPv6Header
        do { header = try IPv6Header(parsing: bytes) } catch { counters.drops.count(error); return }
        // Ethernet pads short frames: the packet ends where its payload length says.
        let packet = UnsafeRawBufferPointer(rebasing: bytes[0..<(IPv6Header.length + header.payloadLength)])
        let destination = header.destination
        let toUs = ipv6.isPreferred(destination)
        guard toUs || (destination.isMulticast && (ipv6.isJoined(destination) || groups6.contains(destination))) else {
            counters.drops.count(.ipv6NotForUs); return
        }
        guard !header.source.isMulticast else { counters.drops.count(.ipv6BadSource); return }
        let chain: IPv6ExtensionHeaders
        do { chain = try IPv6ExtensionHeaders(walking: packet) } catch { counters.drops.count(error); return }
        if let problem = chain.problem {
            counters.drops.count(.ipv6ParameterProblem)
            if !(problem.unlessMulticast && destination.isMulticast) {
                sendICMPv6Error(type: ICMPv6Message.Kind.parameterProblem, code: problem.code,
                                parameter: UInt32(problem.pointer), for: packet, header: header, now: now, sink: &sink)
            }
            return
        }
        if let fragment = chain.fragment {
            guard !reassembling else { counters.drops.count(.fragmentNested); return }
            reassembleIPv6(packet, header: header, fragment: fragment, now: now, sink: &sink)
            return
        }
        let payload = UnsafeRawBufferPointer(rebasing: packet[chain.upperLayerOffset...])
        switch chain.upperLayer {
        case IPv6NextHeader.icmpv6: receiveICMPv6(payload, header: header, toUs: toUs, now: now, sink: &sink)
        case IPv6NextHeader.noNextHeader: counters.drops.count(.ipv6NoNextHeader)
        case IPProtocol.udp: receiveUDP6(payload, packet: packet, header: header, toUs: toUs, now: now, sink: &sink)
        case IPProtocol.tcp where toUs && reassembling: counters.drops.count(.fragmentTCP)
        case IPProtocol.tcp where toUs: receiveTCPv6(payload, header: header, now: now, sink: &sink)
        default:
            counters.drops.count(.ipv6UnsupportedNextHeader)
            if toUs {
                sendICMPv6Error(type: ICMPv6Message.Kind.parameterProblem,
                                code: ICMPv6Message.ProblemCode.unrecognizedNextHeader,
                                parameter: UInt32(chain.nextHeaderFieldOffset), for: packet, header: header,
                                now: now, sink: &sink)
            }
        }
    }

    func receiveICMPv6(_ bytes: UnsafeRawBufferPointer, header: IPv6Header, toUs: Bool, now: Instant,
                       sink: inout some FrameSink) {
        let message: ICMPv6Message
        do {
            message = try ICMPv6Message(parsing: bytes, source: header.source, destination: header.destination,
                                        hopLimit: header.hopLimit, verifyChecksum: !checksumsTrusted)
        } catch { counters.drops.count(error); return }
        switch message {
        case .echoRequest(let identifier, let sequence):
            // Linux answers echoes to a multicast group it joined (echo_ignore_multicast is
            // 0 by default), from the address that suits the asker.
            guard !header.source.isUnspecified,
                  let source = toUs ? header.destination : ipv6.source(for: header.source) else {
                counters.drops.count(.icmpIgnored); return
            }
            let data = UnsafeRawBufferPointer(rebasing: bytes[ICMPv6Message.headerLength...])
            let peer = header.source
            _ = sendIPv6(to: peer, from: source, nextHeader: IPv6NextHeader.icmpv6, payloadLength: bytes.count,
                         now: now, sink: &sink) { out in
                _ = ICMPv6Message.emitEcho(reply: true, identifier: identifier, sequence: sequence, data: data,
                                           source: source, destination: peer, into: out)
            }
        case .neighbourSolicitation, .neighbourAdvertisement, .routerAdvertisement:
            neighbourDiscovery(message, header: header, answer: true, now: now, sink: &sink)
        case .destinationUnreachable(let code, let quoted):
            reportError(.destinationUnreachable(code: Self.unreachableCodeAsIPv4(code)), quoted: quoted,
                        raw: (ICMPv6Message.Kind.destinationUnreachable, code, 0), offender: header.source, message: bytes,
                        now: now, sink: &sink)
        case .packetTooBig(let mtu, let quoted):
            reportError(.fragmentationNeeded(nextHopMTU: UInt16(clamping: mtu)), quoted: quoted,
                        raw: (ICMPv6Message.Kind.packetTooBig, 0, mtu), offender: header.source, message: bytes, now: now, sink: &sink)
        case .timeExceeded(let code, let quoted):
            reportError(.timeExceeded(code: code), quoted: quoted, raw: (ICMPv6Message.Kind.timeExceeded, code, 0),
                        offender: header.source, message: bytes, now: now, sink: &sink)
        case .other(MLDMessage.Kind.query, _):
            receiveMLDQuery(bytes, header: header, sink: &sink)
        case .echoReply, .routerSolicitation, .parameterProblem, .other:
            counters.drops.count(.icmpIgnored)
        }
    }

    /// An ICMPv6 error about a packet we sent goes to the transport that sent it: a TCP
    /// segment's to its connection (RFC 4443 3, RFC 8201 for packet too big), a UDP
    /// datagram's to the socket bound to its source port (`datagramErrorHandler`).
    /// `raw`: the message's own type, code and MTU (what IPV6_RECVERR reports); `message`:
    /// the whole ICMPv6 message, whose quote holds the packet's start.
    func reportError(_ kind: ICMPErrorReport.Kind, quoted: QuotedIPv6Packet, raw: (type: UInt8, code: UInt8, info: UInt32),
                     offender: IPv6Address, message: UnsafeRawBufferPointer, now: Instant, sink: inout some FrameSink) {
        guard let ports = quoted.ports, ipv6.state(of: quoted.header.source) != nil else {
            counters.drops.count(.icmpIgnored); return
        }
        let tuple = FourTuple(local: Endpoint(quoted.header.source, ports.source),
                              remote: Endpoint(quoted.header.destination, ports.destination))
        switch quoted.upperLayer {
        case IPProtocol.tcp where tcp != nil: tcp?.icmpError(kind, about: tuple, now: now, host: self, sink: &sink)
        case IPProtocol.udp where datagramErrorHandler != nil:
            let (errno, hard) = Self.errorNumber6(type: raw.type, code: raw.code)
            let error = DatagramError(errorNumber: errno, hard: hard, origin: DatagramError.originICMP6, type: raw.type,
                                      code: raw.code, info: raw.info, offender: IPAddress(offender), datagram: tuple)
            let start = min(message.count, ICMPv6Message.headerLength + (quoted.upperLayerOffset ?? message.count) + UDPHeader.length)
            datagramErrorHandler?(error, UnsafeRawBufferPointer(rebasing: message[start...]))
        default: counters.drops.count(.icmpIgnored)
        }
    }

    /// A UDP datagram over IPv6 (RFC 8200 8.1: a zero checksum is not "none" as on IPv4,
    /// the parse refuses it). To the socket bound to its port; nobody there is answered
    /// with port unreachable (RFC 4443 3.1), unless it went to a group.
    func receiveUDP6(_ bytes: UnsafeRawBufferPointer, packet: UnsafeRawBufferPointer, header: IPv6Header, toUs: Bool,
                     now: Instant, sink: inout some FrameSink) {
        let udp: UDPHeader
        do {
            udp = try UDPHeader(parsing: bytes, addresses: .v6(source: header.source, destination: header.destination),
                                verifyChecksum: !checksumsTrusted)
        } catch { counters.drops.count(error); return }
        guard !header.source.isUnspecified else { counters.drops.count(.ipv6BadSource); return }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[UDPHeader.length..<udp.datagramLength])
        let arrival = DatagramArrival(source: Endpoint(header.source, udp.sourcePort),
                                      destination: Endpoint(header.destination, udp.destinationPort),
                                      trafficClass: header.trafficClass, hopLimit: header.hopLimit, at: now)
        switch udpReceiver?(payload, arrival) ?? .noSocket {
        case .delivered: return
        case .queueFull: counters.drops.count(.udpQueueFull); return
        case .noSocket: break
        }
        counters.drops.count(.udpNoSocket)
        if toUs {
            sendICMPv6Error(type: ICMPv6Message.Kind.destinationUnreachable, code: ICMPv6Message.UnreachableCode.port,
                            for: packet, header: header, now: now, sink: &sink)
        }
    }

    /// Linux's icmpv6_err_convert: the errno an ICMPv6 error means, and whether it is hard.
    static func errorNumber6(type: UInt8, code: UInt8) -> (errno: Int32, hard: Bool) {
        switch (type, code) {
        case (ICMPv6Message.Kind.destinationUnreachable, ICMPv6Message.UnreachableCode.noRoute): (ENETUNREACH, false)
        case (ICMPv6Message.Kind.destinationUnreachable, ICMPv6Message.UnreachableCode.beyondScope),
             (ICMPv6Message.Kind.destinationUnreachable, ICMPv6Message.UnreachableCode.address): (EHOSTUNREACH, false)
        case (ICMPv6Message.Kind.destinationUnreachable, ICMPv6Message.UnreachableCode.port): (ECONNREFUSED, true)
        case (ICMPv6Message.Kind.destinationUnreachable, _): (EACCES, true)
        case (ICMPv6Message.Kind.packetTooBig, _): (EMSGSIZE, true)
        case (ICMPv6Message.Kind.parameterProblem, _): (EPROTO, true)
        default: (EHOSTUNREACH, false) // time exceeded
        }
    }

    /// ICMPv6's destination-unreachable codes in ICMPv4's terms, so one errno table serves
    /// both (Linux's icmpv6_err_convert): no route as net unreachable, address unreachable
    /// and beyond scope as host unreachable, port as port, the policy codes as prohibited.
    static func unreachableCodeAsIPv4(_ code: UInt8) -> UInt8 {
        switch code {
        case ICMPv6Message.UnreachableCode.noRoute: ICMPv4Message.UnreachableCode.network
        case ICMPv6Message.UnreachableCode.beyondScope, ICMPv6Message.UnreachableCode.address: ICMPv4Message.UnreachableCode.host
        case ICMPv6Message.UnreachableCode.port: ICMPv4Message.UnreachableCode.port
        default: ICMPv4Message.UnreachableCode.adminProhibited
        }
    }

    /// Learns from a neighbour discovery frame another core received and answers (every
    /// core keeps its own neighbour cache and address states). Not counted: the arrival
    /// core counted it.
    func learnNeighbour6(from ethernet: EthernetFrameView, now: Instant, sink: inout some FrameSink) {
        guard let header = try? IPv6Header(parsing: ethernet.payload), header.nextHeader == IPv6NextHeader.icmpv6,
              !header.source.isMulticast else { return }
        let bytes = UnsafeRawBufferPointer(rebasing: ethernet.payload[IPv6Header.length..<(IPv6Header.length + header.payloadLength)])
        guard let message = try? ICMPv6Message(parsing: bytes, source: header.source, destination: header.destination,
                                               hopLimit: header.hopLimit, verifyChecksum: !checksumsTrusted) else { return }
        neighbourDiscovery(message, header: header, answer: false, now: now, sink: &sink)
    }

    /// RFC 4861 7.2.3-7.2.5 and RFC 4862 5.4.3-5.4.4: learn the sender, answer a
    /// solicitation for our address when `answer`, and notice another node on ours.
    func neighbourDiscovery(_ message: ICMPv6Message, header: IPv6Header, answer: Bool, now: Instant,
                            sink: inout some FrameSink) {
        switch message {
        case .neighbourSolicitation(let target, let sourceLinkLayer):
            switch ipv6.state(of: target) {
            case nil, .duplicate?:
                if answer { counters.drops.count(.ipv6NotForUs) }
                return
            case .tentative?:
                // A probe from :: for an address we are probing: another node wants it too.
                if header.source.isUnspecified && ipv6.markDuplicate(target) && answer {
                    counters.drops.count(.ndpDuplicateAddress)
                }
                return
            case .preferred?:
                break
            }
            if let mac = sourceLinkLayer, !header.source.isUnspecified, !mac.isMulticast {
                flush(neighbours6.learn(header.source, at: mac, now: now), to: mac, sink: &sink)
            }
            guard answer else { return }
            // Answer from the target; to the asker, or to all nodes for a probe (7.2.4).
            let advertisement = NeighbourAdvertisement(target: target, solicited: !header.source.isUnspecified,
                                                       override: true, targetLinkLayer: self.mac)
            let peer = header.source.isUnspecified ? IPv6Address.allNodes : header.source
            _ = sendIPv6(to: peer, from: target, nextHeader: IPv6NextHeader.icmpv6, payloadLength: 32,
                         hopLimit: Self.neighbourDiscoveryHopLimit, now: now, sink: &sink) { out in
                _ = ICMPv6Message.emitNeighbourAdvertisement(advertisement, source: target, destination: peer, into: out)
            }
        case .neighbourAdvertisement(let advertisement):
            switch ipv6.state(of: advertisement.target) {
            case .tentative?:
                if ipv6.markDuplicate(advertisement.target) && answer { counters.drops.count(.ndpDuplicateAddress) }
            case .preferred?, .duplicate?:
                // Someone else claims an address we hold: keep it (Linux logs and keeps it).
                if answer { counters.drops.count(.ndpAddressConflict) }
            case nil:
                if let mac = advertisement.targetLinkLayer {
                    flush(neighbours6.advertised(advertisement, now: now), to: mac, sink: &sink)
                }
            }
        case .routerAdvertisement(let advertisement):
            // A router is a neighbour like any other; its advice is taken only when asked to.
            if let mac = advertisement.sourceLinkLayer, !mac.isMulticast {
                flush(neighbours6.learn(header.source, at: mac, isRouter: true, now: now, create: true), to: mac, sink: &sink)
            }
            if configuration.acceptRouterAdvertisements {
                routers6.learn(advertisement, from: header.source, linkMTU: configuration.mtu, now: now)
                nextRouterSolicitation = nil // answered: no more solicitations
            } else if answer {
                counters.drops.count(.icmpIgnored)
            }
        default:
            return
        }
    }

    /// TCP over IPv6 goes to the same table of connections and listeners as IPv4's.
    func receiveTCPv6(_ bytes: UnsafeRawBufferPointer, header: IPv6Header, now: Instant, sink: inout some FrameSink) {
        let addresses = IPAddressPair.v6(source: header.source, destination: header.destination)
        let segment: TCPSegmentHeader
        do { segment = try TCPSegmentHeader(parsing: bytes, addresses: addresses, verifyChecksum: !checksumsTrusted) }
        catch { counters.drops.count(error); return }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[segment.headerLength...])
        receiveTCP(segment, payload: payload, source: IPAddress(header.source), destination: IPAddress(header.destination),
                   now: now, sink: &sink)
    }

    /// Sends an ICMPv6 error about `packet` (RFC 4443 2.4 (e): never about another error, a
    /// packet to a multicast group other than packet-too-big and unrecognised options, or
    /// one from an address that does not name a single node).
    func sendICMPv6Error(type: UInt8, code: UInt8, parameter: UInt32 = 0, for packet: UnsafeRawBufferPointer,
                         header: IPv6Header, now: Instant, sink: inout some FrameSink) {
        let peer = header.source
        guard !peer.isUnspecified, !peer.isMulticast,
              !header.destination.isMulticast || type == ICMPv6Message.Kind.packetTooBig
                || (type == ICMPv6Message.Kind.parameterProblem && code == ICMPv6Message.ProblemCode.unrecognizedOption),
              let source = ipv6.isPreferred(header.destination) ? header.destination : ipv6.source(for: peer) else { return }
        if header.nextHeader == IPv6NextHeader.icmpv6, packet.count > IPv6Header.length,
           packet[IPv6Header.length] < 128 { return }
        guard icmpErrors.allow(now: now) else { counters.drops.count(.icmpRateLimited); return }
        let quoted = min(packet.count, ICMPv6Message.maximumQuote)
        _ = sendIPv6(to: peer, from: source, nextHeader: IPv6NextHeader.icmpv6,
                     payloadLength: ICMPv6Message.headerLength + quoted, now: now, sink: &sink) { out in
            _ = ICMPv6Message.emitError(type: type, code: code, parameter: parameter, original: packet,
                                        source: source, destination: peer, into: out)
        }
    }

    // MARK: Output

    /// Sends one IPv6 packet of `payloadLength` bytes that `fill` writes, from `source` (one
    /// of ours: `ipv6.source(for:)` picks it). On-link destinations go straight, others
    /// through a default router an advertisement gave. While the next hop resolves, the
    /// frame waits in its neighbour cache entry. `hopLimit` nil: the advertised one, or 64.
    /// `offload` asks the link to finish the transport checksum or cut a TCP super-segment,
    /// as for IPv4 (`sendIPv4`); a super-segment may exceed the MTU up to 64 KiB. A
    /// socket's datagram to a group leaves as its `multicast` options say (hop limit and
    /// loop, as IPv4's). A `payload` left in place, as for IPv4.
    public func sendIPv6(to destination: IPv6Address, from source: IPv6Address, nextHeader: UInt8, payloadLength: Int,
                         hopLimit: UInt8? = nil, now: Instant, sink: inout some FrameSink, offload: FrameOffload = .none,
                         marking: IPMarking = .none, multicast: MulticastSending? = nil, payload: PayloadSpans = .none,
                         fill: (UnsafeMutableRawBufferPointer) -> Void) -> Result<Void, SendError> {
        precondition(payload.isEmpty || offload.needsChecksum, "a payload left in place needs the link to sum it")
        // A group's: the socket's IPV6_MULTICAST_HOPS. Else the socket's IPV6_UNICAST_HOPS,
        // else the caller's, else the advertised one, else 64.
        let group = destination.isMulticast ? multicast : nil
        let hopLimit = group?.timeToLive ?? (marking.timeToLive != 0 ? marking.timeToLive : hopLimit ?? routers6.hopLimit ?? 64)
        let loop = group?.loop ?? false
        let ipOffset = EthernetFrameView.headerLength
        let transportOffset = ipOffset + IPv6Header.length
        var frameOffload = offload.placed(at: transportOffset, ipv6: true)
        let toOurs = ipv6.state(of: destination) != nil
        let onLink = toOurs || destination.isMulticast || ipv6.isOnLink(destination) || routers6.isOnLink(destination, now: now)
        guard let nextHop = onLink ? destination : routers6.defaultRouter(now: now) else {
            counters.drops.count(.noRoute); return .failure(.noRoute)
        }
        // As for IPv4: a run of datagrams is always cut, a TCP super-segment when it exceeds
        // the MTU, anything else larger than the MTU leaves in fragments (RFC 8200 4.5).
        if (IPv6Header.length + payloadLength > routers6.mtu ?? configuration.mtu && (!toOurs || offload.segments))
            || (offload.datagrams && offload.segments) {
            if !offload.segments && nextHeader != IPProtocol.tcp && offload == .none {
                return sendFragmentsIPv6(to: destination, from: source, nextHop: nextHop, nextHeader: nextHeader,
                                         payloadLength: payloadLength, hopLimit: hopLimit, trafficClass: marking.typeOfService,
                                         loop: loop, now: now, sink: &sink, fill: fill)
            }
            let segmenting = offload.datagrams ? offloads.udpSegmentation : offloads.tcpSegmentation6
            guard offload.segments, segmenting, payloadLength <= Int(UInt16.max) else {
                counters.drops.count(.frameTooLarge); return .failure(.tooLarge)
            }
            frameOffload.segmentSize = offload.segmentSize
            frameOffload.datagrams = offload.datagrams
        }
        guard payloadLength <= Int(UInt16.max) else { counters.drops.count(.frameTooLarge); return .failure(.tooLarge) }
        let frame = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<(transportOffset + payloadLength)])
        var header = IPv6Header(payloadLength: payloadLength, nextHeader: nextHeader, source: source, destination: destination,
                                hopLimit: hopLimit)
        header.trafficClass = marking.typeOfService
        header.emit(into: UnsafeMutableRawBufferPointer(rebasing: frame[ipOffset...]))
        fill(UnsafeMutableRawBufferPointer(rebasing: frame[transportOffset...]))
        if toOurs {
            payload.place(atEndOf: frame)
            EthernetHeader(destination: mac, source: mac, etherType: EtherType.ipv6).emit(into: frame)
            loopBack(frame, offload: frameOffload)
            return .success(())
        }
        return deliverIPv6(frame, destination: destination, nextHop: nextHop, source: source, offload: frameOffload, loop: loop,
                           now: now, sink: &sink, payload: payload)
    }

    /// Sends a finished IPv6 frame to `nextHop` (a group's frames to its Ethernet group), or
    /// holds it in the neighbour cache while the next hop resolves. With `loop` this host's
    /// own members of the group receive it too, and with a hop limit of 0 only they do. A
    /// `payload` left in place goes with the frame to the link, or into the frame where the
    /// frame must be whole.
    func deliverIPv6(_ frame: UnsafeMutableRawBufferPointer, destination: IPv6Address, nextHop: IPv6Address, source: IPv6Address,
                     offload frameOffload: FrameOffload, loop: Bool = false, now: Instant,
                     sink: inout some FrameSink, payload: PayloadSpans = .none) -> Result<Void, SendError> {
        if let neighbour = destination.isMulticast ? destination.multicastMAC : neighbours6.lookup(nextHop, now: now) {
            EthernetHeader(destination: neighbour, source: mac, etherType: EtherType.ipv6).emit(into: frame)
            var payload = payload
            if destination.isMulticast { // whole: it may loop back too
                payload.place(atEndOf: frame)
                payload = .none
            }
            if loop && groups6.contains(destination) { loopBack(frame, offload: frameOffload) }
            if frame[EthernetFrameView.headerLength + 7] > 0 { transmit(frame, offload: frameOffload, payload: payload, sink: &sink) }
            return .success(())
        }
        payload.place(atEndOf: frame)
        EthernetHeader(destination: .zero, source: mac, etherType: EtherType.ipv6).emit(into: frame)
        switch neighbours6.enqueue(PendingFrame(Array(UnsafeRawBufferPointer(frame)), offload: frameOffload), for: nextHop, now: now) {
        case .sendRequest:
            // From the packet's source when the next hop shares its scope, else from the
            // address that suits the next hop (a router's link-local one).
            let from = nextHop == destination ? source : ipv6.source(for: nextHop) ?? source
            sendNeighbourSolicitation(for: nextHop, from: from, to: nextHop.solicitedNodeMulticast,
                                      destinationMAC: nextHop.solicitedNodeMulticast.multicastMAC, sink: &sink)
        case .queued: break
        case .queuedDroppingOldest: counters.drops.count(.ndpQueueOverflow)
        case .cacheFull: counters.drops.count(.ndpQueueOverflow); return .failure(.neighbourCacheFull)
        }
        return .success(())
    }

    /// Sends a neighbour solicitation for `target`: to its solicited-node group to resolve
    /// it, to its cached address to probe it, or from :: to detect a duplicate. Built
    /// directly: it must not wait for a resolution itself.
    func sendNeighbourSolicitation(for target: IPv6Address, from source: IPv6Address, to destination: IPv6Address,
                                   destinationMAC: MACAddress, sink: inout some FrameSink) {
        let ipOffset = EthernetFrameView.headerLength
        let transportOffset = ipOffset + IPv6Header.length
        let transport = UnsafeMutableRawBufferPointer(rebasing: scratch[transportOffset...])
        let length = ICMPv6Message.emitNeighbourSolicitation(target: target, sourceLinkLayer: source.isUnspecified ? nil : mac,
                                                             source: source, destination: destination, into: transport)
        IPv6Header(payloadLength: length, nextHeader: IPv6NextHeader.icmpv6, source: source, destination: destination,
                   hopLimit: Self.neighbourDiscoveryHopLimit).emit(into: UnsafeMutableRawBufferPointer(rebasing: scratch[ipOffset...]))
        EthernetHeader(destination: destinationMAC, source: mac, etherType: EtherType.ipv6).emit(into: scratch)
        transmit(UnsafeRawBufferPointer(rebasing: scratch[0..<(transportOffset + length)]), sink: &sink)
    }

    /// Runs IPv6's timers: addresses whose detection ended, solicitations to repeat,
    /// neighbours given up on.
    func tick6(now: Instant, sink: inout some FrameSink) {
        let ready = ipv6.finishDetection(now: now)
        if configuration.acceptRouterAdvertisements && speaksForTheLink && ready.contains(where: \.isLinkLocal) {
            routerSolicitationsLeft = Self.maximumRouterSolicitations
            nextRouterSolicitation = now
        }
        if let due = nextRouterSolicitation, due <= now { solicitRouters(now: now, sink: &sink) }
        let due = neighbours6.expire(now: now)
        for target in due.multicast {
            guard let source = ipv6.source(for: target) else { continue }
            sendNeighbourSolicitation(for: target, from: source, to: target.solicitedNodeMulticast,
                                      destinationMAC: target.solicitedNodeMulticast.multicastMAC, sink: &sink)
        }
        for (target, neighbour) in due.unicast {
            guard let source = ipv6.source(for: target) else { continue }
            sendNeighbourSolicitation(for: target, from: source, to: target, destinationMAC: neighbour, sink: &sink)
        }
        for failure in due.failed { counters.drops.count(.ndpUnresolved, UInt64(failure.droppedPackets)) }
    }

    var nextDeadline6: Instant? {
        Self.earlier(Self.earlier(ipv6.nextDeadline, neighbours6.nextDeadline), nextRouterSolicitation)
    }

    /// RFC 4861 10: MAX_RTR_SOLICITATIONS, RTR_SOLICITATION_INTERVAL.
    static let maximumRouterSolicitations = 3
    static let routerSolicitationInterval = Interval.seconds(4)

    /// Asks the routers on the link to advertise (RFC 4861 6.3.7), up to three times, four
    /// seconds apart, until one answers.
    func solicitRouters(now: Instant, sink: inout some FrameSink) {
        guard routerSolicitationsLeft > 0, let source = ipv6.source(for: .allRouters) else { nextRouterSolicitation = nil; return }
        routerSolicitationsLeft -= 1
        nextRouterSolicitation = routerSolicitationsLeft > 0 ? now + Self.routerSolicitationInterval : nil
        let destination = IPv6Address.allRouters
        let mac = self.mac
        _ = sendIPv6(to: destination, from: source, nextHeader: IPv6NextHeader.icmpv6, payloadLength: 16,
                     hopLimit: Self.neighbourDiscoveryHopLimit, now: now, sink: &sink) { out in
            _ = ICMPv6Message.emitRouterSolicitation(sourceLinkLayer: mac, source: source, destination: destination, into: out)
        }
    }
}
