import NetMPTestSupport
import NetMPWire
import Testing

@Suite struct IPv6AddressTests {
    /// RFC 4291 2.2's text forms in, RFC 5952's canonical form out.
    @Test func text_parsesEveryFormAndPrintsCanonically() throws {
        let cases: [(String, String)] = [
            ("::", "::"), ("::1", "::1"), ("fe80::1", "fe80::1"),
            ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            // The longest zero run is compressed, the first of two equal ones (5952 4.2.3).
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            // A single zero group is not compressed (4.2.2).
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"), ("::ffff:10.1.2.3", "::ffff:10.1.2.3"),
            ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"), ("fd77::2", "fd77::2"),
        ]
        for (text, canonical) in cases {
            let address = try #require(IPv6Address(text), "\(text)")
            #expect(address.description == canonical, "\(text)")
            #expect(IPv6Address(address.description) == address)
        }
        for bad in ["", ":", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "g::", "1.2.3.4", ":1:2:3:4:5:6:7",
                    "1:2:3:4:5:6:7:", "1:2:3:4:5:6:7:8::", "::1.2.3", "::1.2.3.4:5", "fe80::1%eth0"] {
            #expect(IPv6Address(bad) == nil, "\(bad)")
        }
    }

    @Test func derivedAddresses_matchLinux() throws {
        let mac = try #require(MACAddress("02:00:0a:4d:00:02"))
        // What the kernel formed for this MAC in the lab: the U/L bit flipped, ff:fe inserted.
        #expect(IPv6Address.linkLocal(for: mac) == IPv6Address("fe80::aff:fe4d:2"))
        let address = try #require(IPv6Address("fd77::12:3456"))
        #expect(address.solicitedNodeMulticast == IPv6Address("ff02::1:ff12:3456"))
        #expect(address.solicitedNodeMulticast.multicastMAC == MACAddress("33:33:ff:12:34:56"))
        #expect(IPv6Address.allNodes.multicastMAC == MACAddress("33:33:00:00:00:01"))
        #expect(IPv6Address("fe80::1")!.isLinkLocal && !IPv6Address("fec0::1")!.isLinkLocal)
        #expect(IPv6Address("ff02::1")!.isLinkScoped && !IPv6Address("ff05::1")!.isLinkScoped)
        #expect(IPv6Address("::ffff:10.0.0.1")!.ipv4Mapped == IPv4Address(10, 0, 0, 1))
        #expect(address.hasPrefix(IPv6Address("fd77::")!, length: 64))
        #expect(!address.hasPrefix(IPv6Address("fd78::")!, length: 16))
        #expect(address.hasPrefix(IPv6Address("fd77::12:0")!, length: 112))
        #expect(!address.hasPrefix(IPv6Address("fd77::12:0")!, length: 128))
    }
}

@Suite struct IPv6HeaderTests {
    @Test func header_roundTrips() throws {
        var header = IPv6Header(payloadLength: 0, nextHeader: IPv6NextHeader.noNextHeader,
                                source: IPv6Address("fd77::1")!, destination: IPv6Address("ff02::1")!, hopLimit: 255)
        header.trafficClass = 0xB8
        header.flowLabel = 0xABCDE
        var bytes = [UInt8](repeating: 0, count: 40)
        bytes.withUnsafeMutableBytes { _ = header.emit(into: $0) }
        #expect(bytes[0] == 0x6B && bytes[1] == 0x8A)
        #expect(try bytes.withUnsafeBytes { try IPv6Header(parsing: $0) } == header)
    }

    @Test func malformed_rejectedByReason() {
        func check(_ error: WireError, _ bytes: [UInt8]) {
            #expect(throws: error) { try bytes.withUnsafeBytes { _ = try IPv6Header(parsing: $0) } }
        }
        let good = ipv6Packet(payload: [1, 2, 3, 4])
        check(.ipv6Truncated, Array(good[0..<39]))
        var v4 = good; v4[0] = 0x45
        check(.ipv6BadVersion, v4)
        check(.ipv6BadPayloadLength, Array(good[0..<43]))
    }

    func walk(_ packet: [UInt8]) throws -> IPv6ExtensionHeaders {
        try packet.withUnsafeBytes { try IPv6ExtensionHeaders(walking: $0) }
    }

