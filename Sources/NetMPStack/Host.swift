// errno numbers only (PureProtocolTests): the host names the errors ICMP reports.
import var Glibc.ECONNREFUSED
import var Glibc.EHOSTDOWN
import var Glibc.EHOSTUNREACH
import var Glibc.EMSGSIZE
import var Glibc.ENETUNREACH
import var Glibc.ENONET
import var Glibc.ENOPROTOOPT
import var Glibc.EOPNOTSUPP
import NetMPTCP
import NetMPWire

/// An ICMP error that arrived for a datagram this host sent, handed to the transport that
/// owns the quoted ports (RFC 1122 4.2.3.9 for TCP, 4.1.3.3 for UDP).
public struct ICMPErrorReport: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case destinationUnreachable(code: UInt8)
        case fragmentationNeeded(nextHopMTU: UInt16)
        case timeExceeded(code: UInt8)
    }
    public var kind: Kind
    /// The router or host that sent the error.
    public var reporter: IPv4Address
    public var quoted: QuotedDatagram
}

extension ICMPErrorReport {
    /// Linux's icmp_err_convert: the errno a destination-unreachable code becomes, and
    /// whether it is a hard error (reported to a connected UDP socket, which soft errors
    /// are not without IP_RECVERR).
    public static func errorNumber(unreachableCode code: UInt8) -> (errno: Int32, hard: Bool) {
        switch code {
        case 0, 11: (101, false)                 // ENETUNREACH: net unreachable, for TOS
        case 1, 12: (113, false)                 // EHOSTUNREACH: host unreachable, for TOS
        case 2: (92, true)                       // ENOPROTOOPT: protocol unreachable
        case 3: (111, true)                      // ECONNREFUSED: port unreachable
        case 4: (90, false)                      // EMSGSIZE: fragmentation needed
        case 5: (95, false)                      // EOPNOTSUPP: source route failed
        case 6, 9: (101, true)                   // ENETUNREACH: net unknown, prohibited
        case 7: (112, true)                      // EHOSTDOWN: host unknown
        case 8: (64, true)                       // ENONET: host isolated
        default: (113, true)                     // EHOSTUNREACH: prohibited, filtered, precedence
        }
    }
}

/// Why `sendIPv4` could not send or queue a packet.
public enum SendError: Error, Equatable, Sendable {
    case noRoute
    case tooLarge
    /// The neighbour cache is full of live entries (ENOBUFS to a socket).
    case neighbourCacheFull
}

/// One IPv4 host on one Ethernet link: ARP, IPv4 input and output, ICMP. Pure: frames,
/// `now` and a sink go in; frames and counts come out. It owns one frame-sized scratch
/// buffer that every reply is built in, so answering a frame allocates nothing.
public final class Host {
    public let configuration: StackConfiguration
    public var routes: RoutingTable
    public private(set) var arp: ARPCache
    /// IPv6 addresses with their detection state, and IPv6's neighbour cache.
    public internal(set) var ipv6: IPv6AddressTable
    public internal(set) var neighbours6: NeighbourCache
    /// The bound on the errors this host sends, ICMP and ICMPv6 alike.
    var icmpErrors = ICMPRateLimiter()
    /// Default routers, on-link prefixes and the MTU router advertisements gave.
    public internal(set) var routers6 = IPv6Routers()
    /// Router solicitations still to send, and when the next goes (RFC 4861 6.3.7).
    var routerSolicitationsLeft = 0
    var nextRouterSolicitation: Instant?
    /// This host probes and solicits for the link (core 0 does, for all of them), and
    /// reports its IPv4 groups' changes.
    var speaksForTheLink = false
    /// The IPv4 groups the host's sockets joined (Host+Multicast), the changes reported
    /// once that are to be reported again (RFC 3376 8.1's robustness), and when.
    public internal(set) var groups = MulticastGroups(always: IGMPMessage.allHosts)
    /// The IPv6 groups the host's sockets joined (all-nodes and each address's
    /// solicited-node group are `ipv6`'s), and their changes to report again.
    public internal(set) var groups6 = MulticastGroups(always: IPv6Address.allNodes)
    var mldChangesToRepeat: [IPv6Address: MembershipRecord] = [:]
    var igmpChangesToRepeat: [IPv4Address: MembershipRecord] = [:]
    var nextMembershipRepeat: Instant?
    /// Fragmented packets of either family being put back together, and the packet being
    /// handled is one (a TCP segment in it is not delivered, nor a fragment inside it).
    public let reassembly = FragmentReassembly()
    var reassembling = false
    /// The unfragmentable part of an IPv6 fragment, patched to name what follows its
    /// fragment header (as the whole packet will), before it is kept.
    let fragmentHeader = UnsafeMutableRawBufferPointer.allocate(byteCount: FragmentReassembly.maximumHeader, alignment: 16)
    /// The identification of the next IPv6 packet netmp fragments.
    var nextFragmentIdentification: UInt32 = 1

