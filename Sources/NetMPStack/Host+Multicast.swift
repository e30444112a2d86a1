import NetMPWire

/// How a datagram to an IPv4 group leaves (IP_MULTICAST_TTL and IP_MULTICAST_LOOP): its
/// time to live (1 by default: the link only; 0 keeps it on this host), and whether this
/// host's own members hear it too.
public struct MulticastSending: Equatable, Sendable {
    public var timeToLive: UInt8
    public var loop: Bool
    public init(timeToLive: UInt8 = 1, loop: Bool = true) { self.timeToLive = timeToLive; self.loop = loop }
    public static let standard = MulticastSending()
}

extension MulticastOptions {
    /// How a datagram to an IPv4 group leaves, and to an IPv6 one.
    public var sendingIPv4: MulticastSending { MulticastSending(timeToLive: timeToLive, loop: loop) }
    public var sendingIPv6: MulticastSending { MulticastSending(timeToLive: hopLimit, loop: loop6) }
}

/// Multicast as a host takes part in it (RFC 1112 level 2 and RFC 3376's IGMP for IPv4,
/// RFC 3810's MLD for IPv6): the groups its sockets joined, the reports that tell the
/// link's routers, and the answers to their queries. Every core keeps the same groups (each hears every join and leave); the
/// core that speaks for the link reports the changes, and a query is answered by the core
/// it arrived on.
extension Host {
    /// A socket joined `group`, of either family: the host is a member from the first join on.
    public func joinGroup(_ group: IPAddress, now: Instant, sink: inout some FrameSink) {
        if let v4 = group.v4 { joinGroup(v4, now: now, sink: &sink) } else { joinGroup6(group.bits, now: now, sink: &sink) }
    }

    /// A socket left `group` (or closed), of either family: the host leaves with the last one.
    public func leaveGroup(_ group: IPAddress, now: Instant, sink: inout some FrameSink) {
        if let v4 = group.v4 { leaveGroup(v4, now: now, sink: &sink) } else { leaveGroup6(group.bits, now: now, sink: &sink) }
    }

    /// A socket joined the IPv4 `group`.
    public func joinGroup(_ group: IPv4Address, now: Instant, sink: inout some FrameSink) {
        if groups.join(group) && speaksForTheLink { reportChange(.changeToExclude, of: group, now: now, sink: &sink) }
    }

    public func leaveGroup(_ group: IPv4Address, now: Instant, sink: inout some FrameSink) {
        if groups.leave(group) && speaksForTheLink { reportChange(.changeToInclude, of: group, now: now, sink: &sink) }
    }

    /// RFC 3376 8.1 and Linux's default robustness (2): a change is reported at once and
    /// once more a little later, so that one lost report does not lose it. A change that
    /// undoes one still to repeat replaces it.
    static let igmpRepeatDelay = Interval.milliseconds(500)

    func reportChange(_ type: MembershipRecord, of group: IPv4Address, now: Instant, sink: inout some FrameSink) {
        sendIGMPReport(type, [group], sink: &sink)
        igmpChangesToRepeat[group] = type
        if nextMembershipRepeat == nil { nextMembershipRepeat = now + Self.igmpRepeatDelay }
    }

    /// Reports each change of either family once more (`igmpRepeatDelay`).
    func repeatMembershipChanges(now: Instant, sink: inout some FrameSink) {
        guard let due = nextMembershipRepeat, due <= now else { return }
        let changes = igmpChangesToRepeat, changes6 = mldChangesToRepeat
        igmpChangesToRepeat = [:]
        mldChangesToRepeat = [:]
        nextMembershipRepeat = nil
        for type in [MembershipRecord.changeToExclude, .changeToInclude] {
            let some = changes.filter { $0.value == type }.keys.sorted()
            if !some.isEmpty { sendIGMPReport(type, some, sink: &sink) }
            let some6 = changes6.filter { $0.value == type }.keys.sorted()
            if !some6.isEmpty { sendMLDReport(type, some6, sink: &sink) }
        }
    }

    // MARK: IPv6 (MLD)

