import NetMPStack

/// The options that decide how a stream socket holds its port: IP_BIND_ADDRESS_NO_PORT,
/// SO_REUSEPORT and SO_REUSEADDR.
extension StreamSocket {
    /// IP_BIND_ADDRESS_NO_PORT (Linux: the port is picked at connect, where the 4-tuple is
    /// known, so many connections may share a bound address's ports).
    public func setBindAddressNoPort(_ on: Bool) { setup.locked { bindAddressNoPort = on } }
    public var isBindAddressNoPort: Bool { setup.locked { bindAddressNoPort } }
}

extension StreamSocket {
    /// SO_REUSEPORT: taken into account by the next bind or listen, as Linux's is.
    public func setReusePort(_ on: Bool) { setup.locked { reusePort = on } }
}

extension StreamSocket {
    /// SO_REUSEADDR: taken into account by the next bind, listen or connect. A listener's
    /// connections hold their port as it was set when it began listening.
    public func setReuseAddress(_ on: Bool) { setup.locked { reuseAddress = on } }
}
