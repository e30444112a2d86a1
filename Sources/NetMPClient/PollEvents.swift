/// Readiness as poll(2) reports it, with Linux's bit values (the shim passes them through).
public struct PollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: 0x001)   // POLLIN
    public static let priority = PollEvents(rawValue: 0x002)   // POLLPRI: urgent data
    public static let writable = PollEvents(rawValue: 0x004)   // POLLOUT
    public static let error = PollEvents(rawValue: 0x008)      // POLLERR
    public static let hangUp = PollEvents(rawValue: 0x010)     // POLLHUP
    public static let readHangUp = PollEvents(rawValue: 0x2000) // POLLRDHUP
}
