/// The source and destination a transport checksum's pseudo-header covers, of either
/// family: TCP and UDP sum the same way over IPv4 (RFC 793, 768) and IPv6 (RFC 8200 8.1).
public enum IPAddressPair: Equatable, Sendable {
    case v4(source: IPv4Address, destination: IPv4Address)
    case v6(source: IPv6Address, destination: IPv6Address)
}

extension InternetChecksum {
    /// Adds the pseudo-header for a transport packet of `length` bytes.
    public mutating func addPseudoHeader(_ addresses: IPAddressPair, protocol proto: UInt8, length: Int) {
        switch addresses {
        case .v4(let source, let destination):
            addPseudoHeader(source: source, destination: destination, protocol: proto, length: length)
        case .v6(let source, let destination):
            addPseudoHeader(source: source, destination: destination, nextHeader: proto, length: length)
        }
    }
}