    /// Starts the identifications of fragmented packets from `seed` (random: RFC 7739 asks
    /// that they be hard to guess), each core in its own part of IPv4's 16-bit space, so
    /// that two cores' fragments to one destination do not share one.
    public func seedIdentifications(_ seed: UInt64, core: Int, of cores: Int) {
        let share = 65_536 / max(1, cores)
        nextIdentification = UInt16(truncatingIfNeeded: core * share + Int(seed % UInt64(max(1, share))))
        nextFragmentIdentification = UInt32(truncatingIfNeeded: seed >> 32) &+ UInt32(truncatingIfNeeded: core) &* 0x9E37_79B9
    }
    public internal(set) var counters = InterfaceCounters()
    /// What the link finishes for us (checksums, TCP segmentation); none unless the runtime
    /// negotiated them with the TAP.
    public var offloads = LinkOffloads.none
    /// Called for ICMP errors about datagrams we sent (the transport hook), after TCP saw them.
    public var icmpErrorHandler: ((ICMPErrorReport) -> Void)?
    /// The TCP sockets on this host; without it every segment is answered as CLOSED.
    public var tcp: TCPEndpoints?
    /// An ICMP or ICMPv6 error about a UDP datagram we sent, with the datagram's ports and
    /// addresses in it, and the datagram's payload as far as the error quoted it (the
    /// runtime hands it to the socket bound to `local.port`).
    public var datagramErrorHandler: ((_ error: DatagramError, _ quotedPayload: UnsafeRawBufferPointer) -> Void)?
    /// Hands a UDP payload of either family to the socket bound to its destination port (the
    /// runtime's per-core table), which decides by its source and destination whether it is
    /// its own.
    public var udpReceiver: ((_ payload: UnsafeRawBufferPointer, _ arrival: DatagramArrival) -> UDPDelivery)?

    public enum UDPDelivery: Sendable { case delivered, noSocket, queueFull }

    var nextIdentification: UInt16 = 1
    /// The link's word on the frame being handled: its transport checksum was verified (or
    /// is left partial for us to trust, as the kernel does for its own frames).
    var checksumsTrusted = false
    /// The time of the frame or tick being handled, for reactions that have no `now` of their own.
    var lastNow = Instant.zero
    let scratch: UnsafeMutableRawBufferPointer
    /// What this host sent to its own address (programs on one stack talking to each
    /// other), received on the next `takeLoopedFrames`.
    let loopback = LoopbackQueue()

    public var address: IPv4Address { configuration.address }
    /// One of this host's addresses, of either family (an IPv6 one in any detection state).
    public func isOurs(_ candidate: IPAddress) -> Bool {
        if let v4 = candidate.v4 { return v4 == address }
        return ipv6.state(of: candidate.bits) != nil
    }
    public var mac: MACAddress { configuration.mac }
    var subnetMask: UInt32 { IPv4Address.mask(prefixLength: configuration.prefixLength) }
    var subnetBroadcast: IPv4Address { IPv4Address(address.value | ~subnetMask) }
    /// 255.255.255.255 or our subnet's broadcast address.
    public func isBroadcast(_ candidate: IPAddress) -> Bool {
        guard let v4 = candidate.v4 else { return false }
        return v4.isLimitedBroadcast || v4 == subnetBroadcast
    }

    public init(configuration: StackConfiguration, arpTiming: ARPCache.Timing = .init(),
                neighbourTiming: NeighbourCache.Timing = .init()) {
        self.configuration = configuration
        routes = RoutingTable(interface: configuration.address, prefixLength: configuration.prefixLength,
                              gateway: configuration.gateway)
        arp = ARPCache(timing: arpTiming)
        ipv6 = IPv6AddressTable(linkLocal: configuration.linkLocalAddress, configured: configuration.ipv6Addresses)
        neighbours6 = NeighbourCache(timing: neighbourTiming)
        scratch = .allocate(byteCount: Self.scratchSize, alignment: 16)
    }

    /// The scratch buffer holds the largest frame netmp builds: a 64 KiB packet behind its
    /// Ethernet header, or a UDP datagram of 64 KiB to fragment behind IPv6's header and
    /// fragment header (the fragments are cut from it in place).
    static let scratchSize = EthernetFrameView.headerLength + IPv6Header.length + 8 + 65_535

    deinit {
        scratch.deallocate()
        fragmentHeader.deallocate()
    }

    // MARK: Input

    /// Learns from an ARP frame another core received and answered (each core keeps its own
    /// neighbour cache, so every core sees every ARP frame; only the arrival core answers).
    /// Not counted as a frame in: the arrival core counted it.
    public func learnNeighbour(from frame: UnsafeRawBufferPointer, now: Instant, sink: inout some FrameSink) {
        guard let ethernet = try? EthernetFrameView(validating: frame), ethernet.vlanIdentifier == nil else { return }
        if ethernet.etherType == EtherType.ipv6 { learnNeighbour6(from: ethernet, now: now, sink: &sink); return }
        guard ethernet.etherType == EtherType.arp, let packet = try? ARPPacket(parsing: ethernet.payload),
              packet.senderIP != address, !packet.senderIP.isUnspecified, !packet.senderMAC.isMulticast else { return }
        let waiting = arp.learn(packet.senderIP, at: packet.senderMAC, now: now, create: packet.targetIP == address)
        flush(waiting, to: packet.senderMAC, sink: &sink)
    }

