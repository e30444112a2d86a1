/// IGMP, as a host speaks it (RFC 3376, version 3, the version Linux speaks by default):
/// the queries a router sends, which ask which groups we belong to, and the version 3
/// reports we send on a join, a leave, or a query's behalf. Older reports seen on the link
/// are another host's business and parse as `other`.
public enum IGMPMessage: Equatable, Sendable {
    public enum Kind {
        public static let query: UInt8 = 0x11, reportV1: UInt8 = 0x12, reportV2: UInt8 = 0x16
        public static let leaveV2: UInt8 = 0x17, reportV3: UInt8 = 0x22
    }
    /// Where version 3 reports go (RFC 3376 4.2.14): all IGMPv3-capable routers.
    public static let reportDestination = IPv4Address(224, 0, 0, 22)
    /// The group every host belongs to, and never reports (RFC 3376 5).
    public static let allHosts = IPv4Address(224, 0, 0, 1)

    /// A query: `group` 0 is a general query (every group), another a group-specific one.
    /// `maximumResponse` is in tenths of a second, as RFC 3376 4.1.1 decodes it (a version
    /// 2 query's byte is plain tenths). `version` is the querier's, told by the length and
    /// code (RFC 3376 7.1): 8 bytes with code 0 is version 1, other 8-byte ones version 2,
    /// 12 bytes or more version 3. Source lists are not kept: netmp joins whole groups.
    case query(group: IPv4Address, maximumResponse: Int, version: Int)
    /// Another host's report or leave, or a type netmp does not act on.
    case other(type: UInt8)

    /// Parses a whole IGMP message and checks its checksum.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 8 else { throw .igmpTruncated }
        guard InternetChecksum.of(bytes) == 0 else { throw .igmpBadChecksum }
        guard bytes[0] == Kind.query else { self = .other(type: bytes[0]); return }
        let code = Int(bytes[1])
        // A version 3 query is 12 bytes or more, and its code may be a floating-point value.
        let version = bytes.count >= 12 ? 3 : code == 0 ? 1 : 2
        let response = version == 3 && code >= 128 ? (code & 0x0F | 0x10) << ((code >> 4 & 0x07) + 3) : code
        self = .query(group: IPv4Address(bytes.be32(4)), maximumResponse: response, version: version)
    }

    /// Writes the 8-byte report an older querier asks for (RFC 2236 2: type 0x16, or
    /// RFC 1112's 0x12 for version 1) of one group, with its checksum; returns 8.
    @discardableResult
    public static func emitOlderReport(version: Int, group: IPv4Address, into out: UnsafeMutableRawBufferPointer) -> Int {
        out.put8(version == 1 ? Kind.reportV1 : Kind.reportV2, at: 0)
        out.put8(0, at: 1)
        out.put16(0, at: 2)
        out.put32(group.value, at: 4)
        out.put16(InternetChecksum.of(UnsafeRawBufferPointer(rebasing: out[0..<8])), at: 2)
        return 8
    }

    /// The length of a version 3 report of `groups` group records, none with sources.
    public static func reportLength(groups: Int) -> Int { 8 + 8 * groups }

    /// Writes a version 3 report of one record of `type` for each of `groups`, with its
    /// checksum; returns its length. `into` must hold `reportLength(groups:)` bytes.
    @discardableResult
    public static func emitReport(_ type: MembershipRecord, groups: some Collection<IPv4Address>,
                                  into out: UnsafeMutableRawBufferPointer) -> Int {
        let length = reportLength(groups: groups.count)
        type.emitReportHeader(Kind.reportV3, records: groups.count, into: out)
        var at = 8
        for group in groups {
            type.emitRecordHeader(into: out, at: at)
            out.put32(group.value, at: at + 4)
            at += 8
        }
        out.put16(InternetChecksum.of(UnsafeRawBufferPointer(rebasing: out[0..<length])), at: 2)
        return length
    }
}

/// The record types of an IGMPv3 or MLDv2 report (RFC 3376 4.2.12, RFC 3810 5.2.12) that a
/// host joining whole groups sends: its state in answer to a query, and the change a join
/// or leave makes. Both protocols number them alike.
public enum MembershipRecord: UInt8, Sendable {
    case modeIsExclude = 2, changeToInclude = 3, changeToExclude = 4

    /// A report's first 8 bytes, its checksum zero: the message type, reserved fields and
    /// the number of records (RFC 3376 4.2, RFC 3810 5.2 lay them out alike).
    func emitReportHeader(_ messageType: UInt8, records: Int, into out: UnsafeMutableRawBufferPointer) {
        out.put8(messageType, at: 0)
        out.put8(0, at: 1)
        out.put16(0, at: 2)
        out.put16(0, at: 4)
        out.put16(UInt16(records), at: 6)
    }

    /// A group record's first 4 bytes, before its group address: this type, no auxiliary
    /// data, no sources (the whole group).
    func emitRecordHeader(into out: UnsafeMutableRawBufferPointer, at offset: Int) {
        out.put8(rawValue, at: offset)
        out.put8(0, at: offset + 1)
        out.put16(0, at: offset + 2)
    }
}

extension MACAddress {
    /// The Ethernet address an IPv4 group's datagrams go to (RFC 1112 6.4): 01:00:5e and
    /// the group's low 23 bits.
    public init(ipv4Group group: IPv4Address) {
        self.init(value: 0x0100_5E00_0000 | UInt64(group.value & 0x7F_FFFF))
    }
}
