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

    /// Every case but `other`, for reading a number (an array, not a dictionary: the
    /// library's constructor may run this before the Swift runtime seeds its hashing).
    public static let named: [SocketError] = [
        .wouldBlock, .interrupted, .invalidArgument, .fault, .badDescriptor, .permissionDenied, .addressInUse,
        .addressNotAvailable, .familyNotSupported, .optionNotSupported, .destinationRequired, .messageTooLong,
        .noBufferSpace, .networkDown, .networkUnreachable, .hostUnreachable, .notConnected, .alreadyConnected,
        .inProgress, .alreadyInProgress, .connectionRefused, .connectionReset, .connectionAborted, .timedOut,
        .brokenPipe, .operationNotSupported, .protocolError,
    ]

    /// The failure a record's number names.
    public init(_ errno: Int32) {
        self = Self.named.first { $0.errno == errno } ?? .other(errno)
    }

    /// The number Linux gives for it, for the C boundary and the channel's records.
    public var errno: Int32 {
        switch self {
        case .wouldBlock: EAGAIN
        case .interrupted: EINTR
        case .invalidArgument: EINVAL
        case .fault: EFAULT
        case .badDescriptor: EBADF
        case .permissionDenied: EACCES
        case .addressInUse: EADDRINUSE
        case .addressNotAvailable: EADDRNOTAVAIL
        case .familyNotSupported: EAFNOSUPPORT
        case .optionNotSupported: ENOPROTOOPT
        case .destinationRequired: EDESTADDRREQ
        case .messageTooLong: EMSGSIZE
        case .noBufferSpace: ENOBUFS
        case .networkDown: ENETDOWN
        case .networkUnreachable: ENETUNREACH
        case .hostUnreachable: EHOSTUNREACH
        case .notConnected: ENOTCONN
        case .alreadyConnected: EISCONN
        case .inProgress: EINPROGRESS
        case .alreadyInProgress: EALREADY
        case .connectionRefused: ECONNREFUSED
        case .connectionReset: ECONNRESET
        case .connectionAborted: ECONNABORTED
        case .timedOut: ETIMEDOUT
        case .brokenPipe: EPIPE
        case .operationNotSupported: EOPNOTSUPP
        case .protocolError: EPROTO
        case .other(let number): number
        }
    }

    public var description: String { String(cString: strerror(errno)) + " (errno \(errno))" }
}