    @Test func chain_walksToTheUpperLayer() throws {
        let packet = ipv6Packet([(IPv6NextHeader.hopByHop, optionsHeader([5, 2, 0, 0])),
                                 (IPv6NextHeader.routing, [0, 0, 4, 0, 0, 0, 0, 0]),  // no segments left
                                 (IPv6NextHeader.fragment, [0, 0, 0, 0, 0, 0, 0, 9]),  // atomic (RFC 6946)
                                 (IPv6NextHeader.destinationOptions, optionsHeader([0x1E, 1, 0]))],  // type 00: skipped
                                upper: IPv6NextHeader.icmpv6, payload: [128, 0, 0, 0])
        let chain = try walk(packet)
        #expect(chain.upperLayer == IPv6NextHeader.icmpv6)
        #expect(chain.upperLayerOffset == 40 + 8 + 8 + 8 + 8)
        #expect(chain.nextHeaderFieldOffset == 40 + 24)
        #expect(chain.fragment == nil && chain.problem == nil)
        let bare = try walk(ipv6Packet(upper: IPProtocol.udp, payload: [0, 0, 0, 0, 0, 0, 0, 0]))
        #expect(bare.upperLayer == IPProtocol.udp && bare.upperLayerOffset == 40 && bare.nextHeaderFieldOffset == 6)
    }

    @Test func fragments_areRecognised() throws {
        let first = try walk(ipv6Packet([(IPv6NextHeader.fragment, [0, 0, 0, 1, 0, 0, 0, 7])], upper: IPProtocol.udp,
                                        payload: [1, 2, 3, 4, 5, 6, 7, 8]))
        #expect(first.fragment == .init(offset: 0, moreFragments: true, identification: 7, headerOffset: 40, namingField: 6,
                                        nextHeader: IPProtocol.udp))
        #expect(first.upperLayer == IPProtocol.udp)
        let later = try walk(ipv6Packet([(IPv6NextHeader.fragment, [0, 0, 0x05, 0x28, 0, 0, 0, 7])], upper: IPProtocol.udp,
                                        payload: [1, 2, 3, 4]))
        #expect(later.fragment == .init(offset: 0x528 & ~7, moreFragments: false, identification: 7, headerOffset: 40,
                                        namingField: 6, nextHeader: IPProtocol.udp))
        #expect(later.fragment?.dataOffset == 48)
    }

    @Test func problems_pointAtTheOffendingByte() throws {
        // Segments left on a routing header: a host is no hop (RFC 8200 4.4).
        let routed = try walk(ipv6Packet([(IPv6NextHeader.routing, [0, 0, 4, 1, 0, 0, 0, 0])], upper: IPProtocol.udp))
        #expect(routed.problem == .init(code: 0, pointer: 42, unlessMulticast: false))
        // Unknown options whose type says report it (10) or report it unless multicast (11).
        let report = try walk(ipv6Packet([(IPv6NextHeader.destinationOptions, optionsHeader([0x9E, 1, 0]))]))
        #expect(report.problem == .init(code: 2, pointer: 42, unlessMulticast: false))
        let unlessMulticast = try walk(ipv6Packet([(IPv6NextHeader.hopByHop, optionsHeader([1, 0, 0xDE, 0]))]))
        #expect(unlessMulticast.problem == .init(code: 2, pointer: 44, unlessMulticast: true))
    }

    @Test func malformedChains_rejectedByReason() {
        func check(_ error: WireError, _ packet: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(throws: error, sourceLocation: sourceLocation) { _ = try walk(packet) }
        }
        let dest = (type: IPv6NextHeader.destinationOptions, bytes: optionsHeader([]))
        check(.ipv6HopByHopNotFirst, ipv6Packet([dest, (IPv6NextHeader.hopByHop, optionsHeader([]))]))
        check(.ipv6ExtensionChainTooLong, ipv6Packet(Array(repeating: dest, count: 9)))
        #expect(throws: Never.self) { _ = try walk(ipv6Packet(Array(repeating: dest, count: 8))) }
        var truncated = ipv6Packet([dest]); truncated[41] = 1  // claims 16 bytes, holds 8
        check(.ipv6ExtensionTruncated, truncated)
        check(.ipv6ExtensionTruncated, Array(ipv6Packet([dest])[0..<44]).withPayloadLength(4))
        check(.ipv6BadOption, ipv6Packet([(IPv6NextHeader.destinationOptions, [0, 0, 0x1E, 9, 0, 0, 0, 0])]))
        check(.ipv6BadPadding, ipv6Packet([(IPv6NextHeader.destinationOptions, [0, 0, 1, 4, 0, 0, 1, 0])]))
        check(.ipv6BadPadding, ipv6Packet([(IPv6NextHeader.destinationOptions, [0, 1, 1, 12] + [UInt8](repeating: 0, count: 12))]))
        check(.ipv6TooManyOptions, ipv6Packet([(IPv6NextHeader.hopByHop,
                                                optionsHeader(Array([[UInt8]](repeating: [0x1E, 0], count: 9).joined())))]))
        check(.ipv6UnrecognizedOption, ipv6Packet([(IPv6NextHeader.destinationOptions, optionsHeader([0x5E, 1, 0]))]))
    }
}

