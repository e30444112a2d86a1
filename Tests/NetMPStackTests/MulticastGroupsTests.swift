import NetMPStack
import NetMPWire
import Testing

/// The host's groups of one family: one membership however many sockets joined, and the
/// all-hosts group never reported; the count the stats page shows is the list's length.
@Suite struct MulticastGroupsTests {
    @Test func reportedCount_isTheReportedListsLength_allHostsNeverCounted() {
        let allHosts = IPv4Address(224, 0, 0, 1)
        var groups = MulticastGroups(always: allHosts)
        #expect(groups.reported.isEmpty && groups.reportedCount == 0)
        let first = groups.join(IPv4Address(239, 1, 1, 1))
        let second = groups.join(IPv4Address(239, 1, 1, 1)) // a second socket: no new report
        let explicit = groups.join(allHosts) // joined explicitly: still never reported
        let other = groups.join(IPv4Address(239, 2, 2, 2))
        #expect(first && !second && !explicit && other)
        #expect(groups.reported == [IPv4Address(239, 1, 1, 1), IPv4Address(239, 2, 2, 2)])
        #expect(groups.reportedCount == groups.reported.count)
        _ = groups.leave(IPv4Address(239, 1, 1, 1))
        #expect(groups.reportedCount == 2, "one socket still holds it")
        _ = groups.leave(IPv4Address(239, 1, 1, 1))
        _ = groups.leave(allHosts)
        #expect(groups.reported == [IPv4Address(239, 2, 2, 2)] && groups.reportedCount == 1)
    }
}
