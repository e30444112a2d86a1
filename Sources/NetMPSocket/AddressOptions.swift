import Glibc
import NetMPStack

/// The IP-level options about a socket's path and port: IP_MTU_DISCOVER and
/// IPV6_MTU_DISCOVER (0 to 5; on a UDP socket DO, PROBE and INTERFACE refuse a datagram
/// the path cannot carry whole; on TCP, which never fragments, they are kept for
/// getsockopt), IP_MTU and IPV6_MTU (the path's MTU, once connected), and
/// IP_BIND_ADDRESS_NO_PORT. Linux's IPPROTO_IP options reach an IPv6 socket too (for its
/// IPv4-mapped traffic).

/// setsockopt: nil when (level, name) is none of these.
func setAddressOption(_ shim: ShimSocket, _ level: Int32, _ name: Int32, _ value: UnsafeRawPointer?, _ length: UInt32) -> Int32? {
    let discover = level == OptionName.ipprotoIP && name == OptionName.mtuDiscover
    let discover6 = level == OptionName.ipprotoIPv6 && shim.isIPv6 && name == OptionName.mtuDiscover6
    let noPort = level == OptionName.ipprotoIP && name == OptionName.bindAddressNoPort
    guard discover || discover6 || noPort else { return nil }
    // IPPROTO_IP's take an int or one byte, IPv6's an int.
    guard let v = optionInteger(level, value, length) else { return -EINVAL }
    if noPort {
        switch shim.kind {
        case .stream(let s): s.setBindAddressNoPort(v != 0)
        case .datagram(let d): d.setBindAddressNoPort(v != 0)
        }
        return 0
    }
    guard (0...5).contains(v) else { return -EINVAL } // IP_PMTUDISC_DONT ... IP_PMTUDISC_OMIT
    if case .datagram(let d) = shim.kind { d.setPathMTUDiscovery(v, ipv6: discover6) }
    return 0 // a stream socket's is kept by netmpSetSockOpt (integerOption reads it back)
}

/// getsockopt: nil when (level, name) is none of these.
func addressOption(_ shim: ShimSocket, _ level: Int32, _ name: Int32) -> Result<Int32, SocketError>? {
    let ipv4Level = level == OptionName.ipprotoIP, ipv6Level = level == OptionName.ipprotoIPv6 && shim.isIPv6
    switch (ipv4Level, ipv6Level, name) {
    case (true, _, OptionName.bindAddressNoPort):
        switch shim.kind {
        case .stream(let s): return .success(s.isBindAddressNoPort ? 1 : 0)
        case .datagram(let d): return .success(d.isBindAddressNoPort ? 1 : 0)
        }
    case (true, _, OptionName.mtuDiscover), (_, true, OptionName.mtuDiscover6):
        switch shim.kind {
        case .stream: return .success(shim.integerOption(level, name) ?? 1) // IP_PMTUDISC_WANT
        case .datagram(let d): return .success(d.pathMTUDiscovery(ipv6: !ipv4Level))
        }
    case (true, _, OptionName.mtu), (_, true, OptionName.mtu6):
        // Linux answers from the socket's route: only a connected socket has one.
        let connected: Bool
        switch shim.kind {
        case .stream(let s): connected = (try? s.peerAddress()) != nil
        case .datagram(let d): connected = (try? d.peerAddress()) != nil
        }
        return connected ? .success(Int32(processClient?.configuration.mtu ?? 1500)) : .failure(SocketError(ENOTCONN))
    default:
        return nil
    }
}
