import CNetMPLinux
import Glibc
import NetMPStack
import Testing

@Suite struct DoorbellTests {
    static func count(_ fd: Int32) -> UInt64? {
        var value: UInt64 = 0
        return read(fd, &value, 8) == 8 ? value : nil
    }

    /// Rung only while polled; the last poller empties the eventfd only when a poller saw
    /// it readable (poll's level-triggered sleep), not after an epoll member (edge-
    /// triggered) leaves, and a count left so is emptied by the next poller that sees it.
    @Test func lastPoller_emptiesOnlyACountItSaw() throws {
        let doorbell = Doorbell()
        let fd = netmp_eventfd()
        try #require(fd >= 0)
        defer { close(fd) }
        doorbell.fd = fd
        doorbell.ring()
        #expect(Self.count(fd) == nil) // nobody polls: no write

        doorbell.enter()               // an epoll member
        doorbell.ring()
        doorbell.leave(rung: false)
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&entry, 1, 0) == 1) // the count stays: no read was made

        doorbell.enter()               // a poll() sleeper wakes on it at once
        doorbell.enter()               // and another poller is still there
        doorbell.leave(rung: true)
        #expect(poll(&entry, 1, 0) == 1) // not the last: the count stays for the other
        doorbell.leave(rung: false)
        #expect(poll(&entry, 1, 0) == 0) // the last leaves: emptied, as the first saw it

        doorbell.enter()
        doorbell.ring()
        doorbell.leave(rung: true)
        #expect(Self.count(fd) == nil)
    }
}
