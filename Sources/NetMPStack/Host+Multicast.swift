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

/// IPv4 multicast as a host takes part in it (RFC 1112 level 2, RFC 3376 for IGMP): the
/// groups its sockets joined, the reports that tell the link's routers, and the answers to
/// their queries. Every core keeps the same groups (each hears every join and leave); the
/// core that speaks for the link reports the changes, and a query is answered by the core
/// it arrived on.
extension Host {
    /// A socket joined `group`: the host is a member from the first join on.
    public func joinGroup(_ group: IPv4Address, now: Instant, sink: inout some FrameSink) {
        if groups.join(group) && speaksForTheLink { reportChange(.changeToExclude, of: group, now: now, sink: &sink) }
    }

    /// A socket left `group` (or closed): the host leaves with the last one.
    public func leaveGroup(_ group: IPv4Address, now: Instant, sink: inout some FrameSink) {
        if groups.leave(group) && speaksForTheLink { reportChange(.changeToInclude, of: group, now: now, sink: &sink) }
    }

    /// RFC 3376 8.1 and Linux's default robustness (2): a change is reported at once and
    /// once more a little later, so that one lost report does not lose it. A change that
    /// undoes one still to repeat replaces it.
    static let igmpRepeatDelay = Interval.milliseconds(500)

    func reportChange(_ type: IGMPMessage.RecordType, of group: IPv4Address, now: Instant, sink: inout some FrameSink) {
        sendIGMPReport(type, [group], sink: &sink)
        igmpChangesToRepeat[group] = type
        if nextIGMPRepeat == nil { nextIGMPRepeat = now + Self.igmpRepeatDelay }
    }

    func repeatIGMPChanges(now: Instant, sink: inout some FrameSink) {
        guard let due = nextIGMPRepeat, due <= now else { return }
        let changes = igmpChangesToRepeat
        igmpChangesToRepeat = [:]
        nextIGMPRepeat = nil
        for type in [IGMPMessage.RecordType.changeToExclude, .changeToInclude] {
            let some = changes.filter { $0.value == type }.keys.sorted()
            if !some.isEmpty { sendIGMPReport(type, some, sink: &sink) }
        }
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
    func sendIGMPReport(_ type: IGMPMessage.RecordType, _ groups: [IPv4Address], sink: inout some FrameSink) {
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