    /// Handles one arriving frame: answers what needs an answer through `sink`, counts the rest.
    /// `marks` are what the link vouched for: checksums it verified are not summed again.
    public func receive(frame: UnsafeRawBufferPointer, marks: ArrivalMarks = .none, now: Instant, sink: inout some FrameSink) {
        arrival(length: frame.count, marks: marks, now: now)
        defer { checksumsTrusted = false }
        let ethernet: EthernetFrameView
        do { ethernet = try EthernetFrameView(validating: frame) } catch { counters.drops.count(error); return }
        guard ethernet.vlanIdentifier == nil else { counters.drops.count(.vlanTagged); return }
        guard ethernet.destination == mac || ethernet.destination.isBroadcast
                || (ethernet.etherType == EtherType.ipv6 && (ipv6.isJoined(ethernet.destination)
                                                             || groups6.contains(ethernet.destination)))
                || (ethernet.etherType == EtherType.ipv4 && groups.contains(ethernet.destination)) else {
            counters.drops.count(.notForUs); return
        }
        switch ethernet.etherType {
        case EtherType.arp: receiveARP(ethernet.payload, now: now, sink: &sink)
        case EtherType.ipv4: receiveIPv4(ethernet.payload, now: now, sink: &sink)
        case EtherType.ipv6: receiveIPv6(ethernet.payload, now: now, sink: &sink)
        default: counters.drops.count(.unsupportedEtherType)
        }
    }

    /// A frame came in: counted, its marks in force while it is handled.
    func arrival(length: Int, marks: ArrivalMarks, now: Instant) {
        lastNow = now
        counters.framesIn &+= UInt64(marks.wireSegments)
        counters.bytesIn &+= UInt64(length)
        if marks.wireSegments > 1 { counters.superFramesIn &+= 1 }
        checksumsTrusted = marks.checksumsTrusted
    }

    func receiveARP(_ bytes: UnsafeRawBufferPointer, now: Instant, sink: inout some FrameSink) {
        let packet: ARPPacket
        do { packet = try ARPPacket(parsing: bytes) } catch { counters.drops.count(error); return }
        guard packet.senderIP != address else { counters.drops.count(.arpAddressConflict); return }
        // RFC 826 "packet reception": merge the sender into an existing entry; add it only
        // when we are the target. A sender of 0.0.0.0 is a probe (RFC 5227): nothing to learn.
        let forUs = packet.targetIP == address
        if !packet.senderIP.isUnspecified && !packet.senderMAC.isMulticast {
            let waiting = arp.learn(packet.senderIP, at: packet.senderMAC, now: now, create: forUs)
            flush(waiting, to: packet.senderMAC, sink: &sink)
        }
        guard forUs else { counters.drops.count(.notForUs); return }
        if packet.operation == .request {
            let reply = ARPPacket(operation: .reply, senderMAC: mac, senderIP: address,
                                  targetMAC: packet.senderMAC, targetIP: packet.senderIP)
            transmitARP(reply, to: packet.senderMAC, sink: &sink)
        }
    }

    func receiveIPv4(_ bytes: UnsafeRawBufferPointer, now: Instant, sink: inout some FrameSink) {
        let header: IPv4Header
        do { header = try IPv4Header(parsing: bytes) } catch { counters.drops.count(error); return }
        let destination = header.destination
        let toUs = destination == address
        guard toUs || destination.isLimitedBroadcast || destination == subnetBroadcast
                || (destination.isMulticast && groups.contains(destination)) else {
            counters.drops.count(.ipNotForUs); return
        }
        guard isUnicastSource(header.source) else {
            counters.drops.count(.ipBadSource); return
        }
        // Ethernet pads short frames: the datagram ends at its total length, not the frame's.
        let datagram = UnsafeRawBufferPointer(rebasing: bytes[0..<header.totalLength])
        if header.isFragment { reassembleIPv4(datagram, header: header, now: now, sink: &sink); return }
        let payload = UnsafeRawBufferPointer(rebasing: datagram[header.headerLength...])
        switch header.proto {
        case IPProtocol.icmp: receiveICMP(payload, header: header, toUs: toUs, now: now, sink: &sink)
        case IPProtocol.udp: receiveUDP(payload, datagram: datagram, header: header, toUs: toUs, now: now, sink: &sink)
        case IPProtocol.tcp where reassembling: counters.drops.count(.fragmentTCP)
        case IPProtocol.tcp: receiveTCP(payload, header: header, toUs: toUs, now: now, sink: &sink)
        case IPProtocol.igmp: receiveIGMP(payload, sink: &sink)
        default:
            counters.drops.count(.unsupportedProtocol)
            if toUs { sendUnreachable(code: ICMPv4Message.UnreachableCode.proto, for: datagram, header: header, now: now, sink: &sink) }
        }
    }

    /// A source a datagram may come from: not a group or a broadcast (RFC 1122 3.2.1.3).
    func isUnicastSource(_ source: IPv4Address) -> Bool {
        !source.isMulticast && !source.isLimitedBroadcast && source != subnetBroadcast
    }

