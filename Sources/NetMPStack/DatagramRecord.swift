import NetMPChannel
import NetMPTCP
import NetMPWire

/// One datagram's own marking, from sendmsg's control messages (IP_TOS and IP_TTL,
/// IPV6_TCLASS and IPV6_HOPLIMIT): what it asks replaces the socket's for this datagram
/// only, a TTL its multicast TTL too (Linux's ipc.ttl before mc_ttl).
public struct DatagramMarking: Equatable, Sendable {
    public var typeOfService: UInt8?
    public var timeToLive: UInt8?
    public init(typeOfService: UInt8? = nil, timeToLive: UInt8? = nil) {
        self.typeOfService = typeOfService; self.timeToLive = timeToLive
    }
    public static let socket = DatagramMarking()

    /// The shim's word (netmp.h's NETMP_SEND_*): TOS in the low byte, TTL in the next,
    /// each with its flag.
    public init(sendControl word: UInt32) {
        typeOfService = word & 1 << 16 != 0 ? UInt8(truncatingIfNeeded: word) : nil
        timeToLive = word & 1 << 17 != 0 ? UInt8(truncatingIfNeeded: word >> 8) : nil
    }

    /// The socket's marking (and multicast TTL) with this datagram's asks in place.
    public func applied(to marking: IPMarking, multicast: MulticastSending) -> (IPMarking, MulticastSending) {
        var marking = marking, multicast = multicast
        if let typeOfService { marking.typeOfService = typeOfService }
        if let timeToLive { marking.timeToLive = timeToLive; multicast.timeToLive = timeToLive }
        return (marking, multicast)
    }
}

/// The record a UDP send queues for its home core: the datagram's length, its
/// destination's port and address (IPv6, IPv4 mapped, as two halves), then its payload.
/// A datagram's own marking rides in the words' spare bits: its TOS and TTL above the port,
/// their flags at the top of the length.
public enum DatagramRecord {
    public static let headerLength = 24
    public typealias Header = (length: UInt32, port: UInt32, high: UInt64, low: UInt64)
    public static let lengthBits: UInt32 = 0xFF_FFFF, tosSet: UInt32 = 1 << 30, ttlSet: UInt32 = 1 << 31

    public static func header(length: Int, to destination: Endpoint, marking: DatagramMarking = .socket) -> Header {
        var word = UInt32(length), port = UInt32(destination.port)
        if let tos = marking.typeOfService { word |= tosSet; port |= UInt32(tos) << 16 }
        if let ttl = marking.timeToLive { word |= ttlSet; port |= UInt32(ttl) << 24 }
        return (word, port, destination.address.bits.high, destination.address.bits.low)
    }

    /// The record `offset` bytes into the ring's first `held` bytes, if one is there.
    /// Records are committed whole, so a header whose length runs past them (or past any
    /// datagram's) is not a record but the application's scribble: nil, as if none were.
    public static func read(_ ring: SendRing, at offset: Int, held: Int? = nil)
        -> (length: Int, destination: Endpoint, marking: DatagramMarking)? {
        let held = held ?? ring.held
        guard held - offset >= headerLength else { return nil }
        var header: Header = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &header) { ring.copy(from: offset, count: headerLength, into: $0) }
        let length = Int(header.length & lengthBits)
        guard length <= maximumPayload, held - offset - headerLength >= length else { return nil }
        let address = IPAddress(IPv6Address(high: header.high, low: header.low))
        let marking = DatagramMarking(typeOfService: header.length & tosSet != 0 ? UInt8(truncatingIfNeeded: header.port >> 16) : nil,
                                      timeToLive: header.length & ttlSet != 0 ? UInt8(truncatingIfNeeded: header.port >> 24) : nil)
        return (length, Endpoint(address, UInt16(truncatingIfNeeded: header.port)), marking)
    }
    /// The largest UDP payload of either family without jumbograms (IPv4's 65,507 is the
    /// smaller bound, IPv6's is 65,527).
    public static let maximumPayload = 65_527
}
