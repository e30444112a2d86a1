import CNetMPChannel
import NetMPTCP
import NetMPWire

/// The options a socket set before connect, as its connect record carries them: the part
/// of `TCPConfiguration` an application can change (the rest is the stack's, the same on
/// both sides). The core rebuilds the connection's configuration from its own and these,
/// and checks each value as it would a record from another process.
public struct ConnectOptions: Equatable, Sendable {
    public var noDelay = false
    public var cork = false
    public var keepAlive = false
    public var congestionControl = CongestionAlgorithm.cubic
    public var maximumSegmentSize: UInt16 = 1460
    public var receiveBufferSize: UInt32 = 0
    public var keepAliveIdle: UInt32 = 7200
    public var keepAliveInterval: UInt32 = 75
    public var keepAliveProbes: UInt32 = 9
    public var marking = IPMarking.none

    public init() {}

    public init(_ c: TCPConfiguration) {
        noDelay = c.noDelay
        cork = c.cork
        keepAlive = c.keepAlive
        congestionControl = c.congestionControl
        maximumSegmentSize = UInt16(clamping: c.maximumSegmentSize)
        receiveBufferSize = UInt32(clamping: c.receiveBufferSize)
        keepAliveIdle = UInt32(clamping: c.keepAliveIdle.nanoseconds / 1_000_000_000)
        keepAliveInterval = UInt32(clamping: c.keepAliveInterval.nanoseconds / 1_000_000_000)
        keepAliveProbes = UInt32(clamping: c.keepAliveProbes)
        marking = c.marking
    }

    /// The options as the shared layouts carry them (a connect record, a listen slot).
    public var raw: netmp_stream_options {
        var flags: UInt8 = 0
        if noDelay { flags |= NETMP_STREAM_NODELAY }
        if cork { flags |= NETMP_STREAM_CORK }
        if keepAlive { flags |= NETMP_STREAM_KEEPALIVE }
        return netmp_stream_options(mss: maximumSegmentSize, congestion: UInt8(StreamOption.code(congestionControl)),
                                    tos: marking.typeOfService, receive_buffer: receiveBufferSize,
                                    keep_idle: keepAliveIdle, keep_interval: keepAliveInterval,
                                    keep_probes: UInt16(clamping: keepAliveProbes), ttl: marking.timeToLive, flags: flags)
    }

    /// Options read from a shared layout; nil for an algorithm this version does not know
    /// (the values themselves are checked by `configuration(from:)`).
    public init?(_ raw: netmp_stream_options) {
        guard let algorithm = StreamOption.algorithm(Int64(raw.congestion)) else { return nil }
        congestionControl = algorithm
        noDelay = raw.flags & NETMP_STREAM_NODELAY != 0
        cork = raw.flags & NETMP_STREAM_CORK != 0
        keepAlive = raw.flags & NETMP_STREAM_KEEPALIVE != 0
        maximumSegmentSize = raw.mss
        receiveBufferSize = raw.receive_buffer
        keepAliveIdle = raw.keep_idle
        keepAliveInterval = raw.keep_interval
        keepAliveProbes = UInt32(raw.keep_probes)
        marking = IPMarking(typeOfService: raw.tos, timeToLive: raw.ttl)
    }

    /// `base` with these options; nil when a value is one no application could have set
    /// (an MSS below Linux's 88 or above the stack's, a buffer above the stack's, a
    /// keepalive parameter of 0).
    public func configuration(from base: TCPConfiguration) -> TCPConfiguration? {
        guard (88...base.maximumSegmentSize).contains(Int(maximumSegmentSize)),
              Int(receiveBufferSize) <= base.receiveBufferSize, receiveBufferSize > 0,
              keepAliveIdle > 0, keepAliveInterval > 0, keepAliveProbes > 0,
              marking.typeOfService & 3 == 0 else { return nil } // TCP's ECN bits are the stack's
        var c = base
        c.noDelay = noDelay
        c.cork = cork
        c.keepAlive = keepAlive
        c.congestionControl = congestionControl
        c.maximumSegmentSize = Int(maximumSegmentSize)
        c.receiveBufferSize = Int(receiveBufferSize)
        c.keepAliveIdle = .seconds(UInt64(keepAliveIdle))
        c.keepAliveInterval = .seconds(UInt64(keepAliveInterval))
        c.keepAliveProbes = Int(keepAliveProbes)
        c.marking = marking
        return c
    }
}
