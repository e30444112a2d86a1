import func Glibc.strerror

/// Where a program finds the stack process, and the ways that can fail: what both sides of
/// the door agree on besides the records of CNetMPChannel (docs/STACK-SERVICE.md).
public enum StackDoor {
    /// The door's name for TAP `tap`: an abstract Unix socket, so one per network
    /// namespace, which is where the TAP's name means something.
    public static func name(tap: String) -> String { "netmp/\(tap)" }

    /// Exit status of `netmp stack --background` when another stack already serves the
    /// TAP here: the program that started it attaches to that one.
    public static let alreadyServedStatus: Int32 = 3
}

/// Why a program could not attach to a stack service (or have it capture, or stop).
public enum AttachError: Error, Equatable, CustomStringConvertible {
    /// No stack serves this name in this network namespace (connect's errno).
    case noStack(errno: Int32)
    /// The stack refused the client (its errno: EACCES for a uid it does not serve).
    case refused(errno: Int32)
    /// The stack's answer was not what this library understands.
    case malformed(String)

    public var description: String {
        switch self {
        case .noStack(let e): "no netmp stack serves this TAP here (\(String(cString: strerror(e))))"
        case .refused(let e): "the netmp stack refused this program (\(String(cString: strerror(e))))"
        case .malformed(let why): "the netmp stack's answer is malformed: \(why)"
        }
    }
}
