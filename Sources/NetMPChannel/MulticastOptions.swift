import CNetMPChannel

/// A UDP socket's multicast options as Linux keeps them (inet_create's and inet6_create's
/// defaults: one hop, looped, every group the host joined), packed into its slot's
/// `multicast` word.
public struct MulticastOptions: Equatable, Sendable {
    public var timeToLive: UInt8 = 1        // IP_MULTICAST_TTL
    public var hopLimit: UInt8 = 1          // IPV6_MULTICAST_HOPS
    public var loop = true                  // IP_MULTICAST_LOOP
    public var loop6 = true                 // IPV6_MULTICAST_LOOP
    public var all = true                   // IP_MULTICAST_ALL
    public var all6 = true                  // IPV6_MULTICAST_ALL

    public init() {}

    public init(word: UInt32) {
        timeToLive = UInt8(truncatingIfNeeded: word)
        hopLimit = UInt8(truncatingIfNeeded: word >> 8)
        loop = word & NETMP_MULTICAST_LOOP != 0
        all = word & NETMP_MULTICAST_ALL != 0
        loop6 = word & NETMP_MULTICAST_LOOP6 != 0
        all6 = word & NETMP_MULTICAST_ALL6 != 0
    }

    public var word: UInt32 {
        var w = UInt32(timeToLive) | UInt32(hopLimit) << 8
        if loop { w |= NETMP_MULTICAST_LOOP }
        if all { w |= NETMP_MULTICAST_ALL }
        if loop6 { w |= NETMP_MULTICAST_LOOP6 }
        if all6 { w |= NETMP_MULTICAST_ALL6 }
        return w
    }
}
