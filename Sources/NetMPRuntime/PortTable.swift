import Glibc
import NetMPStack

/// The TCP ports application sockets hold through bind() or listen(), process-wide: every
/// core listens on a listening port, and a bound port must not be handed out as an
/// ephemeral one by any core. Touched by bind, listen, connect and close, never per segment.
public final class PortTable: @unchecked Sendable {
    let lock = PthreadLock()
    /// Held ports, and the client (of the stack service) that holds each.
    nonisolated(unsafe) var reserved: [UInt16: UInt32] = [:]
    nonisolated(unsafe) var nextEphemeral: UInt16
    /// Linux's default ip_local_port_range.
    static let ephemeral: ClosedRange<UInt16> = 32768...60999

    public init(seed: UInt64) {
        nextEphemeral = Self.ephemeral.lowerBound &+ UInt16(truncatingIfNeeded: seed % 28_000)
    }

    /// Reserves `port` (EADDRINUSE if held); port 0 reserves a free ephemeral port
    /// (EADDRINUSE too when none is left, as Linux's bind does).
    public func reserve(_ port: UInt16, for client: UInt32 = 0) -> Result<UInt16, SocketError> {
        lock.locked {
            if port != 0 {
                guard reserved[port] == nil else { return .failure(SocketError(EADDRINUSE)) }
                reserved[port] = client
                return .success(port)
            }
            for _ in Self.ephemeral {
                let candidate = nextEphemeral
                nextEphemeral = candidate == Self.ephemeral.upperBound ? Self.ephemeral.lowerBound : candidate + 1
                if reserved[candidate] == nil {
                    reserved[candidate] = client
                    return .success(candidate)
                }
            }
            return .failure(SocketError(EADDRINUSE))
        }
    }

    public func release(_ port: UInt16) { _ = lock.locked { reserved.removeValue(forKey: port) } }
    public func isReserved(_ port: UInt16) -> Bool { lock.locked { reserved[port] != nil } }
    /// `client` holds `port` (a record naming a port is honoured only for its holder).
    public func isHeld(_ port: UInt16, by client: UInt32) -> Bool { lock.locked { reserved[port] == client } }

    /// `port` goes back if `client` holds it.
    public func release(_ port: UInt16, ifHeldBy client: UInt32) {
        lock.locked { if reserved[port] == client { reserved.removeValue(forKey: port) } }
    }

    /// Every port `client` held (a client process that ended without closing its sockets).
    public func releaseAll(of client: UInt32) {
        lock.locked { reserved = reserved.filter { $0.value != client } }
    }
}

/// A socket call's failure, as the errno Linux gives.
public struct SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    public let errno: Int32
    public init(_ errno: Int32) { self.errno = errno }
    public var description: String { String(cString: strerror(errno)) + " (errno \(errno))" }
}