    /// A socket joined the IPv6 `group`.
    public func joinGroup6(_ group: IPv6Address, now: Instant, sink: inout some FrameSink) {
        if groups6.join(group) && speaksForTheLink && Self.isReported(group) {
            reportChange6(.changeToExclude, of: group, now: now, sink: &sink)
        }
    }

    public func leaveGroup6(_ group: IPv6Address, now: Instant, sink: inout some FrameSink) {
        if groups6.leave(group) && speaksForTheLink && Self.isReported(group) {
            reportChange6(.changeToInclude, of: group, now: now, sink: &sink)
        }
    }

    public func isMember(of group: IPv6Address) -> Bool { groups6.contains(group) }

    /// RFC 3810 6: no report for all-nodes nor for a group of interface-local scope.
    static func isReported(_ group: IPv6Address) -> Bool {
        group != .allNodes && (group.multicastScope ?? 0) > 1
    }

    func reportChange6(_ type: MembershipRecord, of group: IPv6Address, now: Instant, sink: inout some FrameSink) {
        sendMLDReport(type, [group], sink: &sink)
        mldChangesToRepeat[group] = type
        if nextMembershipRepeat == nil { nextMembershipRepeat = now + Self.igmpRepeatDelay }
    }

    /// An MLD query (ICMPv6 checked its checksum): answered at once, as IGMP's, from the
    /// arrival core's copy of the groups. RFC 3810 5.1.14: only a link-local querier's with
    /// a hop limit of 1 counts.
    func receiveMLDQuery(_ bytes: UnsafeRawBufferPointer, header: IPv6Header, sink: inout some FrameSink) {
        let query: (group: IPv6Address, version: Int)
        do { query = try MLDMessage.query(parsing: bytes) } catch { counters.drops.count(error); return }
        guard header.hopLimit == 1, header.source.isLinkLocal else { counters.drops.count(.icmpIgnored); return }
        let reported = groups6.reported.filter(Self.isReported)
        let asked = query.group.isUnspecified ? reported : reported.contains(query.group) ? [query.group] : []
        guard !asked.isEmpty else { return }
        if query.version == 2 { sendMLDReport(.modeIsExclude, asked, sink: &sink); return }
        for group in asked {
            let source = mldSource
            let at = writeMLDHeaders(to: group, source: source, length: 24)
            let length = MLDMessage.emitOlderReport(group: group, source: source,
                                                    into: UnsafeMutableRawBufferPointer(rebasing: scratch[at...]))
            counters.igmpReportsOut &+= 1
            transmit(UnsafeRawBufferPointer(rebasing: scratch[0..<(at + length)]), sink: &sink)
        }
    }

    /// A version 2 report to the routers' group, as many as the MTU needs.
    func sendMLDReport(_ type: MembershipRecord, _ groups: [IPv6Address], sink: inout some FrameSink) {
        let perReport = (configuration.mtu - IPv6Header.length - 8 - MLDMessage.reportLength(groups: 0)) / 20
        let source = mldSource
        var start = 0
        while start < groups.count {
            let some = groups[start..<min(groups.count, start + perReport)]
            start += some.count
            let at = writeMLDHeaders(to: MLDMessage.reportDestination, source: source,
                                     length: MLDMessage.reportLength(groups: some.count))
            let length = MLDMessage.emitReport(type, groups: some, source: source,
                                               into: UnsafeMutableRawBufferPointer(rebasing: scratch[at...]))
            counters.igmpReportsOut &+= 1
            transmit(UnsafeRawBufferPointer(rebasing: scratch[0..<(at + length)]), sink: &sink)
        }
    }

    /// RFC 3810 5.2.13: reports leave from the link-local address, or :: while it is not ready.
    var mldSource: IPv6Address {
        guard let source = ipv6.source(for: MLDMessage.reportDestination), source.isLinkLocal else { return .any }
        return source
    }

