/// What a socket sets on the IP header of each packet it sends: the type-of-service byte
/// (DSCP and ECN; IPv6's traffic class) and the time to live (IPv6's hop limit), from
/// IP_TOS and IP_TTL, or IPV6_TCLASS and IPV6_UNICAST_HOPS. A TTL of 0 means the stack's
/// default (64, or what a router advertised), as Linux's -1 does.
public struct IPMarking: Equatable, Sendable {
    public var typeOfService: UInt8
    public var timeToLive: UInt8
    public init(typeOfService: UInt8 = 0, timeToLive: UInt8 = 0) {
        self.typeOfService = typeOfService; self.timeToLive = timeToLive
    }
    /// The stack's defaults: TOS 0, the default TTL.
    public static let none = IPMarking()

    /// Both in one word (TOS in the low byte), as a shared slot keeps them.
    public var word: UInt32 { UInt32(typeOfService) | UInt32(timeToLive) << 8 }
    public init(word: UInt32) { self.init(typeOfService: UInt8(truncatingIfNeeded: word), timeToLive: UInt8(truncatingIfNeeded: word >> 8)) }
}
