import NetMPStack

extension StreamSocket {
    /// IP_BIND_ADDRESS_NO_PORT (Linux: the port is picked at connect, where the 4-tuple is
    /// known, so many connections may share a bound address's ports).
    public func setBindAddressNoPort(_ on: Bool) { setup.locked { bindAddressNoPort = on } }
    public var isBindAddressNoPort: Bool { setup.locked { bindAddressNoPort } }
}
