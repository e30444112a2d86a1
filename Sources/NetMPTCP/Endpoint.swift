import NetMPWire

/// An address of either family and a port.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public init(_ address: IPAddress, _ port: UInt16) { self.address = address; self.port = port }
    public init(_ address: IPv4Address, _ port: UInt16) { self.init(IPAddress(address), port) }
    public init(_ address: IPv6Address, _ port: UInt16) { self.init(IPAddress(address), port) }
    /// "10.0.0.1:80" or "[fd77::1]:80", as Linux tools print them.
    public var description: String { address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)" }
    /// The IPv4 address as the IPv4-only layouts of the socket channels store it. Sockets
    /// of that family hold only IPv4 endpoints; an IPv6 one stores 0.0.0.0.
    public var ipv4Value: UInt32 { address.v4?.value ?? 0 }
}

/// A connection's identity: both endpoints, as seen from this host.
public struct FourTuple: Hashable, Sendable, CustomStringConvertible {
    public var local: Endpoint
    public var remote: Endpoint
    public init(local: Endpoint, remote: Endpoint) { self.local = local; self.remote = remote }
    public var description: String { "\(local)-\(remote)" }
    /// A connection over IPv4 (both ends are one family).
    public var isIPv4: Bool { local.address.isIPv4 }
}
