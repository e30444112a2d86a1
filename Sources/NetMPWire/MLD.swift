/// Multicast Listener Discovery, as a host speaks it (RFC 3810, version 2, the version
/// Linux speaks by default): a router's query, and the version 2 reports we send on a
/// join, a leave, or a query's behalf (version 1's to a version 1 querier, RFC 2710). The
/// messages are ICMPv6 ones: ICMPv6Message checked the checksum of what arrives.
public enum MLDMessage {
    public enum Kind {
        public static let query: UInt8 = 130, reportV1: UInt8 = 131, doneV1: UInt8 = 132, reportV2: UInt8 = 143
    }
    /// Where version 2 reports go (RFC 3810 5.2.14): all MLDv2-capable routers.
    public static let reportDestination = IPv6Address(high: 0xFF02 << 48, low: 0x16)

    /// A query's group (:: for a general query) and its querier's version, told by its
    /// length (RFC 3810 8.1: 24 bytes is version 1, 28 or more version 2).
    public static func query(parsing bytes: UnsafeRawBufferPointer) throws(WireError) -> (group: IPv6Address, version: Int) {
        guard bytes.count >= 24 else { throw .mldTruncated }
        let group = IPv6Address(high: UInt64(bytes.be32(8)) << 32 | UInt64(bytes.be32(12)),
                                low: UInt64(bytes.be32(16)) << 32 | UInt64(bytes.be32(20)))
        return (group, bytes.count >= 28 ? 2 : 1)
    }

    /// The length of a version 2 report of `groups` records, none with sources.
    public static func reportLength(groups: Int) -> Int { 8 + 20 * groups }

    /// Writes a version 2 report of one record of `type` for each of `groups`, with its
    /// checksum for `source` to the routers' group; returns its length.
    @discardableResult
    public static func emitReport(_ type: MembershipRecord, groups: some Collection<IPv6Address>, source: IPv6Address,
                                  into out: UnsafeMutableRawBufferPointer) -> Int {
        type.emitReportHeader(Kind.reportV2, records: groups.count, into: out)
        var at = 8
        for group in groups {
            type.emitRecordHeader(into: out, at: at)
            put(group, into: out, at: at + 4)
            at += 20
        }
        return ICMPv6Message.finish(out, length: at, source: source, destination: reportDestination)
    }

    /// Writes a version 1 report of `group`, sent to the group itself; returns 24.
    @discardableResult
    public static func emitOlderReport(group: IPv6Address, source: IPv6Address, into out: UnsafeMutableRawBufferPointer) -> Int {
        out.put8(Kind.reportV1, at: 0)
        out.put8(0, at: 1)
        out.put32(0, at: 4)             // maximum response delay and reserved: zero in a report
        put(group, into: out, at: 8)
        return ICMPv6Message.finish(out, length: 24, source: source, destination: group)
    }

    static func put(_ address: IPv6Address, into out: UnsafeMutableRawBufferPointer, at offset: Int) {
        out.put32(UInt32(truncatingIfNeeded: address.high >> 32), at: offset)
        out.put32(UInt32(truncatingIfNeeded: address.high), at: offset + 4)
        out.put32(UInt32(truncatingIfNeeded: address.low >> 32), at: offset + 8)
        out.put32(UInt32(truncatingIfNeeded: address.low), at: offset + 12)
    }
}
