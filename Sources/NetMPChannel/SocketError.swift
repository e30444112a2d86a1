import Glibc

/// A socket call's failure, in Swift's words. `errno` is the number Linux gives for it: only
/// the C boundary (NetMPSocket) and the channel's records (a core's reply, a socket's error
/// word, which carry numbers across the process boundary) deal in numbers; `init(_:)` reads
/// one of those.
public enum SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    case wouldBlock, interrupted, invalidArgument, fault, badDescriptor, permissionDenied
    case addressInUse, addressNotAvailable, familyNotSupported, optionNotSupported, destinationRequired
    case messageTooLong, noBufferSpace, networkDown, networkUnreachable, hostUnreachable
    case notConnected, alreadyConnected, inProgress, alreadyInProgress, connectionRefused
    case connectionReset, connectionAborted, timedOut, brokenPipe, operationNotSupported, protocolError
    /// A number a record carried that has no case of its own.
    case other(Int32)

    private static let numbered: [(SocketError, Int32)] = [
        (.wouldBlock, EAGAIN), (.interrupted, EINTR), (.invalidArgument, EINVAL), (.fault, EFAULT),
        (.badDescriptor, EBADF), (.permissionDenied, EACCES), (.addressInUse, EADDRINUSE),
        (.addressNotAvailable, EADDRNOTAVAIL), (.familyNotSupported, EAFNOSUPPORT), (.optionNotSupported, ENOPROTOOPT),
        (.destinationRequired, EDESTADDRREQ), (.messageTooLong, EMSGSIZE), (.noBufferSpace, ENOBUFS),
        (.networkDown, ENETDOWN), (.networkUnreachable, ENETUNREACH), (.hostUnreachable, EHOSTUNREACH),
        (.notConnected, ENOTCONN), (.alreadyConnected, EISCONN), (.inProgress, EINPROGRESS),
        (.alreadyInProgress, EALREADY), (.connectionRefused, ECONNREFUSED), (.connectionReset, ECONNRESET),
        (.connectionAborted, ECONNABORTED), (.timedOut, ETIMEDOUT), (.brokenPipe, EPIPE),
        (.operationNotSupported, EOPNOTSUPP), (.protocolError, EPROTO),
    ]

    /// The failure a record's number names (a linear look: an array, not a dictionary, as
    /// the library's constructor may run this before the Swift runtime seeds its hashing).
    public init(_ errno: Int32) {
        self = Self.numbered.first { $0.1 == errno }?.0 ?? .other(errno)
    }

    /// The number Linux gives for it, for the C boundary and the channel's records.
    public var errno: Int32 {
        if case .other(let number) = self { return number }
        return Self.numbered.first { $0.0 == self }!.1
    }

    public var description: String { String(cString: strerror(errno)) + " (errno \(errno))" }
}