extension Array where Element == UInt8 {
    /// The packet with its IPv6 payload length set to `length`.
    func withPayloadLength(_ length: Int) -> [UInt8] {
        var copy = self
        copy[4] = UInt8(length >> 8); copy[5] = UInt8(length & 0xFF)
        return copy
    }
}

@Suite struct ICMPv6Tests {
    static let peer = IPv6Address("fd77::1")!
    static let us = IPv6Address("fd77::2")!
    static let peerMAC = MACAddress("52:22:31:2c:14:1b")!

    func parse(_ message: [UInt8], source: IPv6Address = peer, destination: IPv6Address = us,
               hopLimit: UInt8 = 255) throws -> ICMPv6Message {
        try message.withUnsafeBytes {
            try ICMPv6Message(parsing: $0, source: source, destination: destination, hopLimit: hopLimit)
        }
    }

    func build(_ length: Int, _ emit: (UnsafeMutableRawBufferPointer) -> Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        let used = bytes.withUnsafeMutableBytes(emit)
        return Array(bytes[0..<used])
    }

    @Test func echo_roundTripsWithThePseudoHeaderChecksum() throws {
        let data: [UInt8] = Array(0..<56)
        let message = build(64) { out in
            data.withUnsafeBytes { ICMPv6Message.emitEcho(reply: false, identifier: 7, sequence: 9, data: $0,
                                                          source: Self.peer, destination: Self.us, into: out) }
        }
        #expect(try parse(message, hopLimit: 64) == .echoRequest(identifier: 7, sequence: 9))
        // The pseudo-header is covered: the same bytes from another source fail.
        #expect(throws: WireError.icmpv6BadChecksum) { _ = try parse(message, source: IPv6Address("fd77::3")!) }
        #expect(throws: WireError.icmpv6Truncated) { _ = try parse(Array(message[0..<7])) }
    }

