/// Every way an arriving frame can be malformed. The stack counts drops per case, so each
/// case is one reason a user can read in `netmp stat`.
public enum WireError: String, Error, CaseIterable, Sendable {
    case ethernetTruncated = "ethernet-truncated"
    case vlanTruncated = "vlan-truncated"
    case arpTruncated = "arp-truncated"
    case arpUnsupportedHardware = "arp-unsupported-hardware"
    case arpUnsupportedProtocol = "arp-unsupported-protocol"
    case arpBadOperation = "arp-bad-operation"
    case ipv4Truncated = "ipv4-truncated"
    case ipv4BadVersion = "ipv4-bad-version"
    case ipv4BadHeaderLength = "ipv4-bad-header-length"
    case ipv4BadTotalLength = "ipv4-bad-total-length"
    case ipv4BadChecksum = "ipv4-bad-checksum"
    case icmpTruncated = "icmp-truncated"
    case icmpBadChecksum = "icmp-bad-checksum"
    case icmpBadQuotedDatagram = "icmp-bad-quoted-datagram"
    case udpTruncated = "udp-truncated"
    case udpBadLength = "udp-bad-length"
    case udpBadChecksum = "udp-bad-checksum"
    case tcpTruncated = "tcp-truncated"
    case tcpBadDataOffset = "tcp-bad-data-offset"
    case tcpBadChecksum = "tcp-bad-checksum"
    case tcpBadOption = "tcp-bad-option"
    /// The virtio-net header in front of a TAP frame was short or named an unknown GSO type.
    case virtioHeaderBad = "virtio-header-bad"
}