    /// Writes the Ethernet header, the IPv6 header (hop limit 1) and a hop-by-hop header
    /// with Router Alert (RFC 2711, value 0: MLD) in front of an MLD message of `length`
    /// bytes into the scratch buffer, as Linux's mld_newpack does. Returns where the
    /// message goes.
    func writeMLDHeaders(to destination: IPv6Address, source: IPv6Address, length: Int) -> Int {
        var at = EthernetHeader(destination: destination.multicastMAC, source: mac, etherType: EtherType.ipv6).emit(into: scratch)
        IPv6Header(payloadLength: 8 + length, nextHeader: IPv6NextHeader.hopByHop, source: source, destination: destination,
                   hopLimit: 1).emit(into: UnsafeMutableRawBufferPointer(rebasing: scratch[at...]))
        at += IPv6Header.length
        for (i, byte) in [IPv6NextHeader.icmpv6, 0, 5, 2, 0, 0, 1, 0].enumerated() { scratch[at + i] = byte } // RA, PadN
        return at + 8
    }

    public func isMember(of group: IPv4Address) -> Bool { groups.contains(group) }

    func receiveIGMP(_ bytes: UnsafeRawBufferPointer, sink: inout some FrameSink) {
        let message: IGMPMessage
        do { message = try IGMPMessage(parsing: bytes) } catch { counters.drops.count(error); return }
        guard case .query(let group, _, let version) = message else { counters.drops.count(.icmpIgnored); return }
        // Answered at once rather than after a random part of the response time: a host
        // with few groups adds little to the link, and version 3 has no report
        // suppression for the delay to serve. An older querier gets the reports of its
        // version (RFC 3376 7.2.1), one per group.
        let asked = group.isUnspecified ? groups.reported
            : group != IGMPMessage.allHosts && groups.contains(group) ? [group] : []
        guard !asked.isEmpty else { return }
        if version == 3 { sendIGMPReport(.modeIsExclude, asked, sink: &sink); return }
        for one in asked { sendOlderIGMPReport(version: version, group: one, sink: &sink) }
    }

    /// A version 1 or 2 report of `group`, sent to the group itself (RFC 2236 3).
    func sendOlderIGMPReport(version: Int, group: IPv4Address, sink: inout some FrameSink) {
        var at = writeIGMPHeaders(to: group, length: 8)
        at += IGMPMessage.emitOlderReport(version: version, group: group, into: UnsafeMutableRawBufferPointer(rebasing: scratch[at...]))
        counters.igmpReportsOut &+= 1
        transmit(UnsafeRawBufferPointer(rebasing: scratch[0..<at]), sink: &sink)
    }

    /// Writes the Ethernet and IPv4 headers of an IGMP message of `length` bytes to
    /// `destination` into the scratch buffer, as Linux's igmp_send_report and
    /// igmpv3_newpack build them: TTL 1, precedence "internetwork control", Router Alert,
    /// never fragmented. Returns where the message goes.
    func writeIGMPHeaders(to destination: IPv4Address, length: Int) -> Int {
        var ip = IPv4Header(totalLength: 24 + length, proto: IPProtocol.igmp, source: address,
                            destination: destination, timeToLive: 1, identification: nextIdentification)
        nextIdentification &+= 1
        ip.typeOfService = 0xC0
        ip.routerAlert = true
        let ethernet = EthernetHeader(destination: MACAddress(ipv4Group: destination), source: mac, etherType: EtherType.ipv4)
        let at = ethernet.emit(into: scratch)
        return at + ip.emit(into: UnsafeMutableRawBufferPointer(rebasing: scratch[at...]))
    }

    /// A version 3 report to the routers' group. Many groups go in as many reports as the
    /// MTU needs.
    func sendIGMPReport(_ type: MembershipRecord, _ groups: [IPv4Address], sink: inout some FrameSink) {
        let perReport = (configuration.mtu - 24 - IGMPMessage.reportLength(groups: 0)) / 8
        var start = 0
        while start < groups.count {
            let some = groups[start..<min(groups.count, start + perReport)]
            start += some.count
            var at = writeIGMPHeaders(to: IGMPMessage.reportDestination, length: IGMPMessage.reportLength(groups: some.count))
            at += IGMPMessage.emitReport(type, groups: some, into: UnsafeMutableRawBufferPointer(rebasing: scratch[at...]))
            counters.igmpReportsOut &+= 1
            transmit(UnsafeRawBufferPointer(rebasing: scratch[0..<at]), sink: &sink)
        }
    }
}
