import NetMPTCP
import NetMPWire

/// Why the stack dropped or refused a well-formed frame (malformed ones carry a WireError).
public enum PolicyDrop: String, CaseIterable, Sendable {
    case notForUs = "not-for-us"                    // another host's MAC, or multicast we did not join
    case vlanTagged = "vlan-tagged"                 // netmp has no VLAN interfaces
    case unsupportedEtherType = "unsupported-ethertype"
    case arpAddressConflict = "arp-address-conflict" // someone else claims our address
    case ipNotForUs = "ipv4-not-for-us"
    case ipBadSource = "ipv4-bad-source"            // broadcast or multicast source (RFC 1122 3.2.1.3)
    case unsupportedProtocol = "ipv4-unsupported-protocol"
    case icmpIgnored = "icmp-ignored"               // valid, but nothing to do (e.g. broadcast echo)
    case udpNoSocket = "udp-no-socket"
    case udpQueueFull = "udp-queue-full"            // the socket's queue on this core was full
    case tcpNoSocket = "tcp-no-socket"
    case tcpListenOverflow = "tcp-listen-overflow"   // SYN dropped: backlog full
    case arpQueueOverflow = "arp-queue-overflow"    // too many packets waiting for one resolution
    case arpUnresolved = "arp-unresolved"           // packets dropped when resolution gave up
    case noRoute = "no-route"
    case frameTooLarge = "frame-too-large"
    case loopbackQueueFull = "loopback-queue-full"  // a frame to our own address found no room
    case ipv6NotForUs = "ipv6-not-for-us"           // not one of our ready addresses or joined groups
    case ipv6BadSource = "ipv6-bad-source"          // a multicast source (RFC 4291 2.7), or a datagram from ::
    case ipv6ParameterProblem = "ipv6-parameter-problem" // refused with an ICMPv6 parameter problem
    case ipv6UnsupportedNextHeader = "ipv6-unsupported-next-header"
    case ipv6NoNextHeader = "ipv6-no-next-header"   // nothing after the headers (next header 59)
    case ndpDuplicateAddress = "ndp-duplicate-address" // detection found another node on our address
    case ndpAddressConflict = "ndp-address-conflict"   // another node advertises an address we hold
    case ndpQueueOverflow = "ndp-queue-overflow"    // too many packets waiting for one resolution
    case ndpUnresolved = "ndp-unresolved"           // packets dropped when resolution gave up
    case icmpRateLimited = "icmp-rate-limited"      // an ICMP or ICMPv6 error not sent: over the rate
    // Fragments (FragmentReassembly), of either family:
    case fragmentDuplicate = "fragment-duplicate"   // an exact repeat of one held: dropped alone
    case fragmentOverlap = "fragment-overlap"       // overlaps one held: the packet is abandoned
    case fragmentTooLarge = "fragment-too-large"    // past the 64 KiB a packet may hold
    case fragmentBadLength = "fragment-bad-length"  // a middle one not a multiple of 8, or ends that disagree
    case fragmentTooMany = "fragment-too-many"      // more fragments than a packet may have
    case fragmentTimeout = "fragment-timeout"       // a packet not complete in time, abandoned
    case fragmentEvicted = "fragment-evicted"       // a waiting packet abandoned for a newer one's room
    case fragmentNested = "fragment-nested"         // a whole packet that is itself a fragment
    case fragmentTCP = "fragment-tcp"               // a reassembled TCP segment: its owner may be another core
}

/// Per-reason drop counts. Allocated once; counting does not allocate.
public struct DropCounters: Sendable {
    public private(set) var malformed = [UInt64](repeating: 0, count: WireError.allCases.count)
    public private(set) var policy = [UInt64](repeating: 0, count: PolicyDrop.allCases.count)
    public private(set) var tcp = [UInt64](repeating: 0, count: TCPDrop.allCases.count)

    public init() {}

    public mutating func count(_ reason: TCPDrop) { tcp[TCPDrop.allCases.firstIndex(of: reason)!] &+= 1 }
    public subscript(_ reason: TCPDrop) -> UInt64 { tcp[TCPDrop.allCases.firstIndex(of: reason)!] }

    public mutating func count(_ error: WireError) {
        malformed[WireError.allCases.firstIndex(of: error)!] &+= 1
    }
    public mutating func count(_ reason: PolicyDrop, _ n: UInt64 = 1) {
        policy[PolicyDrop.allCases.firstIndex(of: reason)!] &+= n
    }
    public subscript(_ error: WireError) -> UInt64 { malformed[WireError.allCases.firstIndex(of: error)!] }
    public subscript(_ reason: PolicyDrop) -> UInt64 { policy[PolicyDrop.allCases.firstIndex(of: reason)!] }

    /// Every reason's name, in the fixed order `values` uses (malformed first). Made once:
    /// the stats page asks for its count after every batch.
    public static let names: [String] =
        WireError.allCases.map(\.rawValue) + PolicyDrop.allCases.map(\.rawValue) + TCPDrop.allCases.map(\.rawValue)
    public var values: [UInt64] { malformed + policy + tcp }
    public var total: UInt64 { values.reduce(0, &+) }
}

/// What one interface has done since it came up.
public struct InterfaceCounters: Sendable {
    public var framesIn: UInt64 = 0
    public var framesOut: UInt64 = 0
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    /// TCP super-segments (several MSS in one frame) received from and sent to the link;
    /// `framesIn` and `framesOut` count the wire segments they stand for.
    public var superFramesIn: UInt64 = 0
    public var superFramesOut: UInt64 = 0
    /// Frames sent to this host's own address: received again, never on the link.
    public var framesLooped: UInt64 = 0
    /// Fragmented packets put back together, and fragments sent (of datagrams larger than
    /// the MTU).
    public var reassembled: UInt64 = 0
    public var fragmentsOut: UInt64 = 0
    /// IGMP version 3 reports sent (joins, leaves, answers to queries).
    public var igmpReportsOut: UInt64 = 0
    public var drops = DropCounters()
    public init() {}
}
