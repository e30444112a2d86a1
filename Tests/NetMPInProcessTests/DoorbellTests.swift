import CNetMPLinux
import Foundation
import Glibc
import NetMPStack
import NetMPStackProcess
import NetMPSystem
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
        // What naming does: the client puts the common bell in, the stack a bell of its own.
        #expect(netmp_placeholder_join(placeholder, common) == 0)
        let bell = netmp_bell_into(placeholder)
        try #require(bell >= 0)
        #expect(netmp_bell_into(common) == -EINVAL) // the stack takes nothing but a placeholder
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

    /// The stack keeps a bell only for a placeholder a client names, and makes the bell
    /// itself: an eventfd a client names (which it could make blocking and fill, stalling
    /// the core that writes it) is refused and closed, and so is a slot past the table.
    @Test func stackMakesTheBell_onlyForAPlaceholder() throws {
        let descriptors = DoorbellDescriptors(capacity: 4)
        let before = DoorbellDescriptors.held
        let eventfd = netmp_eventfd()
        try #require(eventfd >= 0)
        // Tests running beside this one may take the number as soon as it is free: the
        // file, not the number, must be gone (the kernel names each eventfd in fdinfo).
        func file(_ fd: Int32) -> String? {
            let info = try? String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8)
            return info?.split(separator: "\n").first { $0.hasPrefix("eventfd-id:") }.map(String.init)
        }
        let named = try #require(file(eventfd))
        #expect(!descriptors.register(placeholder: eventfd, for: 0))
        #expect(file(eventfd) != named) // closed, as a refused name is
        #expect(descriptors.word(0)?.pointee.load(ordering: .relaxed) == 0)
        let placeholder = netmp_placeholder(1)
        try #require(placeholder >= 0)
        defer { close(placeholder) }
        #expect(!descriptors.register(placeholder: dup(placeholder), for: 9))
        #expect(descriptors.register(placeholder: dup(placeholder), for: 0))
        #expect(DoorbellDescriptors.held == before + 1)
        let bell = try #require(descriptors.word(0)).pointee.load(ordering: .relaxed) - 1
        #expect(bell >= 0 && bell != placeholder)
        var entry = pollfd(fd: placeholder, events: Int16(POLLIN), revents: 0)
        #expect(poll(&entry, 1, 0) == 0)
        #expect(netmp_doorbell_ring(bell) == 0)
        #expect(poll(&entry, 1, 0) == 1)
    }
}
