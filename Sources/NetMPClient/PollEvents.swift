/// Readiness as poll(2) reports it, with Linux's bit values (the shim passes them through).
public struct PollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    @inlinable public static var readable: PollEvents { PollEvents(rawValue: 0x001) }   // POLLIN
    @inlinable public static var priority: PollEvents { PollEvents(rawValue: 0x002) }   // POLLPRI: urgent data
    @inlinable public static var writable: PollEvents { PollEvents(rawValue: 0x004) }   // POLLOUT
    @inlinable public static var error: PollEvents { PollEvents(rawValue: 0x008) }      // POLLERR
    @inlinable public static var hangUp: PollEvents { PollEvents(rawValue: 0x010) }     // POLLHUP
    @inlinable public static var readHangUp: PollEvents { PollEvents(rawValue: 0x2000) } // POLLRDHUP
}