    func receiveICMP(_ bytes: UnsafeRawBufferPointer, header: IPv4Header, toUs: Bool, now: Instant,
                     sink: inout some FrameSink) {
        let message: ICMPv4Message
        do { message = try ICMPv4Message(parsing: bytes) } catch { counters.drops.count(error); return }
        switch message {
        case .echoRequest(let identifier, let sequence):
            // Like Linux with icmp_echo_ignore_broadcasts=1 (its default), broadcast echoes
            // get no answer: they are how smurf attacks amplify.
            guard toUs else { counters.drops.count(.icmpIgnored); return }
            let data = UnsafeRawBufferPointer(rebasing: bytes[ICMPv4Message.headerLength...])
            _ = sendIPv4(to: header.source, proto: IPProtocol.icmp, payloadLength: bytes.count, now: now, sink: &sink) { out in
                _ = ICMPv4Message.emitEcho(reply: true, identifier: identifier, sequence: sequence, data: data, into: out)
            }
        case .destinationUnreachable(let code, let mtu, let quoted):
            let kind: ICMPErrorReport.Kind = code == ICMPv4Message.UnreachableCode.fragmentationNeeded
                ? .fragmentationNeeded(nextHopMTU: mtu) : .destinationUnreachable(code: code)
            reportError(kind, from: header.source, quoted: quoted, message: bytes, now: now, sink: &sink)
        case .timeExceeded(let code, let quoted):
            reportError(.timeExceeded(code: code), from: header.source, quoted: quoted, message: bytes, now: now, sink: &sink)
        case .echoReply, .other:
            counters.drops.count(.icmpIgnored)
        }
    }

    /// `message`: the whole ICMP message, whose quote holds the datagram's start.
    func reportError(_ kind: ICMPErrorReport.Kind, from reporter: IPv4Address, quoted: QuotedDatagram,
                     message: UnsafeRawBufferPointer, now: Instant, sink: inout some FrameSink) {
        // Only errors about datagrams we sent concern us (RFC 5927 asks for this check).
        guard quoted.header.source == address, tcp != nil || icmpErrorHandler != nil || datagramErrorHandler != nil else {
            counters.drops.count(.icmpIgnored); return
        }
        let report = ICMPErrorReport(kind: kind, reporter: reporter, quoted: quoted)
        if quoted.header.proto == IPProtocol.tcp { tcp?.icmpError(report, now: now, host: self, sink: &sink) }
        if quoted.header.proto == IPProtocol.udp, let handler = datagramErrorHandler {
            // As Linux's __udp4_lib_err reads them: type, code, errno, and whether hard.
            let (type, code, info): (UInt8, UInt8, UInt32)
            let (errno, hard): (Int32, Bool)
            switch kind {
            case .destinationUnreachable(let c): (type, code, info) = (3, c, 0); (errno, hard) = ICMPErrorReport.errorNumber(unreachableCode: c)
            case .fragmentationNeeded(let mtu): (type, code, info) = (3, 4, UInt32(mtu)); (errno, hard) = (EMSGSIZE, true)
            case .timeExceeded(let c): (type, code, info) = (11, c, 0); (errno, hard) = (EHOSTUNREACH, false)
            }
            let error = DatagramError(errorNumber: errno, hard: hard, origin: DatagramError.originICMP, type: type, code: code,
                                      info: info, offender: IPAddress(reporter),
                                      datagram: FourTuple(local: Endpoint(quoted.header.source, quoted.sourcePort),
                                                          remote: Endpoint(quoted.header.destination, quoted.destinationPort)))
            let start = min(message.count, ICMPv4Message.headerLength + quoted.header.headerLength + UDPHeader.length)
            handler(error, UnsafeRawBufferPointer(rebasing: message[start...]))
        }
        icmpErrorHandler?(report)
    }

