import Glibc

/// A socket call's failure, as the errno Linux gives: what a core's reply carries to the
/// program.
public struct SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    public let errno: Int32
    public init(_ errno: Int32) { self.errno = errno }
    public var description: String { String(cString: strerror(errno)) + " (errno \(errno))" }
}