    @Test func neighbourMessages_roundTrip() throws {
        let solicitation = build(32) { out in
            ICMPv6Message.emitNeighbourSolicitation(target: Self.us, sourceLinkLayer: Self.peerMAC, source: Self.peer,
                                                    destination: Self.us.solicitedNodeMulticast, into: out)
        }
        #expect(try parse(solicitation, destination: Self.us.solicitedNodeMulticast)
                == .neighbourSolicitation(target: Self.us, sourceLinkLayer: Self.peerMAC))
        let advertisement = NeighbourAdvertisement(target: Self.peer, router: true, solicited: true, override: false,
                                                   targetLinkLayer: Self.peerMAC)
        let na = build(32) { out in
            ICMPv6Message.emitNeighbourAdvertisement(advertisement, source: Self.peer, destination: Self.us, into: out)
        }
        #expect(na[4] == 0xC0)
        #expect(try parse(na) == .neighbourAdvertisement(advertisement))
    }

    /// RFC 4861 7.1's validity rules, each its own reason.
    @Test func invalidNeighbourMessages_rejectedByReason() throws {
        func ns(source: IPv6Address = ICMPv6Tests.peer, target: IPv6Address = ICMPv6Tests.us,
                mac: MACAddress? = ICMPv6Tests.peerMAC) -> [UInt8] {
            build(32) { out in
                ICMPv6Message.emitNeighbourSolicitation(target: target, sourceLinkLayer: mac, source: source,
                                                        destination: target.solicitedNodeMulticast, into: out)
            }
        }
        let group = Self.us.solicitedNodeMulticast
        #expect(throws: WireError.ndpBadHopLimit) { _ = try parse(ns(), destination: group, hopLimit: 254) }
        #expect(throws: WireError.ndpBadSource) { _ = try parse(ns(source: .any), source: .any, destination: group) }
        // A probe from :: without the option, but to the address itself rather than its group.
        let probe = ns(source: .any, mac: nil)
        #expect(try parse(probe, source: .any, destination: group) == .neighbourSolicitation(target: Self.us, sourceLinkLayer: nil))
        let misdirected = build(24) { out in
            ICMPv6Message.emitNeighbourSolicitation(target: Self.us, sourceLinkLayer: nil, source: .any,
                                                    destination: Self.us, into: out)
        }
        #expect(throws: WireError.ndpBadSource) { _ = try parse(misdirected, source: .any, destination: Self.us) }
        let multicastTarget = ns(target: .allNodes)
        #expect(throws: WireError.ndpBadTarget) { _ = try parse(multicastTarget, destination: IPv6Address.allNodes.solicitedNodeMulticast) }
        let solicitedToGroup = build(32) { out in
            ICMPv6Message.emitNeighbourAdvertisement(.init(target: Self.peer, solicited: true, override: true,
                                                           targetLinkLayer: Self.peerMAC),
                                                     source: Self.peer, destination: .allNodes, into: out)
        }
        #expect(throws: WireError.ndpBadFlags) { _ = try parse(solicitedToGroup, destination: .allNodes) }
        // An option of length zero would make a receiver loop (RFC 4861 4.6).
        var zeroOption = ns()
        zeroOption[25] = 0
        zeroOption.fixICMPv6Checksum(source: Self.peer, destination: group)
        #expect(throws: WireError.ndpBadOption) { _ = try parse(zeroOption, destination: group) }
        var badCode = ns()
        badCode[1] = 1
        badCode.fixICMPv6Checksum(source: Self.peer, destination: group)
        #expect(throws: WireError.ndpBadCode) { _ = try parse(badCode, destination: group) }
        #expect(throws: WireError.ndpTruncated) {
            var short = Array(ns()[0..<20]); short.fixICMPv6Checksum(source: Self.peer, destination: group)
            _ = try parse(short, destination: group)
        }
    }

    @Test func errors_quoteThePacketAndItsPorts() throws {
        let udp: [UInt8] = [0x9C, 0x40, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]
        let original = ipv6Packet([(IPv6NextHeader.destinationOptions, optionsHeader([]))], upper: IPProtocol.udp,
                                  payload: udp, source: Self.us, destination: Self.peer)
        let message = build(8 + original.count) { out in
            original.withUnsafeBytes { ICMPv6Message.emitError(type: ICMPv6Message.Kind.destinationUnreachable,
                                                               code: ICMPv6Message.UnreachableCode.port, original: $0,
                                                               source: Self.peer, destination: Self.us, into: out) }
        }
        guard case .destinationUnreachable(let code, let quoted) = try parse(message, hopLimit: 64) else {
            Issue.record("not an unreachable"); return
        }
        #expect(code == 4 && quoted.upperLayer == IPProtocol.udp)
        #expect(quoted.ports?.source == 40000 && quoted.ports?.destination == 53)
        #expect(quoted.header.source == Self.us)
        // A quote that is no IPv6 packet is refused.
        var bad = message; bad[8] = 0x45; bad.fixICMPv6Checksum(source: Self.peer, destination: Self.us)
        #expect(throws: WireError.icmpv6BadQuotedPacket) { _ = try parse(bad, hopLimit: 64) }
    }
}

extension Array where Element == UInt8 {
    /// Recomputes the checksum of the ICMPv6 message these bytes hold.
    mutating func fixICMPv6Checksum(source: IPv6Address, destination: IPv6Address) {
        self[2] = 0; self[3] = 0
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: source, destination: destination, nextHeader: IPv6NextHeader.icmpv6, length: count)
        withUnsafeBytes { sum.add(bytes: $0) }
        let value = sum.value
        self[2] = UInt8(value >> 8); self[3] = UInt8(value & 0xFF)
    }
}
