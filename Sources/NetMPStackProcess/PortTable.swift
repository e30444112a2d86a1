import Glibc
import NetMPStack
import NetMPSystem

/// The ports application sockets hold through bind() or listen(), process-wide (TCP's, or
/// UDP's in a table of their own): every core listens on a listening port, and a bound
/// port must not be handed out as an ephemeral one by any core. A port is held in each
/// family's namespace apart (`FamilyPort`): an IPv4 socket and a v6-only one may hold the
/// same number, a dual-stack socket holds both. Sockets that all set SO_REUSEPORT share a
/// port (Linux then spreads connections over their listeners), each holder counted. Touched
/// by bind, listen, connect and close, never per segment.
public final class PortTable: @unchecked Sendable {
    let lock = PthreadLock()
    /// Who holds a port: the clients (of the stack service), each with how many of its
    /// sockets hold it, and whether they share it (SO_REUSEPORT: every holder set it, and
    /// all run as one user, `uid`, as Linux's sk_reuseport_match asks: another user must not
    /// join a group and take a share of its connections).
    struct Holding {
        var shared: Bool
        var uid: UInt32
        /// Every holder set SO_REUSEADDR: in UDP's table (`sharesOnReuseAddress`) another
        /// socket that sets it may bind the port too (Linux's udp_lib_lport_inuse), which
        /// is how multicast receivers share a group's port.
        var address = false
        var clients: [UInt32: Int] = [:]
    }
    /// UDP's table: bound sockets that all set SO_REUSEADDR share a port. (TCP's does not
    /// know which of its holders listen, which Linux's rule for TCP depends on.)
    let sharesOnReuseAddress: Bool
    nonisolated(unsafe) var reserved: [FamilyPort: Holding] = [:]
    /// The connections on each port, TIME-WAIT included, counted by how they share it:
    /// Linux keeps them in the port's bind bucket, so a bind there is weighed against them.
    nonisolated(unsafe) var connections: [FamilyPort: ConnectionCounts] = [:]
    /// A port's connections by how they share it: nearly always one way, kept inline (a
    /// dictionary per port cost each connection on a port of its own about 100 bytes).
    struct ConnectionCounts {
        private var first: (reuse: PortReuse, count: Int)?
        private var others: [PortReuse: Int] = [:]
        var isEmpty: Bool { first == nil && others.isEmpty }
        /// Every connection here admits a socket bound as `binding` (`PortReuse.admits`).
        func admit(_ binding: PortReuse) -> Bool {
            (first.map { $0.reuse.admits(binding) } ?? true) && others.keys.allSatisfy { $0.admits(binding) }
        }
        mutating func count(_ reuse: PortReuse, _ change: Int) {
            if first == nil && others[reuse] == nil { first = (reuse, 0) }
            if let held = first, held.reuse == reuse {
                first = held.count + change > 0 ? (reuse, held.count + change) : nil
            } else {
                let count = (others[reuse] ?? 0) + change
                others[reuse] = count > 0 ? count : nil
            }
        }
    }
    nonisolated(unsafe) var nextEphemeral: UInt16
    /// Linux's default ip_local_port_range.
    static let ephemeral: ClosedRange<UInt16> = 32768...60999

    public init(seed: UInt64, sharesOnReuseAddress: Bool = false) {
        self.sharesOnReuseAddress = sharesOnReuseAddress
        nextEphemeral = Self.ephemeral.lowerBound &+ UInt16(truncatingIfNeeded: seed % 28_000)
    }

    /// Reserves `port` in `families`' namespaces for a socket that shares it as `reuse`
    /// says. EADDRINUSE if a socket holds it, unless this and every holder set SO_REUSEPORT
    /// and run as one user; or if a connection holds it that does not admit this socket
    /// (`PortReuse.admits`: without SO_REUSEADDR on both, a connection in TIME-WAIT keeps a
    /// server from binding its port again, as on Linux). Port 0 reserves an ephemeral port
    /// free in all of them, and of connections (EADDRINUSE too when none is left, as
    /// Linux's bind does).
    public func reserve(_ port: UInt16, families: AddressFamilies = .ipv4, for client: UInt32 = 0,
                        reuse: PortReuse = PortReuse()) -> Result<UInt16, SocketError> {
        lock.locked {
            func take(_ candidate: UInt16, ephemeral: Bool) -> Bool {
                let keys = PortHold(candidate, families).keys
                guard !keys.isEmpty, keys.allSatisfy({ key in
                    let sockets = reserved[key].map {
                        !ephemeral && ((reuse.port && $0.shared && $0.uid == reuse.uid)
                                       || (sharesOnReuseAddress && reuse.address && $0.address))
                    } ?? true
                    let established = connections[key].map { !ephemeral && $0.admit(reuse) } ?? true
                    return sockets && established
                }) else { return false }
                for key in keys {
                    var holding = reserved[key] ?? Holding(shared: reuse.port, uid: reuse.uid, address: reuse.address)
                    holding.shared = holding.shared && reuse.port
                    holding.address = holding.address && reuse.address
                    holding.clients[client, default: 0] += 1
                    reserved[key] = holding
                }
                return true
            }
            if port != 0 { return take(port, ephemeral: false) ? .success(port) : .failure(SocketError.addressInUse) }
            for _ in Self.ephemeral {
                let candidate = nextEphemeral
                nextEphemeral = candidate == Self.ephemeral.upperBound ? Self.ephemeral.lowerBound : candidate + 1
                if take(candidate, ephemeral: true) { return .success(candidate) }
            }
            return .failure(SocketError.addressInUse)
        }
    }

    /// `port` is held in either family's namespace.
    public func isReserved(_ port: UInt16) -> Bool {
        lock.locked { reserved[FamilyPort(port, ipv6: false)] != nil || reserved[FamilyPort(port, ipv6: true)] != nil }
    }
    /// `client` holds `port` in every namespace of `families` (a record naming a port is
    /// honoured only for its holder).
    public func isHeld(_ port: UInt16, families: AddressFamilies = .ipv4, by client: UInt32) -> Bool {
        let keys = PortHold(port, families).keys
        return lock.locked { !keys.isEmpty && keys.allSatisfy { reserved[$0]?.clients[client] != nil } }
    }

    /// One of `client`'s holds on `port` goes back in `families`' namespaces; the port is
    /// free once no socket holds it.
    public func release(_ port: UInt16, families: AddressFamilies = .ipv4, ifHeldBy client: UInt32) {
        let keys = PortHold(port, families).keys
        lock.locked {
            for key in keys {
                guard var holding = reserved[key], let count = holding.clients[client] else { continue }
                holding.clients[client] = count > 1 ? count - 1 : nil
                reserved[key] = holding.clients.isEmpty ? nil : holding
            }
        }
    }

    /// A connection on `port` (in one family's namespace) began or ended: it holds the port
    /// against binds from its first segment to the end of its TIME-WAIT. Each core reports
    /// its own connections, once per connection (TCPEndpoints.portHoldChanged).
    public func connection(on port: FamilyPort, _ reuse: PortReuse, held: Bool) {
        lock.locked {
            var counts = connections[port] ?? ConnectionCounts()
            counts.count(reuse, held ? 1 : -1)
            connections[port] = counts.isEmpty ? nil : counts
        }
    }

    /// Every port `client` held (a client process that ended without closing its sockets).
    public func releaseAll(of client: UInt32) {
        lock.locked {
            for (key, var holding) in reserved where holding.clients[client] != nil {
                holding.clients[client] = nil
                reserved[key] = holding.clients.isEmpty ? nil : holding
            }
        }
    }
}
