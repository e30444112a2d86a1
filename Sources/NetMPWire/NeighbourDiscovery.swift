/// A neighbour advertisement (RFC 4861 4.4).
public struct NeighbourAdvertisement: Equatable, Sendable {
    public var target: IPv6Address
    public var router: Bool
    /// Sent in answer to a solicitation: the sender is reachable both ways.
    public var solicited: Bool
    /// The advertised link-layer address replaces a cached one.
    public var override: Bool
    public var targetLinkLayer: MACAddress?
    public init(target: IPv6Address, router: Bool = false, solicited: Bool, override: Bool, targetLinkLayer: MACAddress?) {
        self.target = target; self.router = router; self.solicited = solicited; self.override = override
        self.targetLinkLayer = targetLinkLayer
    }
}

/// A router advertisement (RFC 4861 4.2) with the options a host uses.
public struct RouterAdvertisement: Equatable, Sendable {
    public struct Prefix: Equatable, Sendable {
        public var prefix: IPv6Address
        public var length: Int
        public var onLink: Bool
        public var autonomous: Bool
        public var validLifetime: UInt32
        public var preferredLifetime: UInt32
    }
    public var currentHopLimit: UInt8
    public var managed: Bool
    public var otherConfiguration: Bool
    /// Seconds this router stays a default router; 0: it is not one.
    public var routerLifetime: UInt16
    /// Milliseconds; 0 leaves the host's value alone.
    public var reachableTime: UInt32
    public var retransmitTimer: UInt32
    public var sourceLinkLayer: MACAddress?
    public var mtu: UInt32?
    public var prefixes: [Prefix]
}

extension ICMPv6Message {
    /// Neighbour discovery option types (RFC 4861 4.6).
    enum OptionType {
        static let sourceLinkLayer: UInt8 = 1, targetLinkLayer: UInt8 = 2, prefixInformation: UInt8 = 3, mtu: UInt8 = 5
    }

    /// The least each message holds before its options.
    static func minimumLength(_ type: UInt8) -> Int {
        switch type {
        case Kind.routerSolicitation: 8
        case Kind.routerAdvertisement: 16
        default: 24
        }
    }

    /// Parses and validates a router or neighbour message (RFC 4861 6.1.1, 6.1.2, 7.1.1,
    /// 7.1.2): hop limit 255 (it was not forwarded), code 0, options of non-zero length, no
    /// multicast target, and the rules for an unspecified source.
    static func neighbourDiscovery(_ bytes: UnsafeRawBufferPointer, source: IPv6Address, destination: IPv6Address,
                                   hopLimit: UInt8) throws(WireError) -> ICMPv6Message {
        let type = bytes[0]
        guard hopLimit == 255 else { throw .ndpBadHopLimit }
        guard bytes[1] == 0 else { throw .ndpBadCode }
        let start = minimumLength(type)
        guard bytes.count >= start else { throw .ndpTruncated }
        var sourceLinkLayer: MACAddress?
        var targetLinkLayer: MACAddress?
        var mtu: UInt32?
        var prefixes: [RouterAdvertisement.Prefix] = []
        var at = start
        while at < bytes.count {
            guard at + 2 <= bytes.count else { throw .ndpBadOption }
            let length = Int(bytes[at + 1]) * 8
            guard length > 0, at + length <= bytes.count else { throw .ndpBadOption }
            switch bytes[at] {
            // Ethernet addresses take one 8-byte unit; a longer option is for another link.
            case OptionType.sourceLinkLayer where length == 8: sourceLinkLayer = MACAddress.read(from: bytes, at: at + 2)
            case OptionType.targetLinkLayer where length == 8: targetLinkLayer = MACAddress.read(from: bytes, at: at + 2)
            case OptionType.mtu where length == 8: mtu = bytes.be32(at + 4)
            case OptionType.prefixInformation where length == 32 && type == Kind.routerAdvertisement:
                prefixes.append(RouterAdvertisement.Prefix(
                    prefix: IPv6Address.read(from: bytes, at: at + 16), length: Int(bytes[at + 2]),
                    onLink: bytes[at + 3] & 0x80 != 0, autonomous: bytes[at + 3] & 0x40 != 0,
                    validLifetime: bytes.be32(at + 4), preferredLifetime: bytes.be32(at + 8)))
            default: break // unknown options are skipped (RFC 4861 4.6)
            }
            at += length
        }
        switch type {
        case Kind.routerSolicitation:
            guard !source.isUnspecified || sourceLinkLayer == nil else { throw .ndpBadSource }
            return .routerSolicitation(sourceLinkLayer: sourceLinkLayer)
        case Kind.routerAdvertisement:
            guard source.isLinkLocal else { throw .ndpBadSource }
            let flags = bytes[5]
            return .routerAdvertisement(RouterAdvertisement(
                currentHopLimit: bytes[4], managed: flags & 0x80 != 0, otherConfiguration: flags & 0x40 != 0,
                routerLifetime: bytes.be16(6), reachableTime: bytes.be32(8), retransmitTimer: bytes.be32(12),
                sourceLinkLayer: sourceLinkLayer, mtu: mtu, prefixes: prefixes))
        case Kind.neighbourSolicitation:
            let target = IPv6Address.read(from: bytes, at: 8)
            guard !target.isMulticast else { throw .ndpBadTarget }
            // Duplicate address detection asks from ::, only to the target's solicited-node
            // group, and has no address of its own to give.
            if source.isUnspecified {
                guard destination == target.solicitedNodeMulticast, sourceLinkLayer == nil else { throw .ndpBadSource }
            }
            return .neighbourSolicitation(target: target, sourceLinkLayer: sourceLinkLayer)
        default: // neighbour advertisement
            let target = IPv6Address.read(from: bytes, at: 8)
            guard !target.isMulticast else { throw .ndpBadTarget }
            let flags = bytes[4]
            let solicited = flags & 0x40 != 0
            guard !(solicited && destination.isMulticast) else { throw .ndpBadFlags }
            return .neighbourAdvertisement(NeighbourAdvertisement(
                target: target, router: flags & 0x80 != 0, solicited: solicited, override: flags & 0x20 != 0,
                targetLinkLayer: targetLinkLayer))
        }
    }

