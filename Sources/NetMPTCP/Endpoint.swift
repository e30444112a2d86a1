import NetMPWire

/// An IPv4 address and port.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16
    public init(_ address: IPv4Address, _ port: UInt16) { self.address = address; self.port = port }
    public var description: String { "\(address):\(port)" }
}

/// A connection's identity: both endpoints, as seen from this host.
public struct FourTuple: Hashable, Sendable, CustomStringConvertible {
    public var local: Endpoint
    public var remote: Endpoint
    public init(local: Endpoint, remote: Endpoint) { self.local = local; self.remote = remote }
    public var description: String { "\(local)-\(remote)" }
}