    func receiveUDP(_ bytes: UnsafeRawBufferPointer, datagram: UnsafeRawBufferPointer, header: IPv4Header,
                    toUs: Bool, now: Instant, sink: inout some FrameSink) {
        let udp: UDPHeader
        do { udp = try UDPHeader(parsing: bytes, source: header.source, destination: header.destination,
                                 verifyChecksum: !checksumsTrusted) }
        catch { counters.drops.count(error); return }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[UDPHeader.length..<udp.datagramLength])
        let arrival = DatagramArrival(source: Endpoint(header.source, udp.sourcePort),
                                      destination: Endpoint(header.destination, udp.destinationPort),
                                      trafficClass: header.typeOfService, hopLimit: header.timeToLive, at: now)
        switch udpReceiver?(payload, arrival) ?? .noSocket {
        case .delivered: return
        case .queueFull: counters.drops.count(.udpQueueFull); return
        case .noSocket: break
        }
        // Nobody bound the port: answer as RFC 1122 4.1.3.1 says (not for broadcasts).
        counters.drops.count(.udpNoSocket)
        if toUs { sendUnreachable(code: ICMPv4Message.UnreachableCode.port, for: datagram, header: header, now: now, sink: &sink) }
    }

    func receiveTCP(_ bytes: UnsafeRawBufferPointer, header: IPv4Header, toUs: Bool, now: Instant,
                    sink: inout some FrameSink) {
        let segment: TCPSegmentHeader
        do { segment = try TCPSegmentHeader(parsing: bytes, source: header.source, destination: header.destination,
                                            verifyChecksum: !checksumsTrusted) }
        catch { counters.drops.count(error); return }
        guard toUs else { counters.drops.count(.tcpNoSocket); return } // TCP is unicast only
        let payload = UnsafeRawBufferPointer(rebasing: bytes[segment.headerLength...])
        receiveTCP(segment, payload: payload, source: IPAddress(header.source), destination: IPAddress(header.destination),
                   now: now, sink: &sink)
    }

    /// A checked TCP segment to one of our addresses, of either family: to its connection
    /// or listener, else answered as CLOSED does (RFC 9293 3.10.7.1: any segment but a RST
    /// gets a RST).
    func receiveTCP(_ segment: TCPSegmentHeader, payload: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress,
                    now: Instant, sink: inout some FrameSink) {
        if let tcp, tcp.input(segment, payload: payload, source: source, destination: destination,
                              now: now, host: self, sink: &sink) { return }
        counters.drops.count(.tcpNoSocket)
        guard let reply = Connection.resetFor(segment, payloadLength: payload.count) else { return }
        sendBareSegment(reply, from: destination, to: source, now: now, sink: &sink)
    }

    /// Sends a TCP segment that is all header (a RST or an ACK built outside a connection).
    func sendBareSegment(_ header: TCPSegmentHeader, from local: IPAddress, to peer: IPAddress, now: Instant,
                         sink: inout some FrameSink) {
        sendTCP(from: local, to: peer, length: header.headerLength, now: now, sink: &sink) { out, addresses in
            header.emit(into: out, segmentLength: header.headerLength, addresses: addresses)
        }
    }

    /// Sends a TCP segment of `length` bytes that `fill` writes (given the pseudo-header's
    /// addresses), over the family of its addresses.
    @discardableResult
    func sendTCP(from local: IPAddress, to peer: IPAddress, length: Int, now: Instant, sink: inout some FrameSink,
                 offload: FrameOffload = .none, marking: IPMarking = .none, payload: PayloadSpans = .none,
                 fill: (UnsafeMutableRawBufferPointer, IPAddressPair) -> Void) -> Result<Void, SendError> {
        if let v4 = peer.v4 {
            let addresses = IPAddressPair.v4(source: address, destination: v4)
            return sendIPv4(to: v4, proto: IPProtocol.tcp, payloadLength: length, now: now, sink: &sink, offload: offload,
                            marking: marking, payload: payload) {
                fill($0, addresses)
            }
        }
        let addresses = IPAddressPair.v6(source: local.bits, destination: peer.bits)
        return sendIPv6(to: peer.bits, from: local.bits, nextHeader: IPProtocol.tcp, payloadLength: length, now: now,
                        sink: &sink, offload: offload, marking: marking, payload: payload) { fill($0, addresses) }
    }

    /// Counts a frame the link could not hand over whole (a bad virtio-net header).
    public func countMalformed(_ error: WireError) {
        counters.framesIn &+= 1
        counters.drops.count(error)
    }

    /// Counts a drop TCP decided on (the table has no counters of its own).
    func countTCPDrop(_ reason: PolicyDrop) { counters.drops.count(reason) }
    func countTCPDrop(_ reason: TCPDrop) { counters.drops.count(reason) }

    func sendUnreachable(code: UInt8, for datagram: UnsafeRawBufferPointer, header: IPv4Header, now: Instant,
                         sink: inout some FrameSink) {
        sendICMPError(type: ICMPv4Message.Kind.destinationUnreachable, code: code, for: datagram, header: header, now: now, sink: &sink)
    }

    /// An ICMP error quoting `datagram` (its header and the start of its data) to its source.
    func sendICMPError(type: UInt8, code: UInt8, for datagram: UnsafeRawBufferPointer, header: IPv4Header, now: Instant,
                       sink: inout some FrameSink) {
        guard icmpErrors.allow(now: now) else { counters.drops.count(.icmpRateLimited); return }
        let quoted = min(datagram.count, ICMPv4Message.maximumQuote)
        let original = UnsafeRawBufferPointer(rebasing: datagram[0..<quoted])
        _ = sendIPv4(to: header.source, proto: IPProtocol.icmp, payloadLength: ICMPv4Message.headerLength + quoted,
                     now: now, sink: &sink) { out in
            _ = ICMPv4Message.emitError(type: type, code: code, original: original, into: out)
        }
    }

    // MARK: Output

    /// Sends one IPv4 datagram of `payloadLength` bytes that `fill` writes, routing it and
    /// resolving the next hop. While the next hop resolves, the frame waits in the ARP queue.
    /// `offload` asks the link to finish the transport checksum or cut a TCP super-segment
    /// (its offsets count from the transport header; only what `offloads` allow): a
    /// super-segment may exceed the MTU up to IPv4's 64 KiB. A datagram to a group leaves
    /// as `multicast` says, to the group's Ethernet address, with no route needed (the
    /// socket layer decided it may go). With a `payload` left in place (only with a checksum
    /// request: no sum runs over it here), `fill` writes the headers in front of it.
    public func sendIPv4(to destination: IPv4Address, proto: UInt8, payloadLength: Int, now: Instant,
                         sink: inout some FrameSink, offload: FrameOffload = .none, marking: IPMarking = .none,
                         multicast: MulticastSending = .standard, payload: PayloadSpans = .none,
                         fill: (UnsafeMutableRawBufferPointer) -> Void) -> Result<Void, SendError> {
        precondition(payload.isEmpty || offload.needsChecksum, "a payload left in place needs the link to sum it")
        let ipOffset = EthernetFrameView.headerLength
        let transportOffset = ipOffset + IPv4Header.minimumLength
        let totalLength = IPv4Header.minimumLength + payloadLength
        var frameOffload = offload.placed(at: transportOffset, ipv6: false)
        let isBroadcast = destination.isLimitedBroadcast || destination == subnetBroadcast
        let toUs = destination == address
        guard let nextHop = isBroadcast || toUs || destination.isMulticast ? destination : routes.nextHop(for: destination) else {
            counters.drops.count(.noRoute); return .failure(.noRoute)
        }
        let timeToLive = destination.isMulticast ? multicast.timeToLive : marking.timeToLive == 0 ? 64 : marking.timeToLive
        let loop = destination.isMulticast && multicast.loop
        // A run of datagrams is always cut (each is its own datagram, however short the run);
        // a TCP super-segment only when it exceeds the MTU; anything else larger than the
        // MTU leaves in fragments (not to our own address: looped frames know no MTU).
        if (totalLength > configuration.mtu && (!toUs || offload.segments)) || (offload.datagrams && offload.segments) {
            if !offload.segments && proto != IPProtocol.tcp && offload == .none {
                return sendFragmentsIPv4(to: destination, nextHop: nextHop, broadcast: isBroadcast, proto: proto,
                                         payloadLength: payloadLength, typeOfService: marking.typeOfService,
                                         timeToLive: timeToLive, loop: loop, now: now, sink: &sink, fill: fill)
            }
            let segmenting = offload.datagrams ? offloads.udpSegmentation : offloads.tcpSegmentation
            guard offload.segments, segmenting, totalLength <= Int(UInt16.max) else {
                counters.drops.count(.frameTooLarge); return .failure(.tooLarge)
            }
            frameOffload.segmentSize = offload.segmentSize
            frameOffload.datagrams = offload.datagrams
        }
        guard totalLength <= Int(UInt16.max) else { counters.drops.count(.frameTooLarge); return .failure(.tooLarge) }
        var ip = IPv4Header(totalLength: totalLength, proto: proto, source: address, destination: destination,
                            timeToLive: timeToLive, identification: nextIdentification)
        ip.typeOfService = marking.typeOfService
        // A super-segment's wire segments take consecutive identifications (the kernel's
        // segmentation counts them up from this one).
        nextIdentification &+= UInt16(truncatingIfNeeded: frameOffload.wireSegments(frameLength: ipOffset + totalLength))
        ip.dontFragment = !isBroadcast
        let frameLength = ipOffset + totalLength
        let frame = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<frameLength])
        ip.emit(into: UnsafeMutableRawBufferPointer(rebasing: frame[ipOffset...]))
        fill(UnsafeMutableRawBufferPointer(rebasing: frame[transportOffset...]))
        if toUs {
            payload.place(atEndOf: frame)
            EthernetHeader(destination: mac, source: mac, etherType: EtherType.ipv4).emit(into: frame)
            loopBack(frame, offload: frameOffload)
            return .success(())
        }
        return deliverIPv4(frame, nextHop: nextHop, broadcast: isBroadcast, offload: frameOffload, loop: loop, now: now,
                           sink: &sink, payload: payload)
    }

    /// Sends a finished IPv4 frame to `nextHop` (broadcast: to every host), or holds it in
    /// the ARP queue while the next hop resolves. A group's frame needs no resolution; with
    /// `loop` this host's own members receive it too (Linux's ip_mc_output), and with a
    /// time to live of 0 only they do. A `payload` left in place goes with the frame to the
    /// link, or into the frame where the frame must be whole.
    func deliverIPv4(_ frame: UnsafeMutableRawBufferPointer, nextHop: IPv4Address, broadcast isBroadcast: Bool,
                     offload frameOffload: FrameOffload, loop: Bool = false, now: Instant,
                     sink: inout some FrameSink, payload: PayloadSpans = .none) -> Result<Void, SendError> {
        if nextHop.isMulticast {
            payload.place(atEndOf: frame)
            EthernetHeader(destination: MACAddress(ipv4Group: nextHop), source: mac, etherType: EtherType.ipv4).emit(into: frame)
            if loop && groups.contains(nextHop) { loopBack(frame, offload: frameOffload) }
            let timeToLive = frame[EthernetFrameView.headerLength + 8]
            if timeToLive > 0 { transmit(frame, offload: frameOffload, sink: &sink) }
            return .success(())
        }
        let known = isBroadcast ? MACAddress.broadcast : arp.lookup(nextHop, now: now)
        if let neighbour = known {
            EthernetHeader(destination: neighbour, source: mac, etherType: EtherType.ipv4).emit(into: frame)
            transmit(frame, offload: frameOffload, payload: payload, sink: &sink)
            return .success(())
        }
        payload.place(atEndOf: frame)
        EthernetHeader(destination: .zero, source: mac, etherType: EtherType.ipv4).emit(into: frame)
        switch arp.enqueue(PendingFrame(Array(UnsafeRawBufferPointer(frame)), offload: frameOffload), for: nextHop, now: now) {
        case .sendRequest: sendARPRequest(for: nextHop, sink: &sink)
        case .queued: break
        case .queuedDroppingOldest: counters.drops.count(.arpQueueOverflow)
        case .cacheFull: counters.drops.count(.arpQueueOverflow); return .failure(.neighbourCacheFull)
        }
        return .success(())
    }

    /// Queues a frame for this host's own address. It never leaves: its checksums are
    /// trusted as the kernel trusts its loopback's (a partial one stays partial), and a TCP
    /// super-segment arrives whole, as the wire segments it stands for. A run of datagrams
    /// is cut here, since each must arrive as its own (the sender avoids making one).
    func loopBack(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload) {
        counters.framesLooped &+= 1
        if offload.datagrams {
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: offload.headerLength + offload.segmentSize,
                                                                 alignment: 16)
            defer { scratch.deallocate() }
            offload.complete(frame, scratch: scratch) { datagram in
                if !loopback.put(datagram, wireSegments: 1) { counters.drops.count(.loopbackQueueFull) }
            }
            return
        }
        if !loopback.put(UnsafeRawBufferPointer(frame), wireSegments: offload.wireSegments(frameLength: frame.count)) {
            counters.drops.count(.loopbackQueueFull)
        }
    }

    /// Frames sent to this host's own address are waiting.
    public var hasLoopedFrames: Bool { !loopback.isEmpty }

    /// Hands each frame that was waiting for this host's own address to `receive`, with
    /// what a loopback vouches for, oldest first; frames sent while they are received wait
    /// for the next call. The runtime steers them as arriving frames (`ProtocolLoop`).
    public func takeLoopedFrames(_ receive: (UnsafeRawBufferPointer, ArrivalMarks) -> Void) -> Int {
        loopback.take { frame, segments in receive(frame, ArrivalMarks(checksumsTrusted: true, wireSegments: segments)) }
    }

    /// Receives every frame this host sent to itself, and those their answers send in
    /// turn, up to `rounds` times (a host with no runtime around it: tests).
    @discardableResult
    public func receiveLoopedFrames(now: Instant, sink: inout some FrameSink, rounds: Int = 64) -> Int {
        var taken = 0
        for _ in 0..<rounds where hasLoopedFrames {
            taken += takeLoopedFrames { frame, marks in receive(frame: frame, marks: marks, now: now, sink: &sink) }
        }
        return taken
    }

    /// Sends one UDP datagram of `length` payload bytes that `fill` writes.
    public func sendUDP(from port: UInt16, address: IPAddress? = nil, to destination: Endpoint, length: Int, now: Instant,
                        sink: inout some FrameSink, multicast: MulticastSending = .standard,
                        fill: (UnsafeMutableRawBufferPointer) -> Void) -> Result<Void, SendError> {
        sendUDP(from: port, address: address, to: destination, datagrams: 1, each: length, multicast: multicast, now: now,
                sink: &sink, fill: fill)
    }

    /// The most datagrams one frame carries (the kernel's UDP_MAX_SEGMENTS is 128 on
    /// recent kernels, 64 on the first that took them).
    public static let datagramsPerFrame = 64

    /// Sends `datagrams` UDP datagrams of `each` payload bytes to one destination of either
    /// family, whose payloads `fill` writes one after another. With UDP segmentation
    /// offload they go as one frame the kernel cuts (one write for up to
    /// `datagramsPerFrame`); otherwise the caller sends one at a time. The checksum is the
    /// link's when it takes checksums. `address`: the socket's bound address (nil: ours
    /// that suits the destination; IPv4 has one).
    public func sendUDP(from port: UInt16, address: IPAddress? = nil, to destination: Endpoint, datagrams: Int, each: Int,
                        marking: IPMarking = .none, multicast: MulticastSending = .standard, now: Instant, sink: inout some FrameSink,
                        fill: (UnsafeMutableRawBufferPointer) -> Void) -> Result<Void, SendError> {
        precondition(datagrams == 1 || offloads.udpSegmentation, "a run of datagrams needs UDP segmentation offload")
        let header = UDPHeader(sourcePort: port, destinationPort: destination.port,
                               datagramLength: UDPHeader.length + datagrams * each)
        // A datagram larger than the MTU leaves in fragments, which no link sums: its
        // checksum is whole here.
        let fits = datagrams > 1 || isOurs(destination.address)
            || header.datagramLength <= unfragmentedPayload(ipv6: !destination.address.isIPv4)
        let partial = offloads.checksum && fits
        let offload = partial ? FrameOffload(checksumOffset: 6, segmentSize: datagrams > 1 ? each : 0,
                                             headerLength: UDPHeader.length, datagrams: datagrams > 1) : .none
        let addresses: IPAddressPair
        if let target = destination.address.v4 {
            // A socket bound to a group or a broadcast address sends from ours (Linux's
            // inet_bind leaves such a socket's source to the route).
            let bound = address?.v4.flatMap { $0.isMulticast || $0.isLimitedBroadcast || $0 == subnetBroadcast ? nil : $0 }
            addresses = .v4(source: bound ?? self.address, destination: target)
        } else {
            let target = destination.address.bits
            guard let source = address?.v6 ?? ipv6.source(for: target) else { counters.drops.count(.noRoute); return .failure(.noRoute) }
            addresses = .v6(source: source, destination: target)
        }
        func write(_ out: UnsafeMutableRawBufferPointer) {
            fill(UnsafeMutableRawBufferPointer(rebasing: out[UDPHeader.length..<header.datagramLength]))
            header.emit(into: out, addresses: addresses, partialChecksum: partial)
        }
        switch addresses {
        case .v4(_, let target):
            return sendIPv4(to: target, proto: IPProtocol.udp, payloadLength: header.datagramLength, now: now,
                            sink: &sink, offload: offload, marking: marking, multicast: multicast, fill: write)
        case .v6(let source, let target):
            return sendIPv6(to: target, from: source, nextHeader: IPProtocol.udp, payloadLength: header.datagramLength,
                            now: now, sink: &sink, offload: offload, marking: marking, multicast: multicast, fill: write)
        }
    }

    /// Announces our address with a gratuitous ARP request (RFC 5227 2.3), so peers that
    /// cached an older MAC for it update now rather than after their entry expires.
    public func announce(sink: inout some FrameSink) {
        let packet = ARPPacket(operation: .request, senderMAC: mac, senderIP: address, targetMAC: .zero, targetIP: address)
        transmitARP(packet, to: .broadcast, sink: &sink)
    }

    /// When `tick` next has work (ARP retransmissions and give-ups, TCP timers).
    public var nextDeadline: Instant? {
        Self.earlier(Self.earlier(Self.earlier(Self.earlier(arp.nextDeadline, tcp?.nextDeadline), nextDeadline6),
                                  reassembly.nextDeadline), nextMembershipRepeat)
    }

    static func earlier(_ a: Instant?, _ b: Instant?) -> Instant? {
        switch (a, b) {
        case (let a?, let b?): min(a, b)
        case (let a, let b): a ?? b
        }
    }

    /// Runs the timers due at `now`.
    public func tick(now: Instant, sink: inout some FrameSink) {
        lastNow = now
        tcp?.tick(now: now, host: self, sink: &sink)
        let due = arp.expire(now: now)
        for address in due.retry { sendARPRequest(for: address, sink: &sink) }
        for failure in due.failed { counters.drops.count(.arpUnresolved, UInt64(failure.droppedPackets)) }
        tick6(now: now, sink: &sink)
        expireFragments(now: now, sink: &sink)
        repeatMembershipChanges(now: now, sink: &sink)
    }

    func sendARPRequest(for target: IPv4Address, sink: inout some FrameSink) {
        let packet = ARPPacket(operation: .request, senderMAC: mac, senderIP: address, targetMAC: .zero, targetIP: target)
        transmitARP(packet, to: .broadcast, sink: &sink)
    }

    func transmitARP(_ packet: ARPPacket, to destination: MACAddress, sink: inout some FrameSink) {
        let header = EthernetHeader(destination: destination, source: mac, etherType: EtherType.arp)
        let length = header.emit(into: scratch)
        let total = length + packet.emit(into: UnsafeMutableRawBufferPointer(rebasing: scratch[length...]))
        transmit(UnsafeRawBufferPointer(rebasing: scratch[0..<total]), sink: &sink)
    }

    /// Sends the frames that waited for `neighbour` (ARP's or neighbour discovery's), each
    /// keeping the EtherType it was built with.
    func flush(_ frames: [PendingFrame], to neighbour: MACAddress, sink: inout some FrameSink) {
        for var frame in frames {
            frame.bytes.withUnsafeMutableBytes { bytes in
                let etherType = UInt16(bytes[12]) << 8 | UInt16(bytes[13])
                EthernetHeader(destination: neighbour, source: mac, etherType: etherType).emit(into: bytes)
                transmit(bytes, offload: frame.offload, sink: &sink)
            }
        }
    }

    func transmit(_ frame: UnsafeRawBufferPointer, sink: inout some FrameSink) {
        counters.framesOut &+= 1
        counters.bytesOut &+= UInt64(frame.count)
        sink.transmit(frame)
    }

    /// Counts a super-segment as the wire segments the link makes of it. A `payload` left in
    /// place goes to the sink with the frame.
    func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload, payload: PayloadSpans = .none,
                  sink: inout some FrameSink) {
        guard offload != .none else {
            payload.place(atEndOf: frame)
            transmit(UnsafeRawBufferPointer(frame), sink: &sink)
            return
        }
        counters.framesOut &+= UInt64(offload.wireSegments(frameLength: frame.count))
        counters.bytesOut &+= UInt64(frame.count)
        if offload.segments { counters.superFramesOut &+= 1 }
        if payload.isEmpty { sink.transmit(frame, offload: offload) } else { sink.transmit(frame, offload: offload, payload: payload) }
    }
}
