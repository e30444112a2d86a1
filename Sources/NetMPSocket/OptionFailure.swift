import Glibc
import NetMPChannel
import NetMPSystem

/// Why setsockopt or getsockopt refused, in Swift's words; the errno Linux gives for each
/// appears only where the call returns to C (`errno`).
enum OptionFailure: Error, Equatable {
    /// A value too short for its layout, or out of the option's range (EINVAL).
    case invalid
    /// An option this socket does not have at that level, or cannot set (ENOPROTOOPT).
    case notAnOption
    /// A timeout whose microseconds are not below a second (EDOM).
    case outOfDomain
    /// A congestion control or upper-layer protocol (TCP_ULP) netmp does not have (ENOENT).
    case unknownAlgorithm
    /// A level this kind of socket does not have: IPv4's ip_getsockopt says EOPNOTSUPP.
    case unsupportedLevel
    /// What the socket itself refused (IPV6_V6ONLY once bound, IP_MTU unconnected).
    case refused(SocketError)
    /// An option this program lacks the capability to set so (SO_DEBUG on: EACCES).
    case permissionDenied
    /// The same where Linux says EPERM (SO_MARK, a locked filter unlocked).
    case notPermitted

    var errno: Int32 {
        switch self {
        case .invalid: EINVAL
        case .notAnOption: ENOPROTOOPT
        case .outOfDomain: EDOM
        case .unknownAlgorithm: ENOENT
        case .unsupportedLevel: EOPNOTSUPP
        case .refused(let error): error.errno
        case .permissionDenied: EACCES
        case .notPermitted: EPERM
        }
    }
}
