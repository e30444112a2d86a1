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

    /// A preloaded program's socket stands on a placeholder: pollers sleep on it, the
    /// stack's bell and the process's common bell make it readable, and the last poller
    /// that saw it so takes the edges out through it, leaving the common bell's count for
    /// other placeholders. A poller whose number no longer names the socket leaves the
    /// edges for a later one. The placeholder itself gives no bytes and takes none.
    @Test func placeholder_wakesOnEitherBell_andTheLastPollerEmptiesIt() throws {
        let placeholder = netmp_placeholder(1), common = netmp_eventfd()
        try #require(placeholder >= 0 && common >= 0)
        defer { close(placeholder); close(common) }
        let doorbell = Doorbell()
        doorbell.standInPlaceholders(common: common)
        let bell = netmp_placeholder_bell(placeholder, common) // what naming hands the stack
        try #require(bell >= 0)
        defer { close(bell) }
        func readable(_ fd: Int32) -> Bool {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&entry, 1, 0) == 1
        }
        #expect(!readable(placeholder))

        doorbell.enter(through: placeholder)
        doorbell.ring()                        // the application's own change: the common bell
        #expect(readable(placeholder))
        doorbell.leave(rung: true, through: placeholder)
        #expect(!readable(placeholder))        // emptied through the placeholder
        #expect(readable(common))              // the common bell's count stays for the others

        #expect(netmp_doorbell_ring(bell) == 0) // the stack's ring
        #expect(readable(placeholder))
        doorbell.enter(through: placeholder)
        doorbell.leave(rung: true, through: -1) // its number was closed meanwhile
        #expect(readable(placeholder))
        doorbell.enter(through: placeholder)
        doorbell.leave(rung: false, through: placeholder) // the next last poller takes it out
        #expect(!readable(placeholder))

        var value: UInt64 = 1 // the calls a raw system call would reach (the test has no shim)
        #expect(read(placeholder, &value, 8) == -1 && errno == EINVAL)
        #expect(write(placeholder, &value, 8) == -1 && errno == EINVAL)
    }
}