    /// Writes a neighbour solicitation for `target`, with our link-layer address unless it
    /// is a duplicate address probe (sent from ::). Returns the message length (24 or 32).
    public static func emitNeighbourSolicitation(target: IPv6Address, sourceLinkLayer: MACAddress?,
                                                 source: IPv6Address, destination: IPv6Address,
                                                 into buffer: UnsafeMutableRawBufferPointer) -> Int {
        buffer.put8(Kind.neighbourSolicitation, at: 0)
        buffer.put8(0, at: 1)
        buffer.put32(0, at: 4)
        target.write(to: buffer, at: 8)
        var length = 24
        if let sourceLinkLayer { length += emitLinkLayerOption(OptionType.sourceLinkLayer, sourceLinkLayer, into: buffer, at: 24) }
        return finish(buffer, length: length, source: source, destination: destination)
    }

    /// Writes a neighbour advertisement; returns its length (24 or 32).
    public static func emitNeighbourAdvertisement(_ advertisement: NeighbourAdvertisement, source: IPv6Address,
                                                  destination: IPv6Address,
                                                  into buffer: UnsafeMutableRawBufferPointer) -> Int {
        buffer.put8(Kind.neighbourAdvertisement, at: 0)
        buffer.put8(0, at: 1)
        var flags: UInt32 = 0
        if advertisement.router { flags |= 0x8000_0000 }
        if advertisement.solicited { flags |= 0x4000_0000 }
        if advertisement.override { flags |= 0x2000_0000 }
        buffer.put32(flags, at: 4)
        advertisement.target.write(to: buffer, at: 8)
        var length = 24
        if let mac = advertisement.targetLinkLayer {
            length += emitLinkLayerOption(OptionType.targetLinkLayer, mac, into: buffer, at: 24)
        }
        return finish(buffer, length: length, source: source, destination: destination)
    }

    /// Writes a router solicitation, with our link-layer address unless sent from ::.
    /// Returns its length (8 or 16).
    public static func emitRouterSolicitation(sourceLinkLayer: MACAddress?, source: IPv6Address, destination: IPv6Address,
                                              into buffer: UnsafeMutableRawBufferPointer) -> Int {
        buffer.put8(Kind.routerSolicitation, at: 0)
        buffer.put8(0, at: 1)
        buffer.put32(0, at: 4)
        var length = 8
        if let sourceLinkLayer { length += emitLinkLayerOption(OptionType.sourceLinkLayer, sourceLinkLayer, into: buffer, at: 8) }
        return finish(buffer, length: length, source: source, destination: destination)
    }

    static func emitLinkLayerOption(_ type: UInt8, _ mac: MACAddress, into buffer: UnsafeMutableRawBufferPointer,
                                    at offset: Int) -> Int {
        buffer.put8(type, at: offset)
        buffer.put8(1, at: offset + 1)
        mac.write(to: buffer, at: offset + 2)
        return 8
    }
}
