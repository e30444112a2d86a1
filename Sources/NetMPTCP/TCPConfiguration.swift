import NetMPWire

/// Per-connection settings, passed in (never read from globals).
public struct TCPConfiguration: Sendable {
    /// Our MSS: the link MTU minus 40 bytes of IPv4 and TCP headers.
    public var maximumSegmentSize = 1460
    /// The most payload one segment handed to the link may carry when the link cuts
    /// segments itself (TCP segmentation offload): several MSS, sent and counted as that
    /// many segments. 0: the link does not, and every segment is one MSS at most.
    public var segmentationLimit = 0
    /// The segmentation limit for a link that segments: an IPv4 datagram's 64 KiB less the
    /// IPv4 header and the largest TCP header.
    public static let superSegmentLimit = 65_535 - 20 - 60
    /// Receive buffer: the most data held for the application, in order or not; the window
    /// starts at `initialReceiveWindow` and grows toward this as the application keeps up
    /// (dynamic right-sizing, as Linux's tcp_rcv_space_adjust). Memory per connection is
    /// bounded by this plus `sendBufferSize`.
    public var receiveBufferSize = 4 << 20
    public var initialReceiveWindow = 128 << 10
    /// Send buffer size (the socket layer enforces it; the engine needs it for nothing else).
    public var sendBufferSize = 4 << 20
    public var timestamps = true
    public var selectiveAcknowledgments = true
    public var congestionControl: CongestionAlgorithm = .cubic
    /// IP_TOS and IP_TTL (IPV6_TCLASS, IPV6_UNICAST_HOPS) for the connection's segments;
    /// the TOS's ECN bits stay clear, as Linux clears them for TCP.
    public var marking = IPMarking.none
    /// TCP_NODELAY: send small segments at once instead of waiting for outstanding data (Nagle).
    public var noDelay = false
    /// TCP_CORK: send only full segments until uncorked (or the FIN goes).
    public var cork = false
    /// SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT (Linux's defaults).
    public var keepAlive = false
    public var keepAliveIdle = Interval.seconds(7200)
    public var keepAliveInterval = Interval.seconds(75)
    public var keepAliveProbes = 9
    /// Longest wait before acknowledging in-order data (RFC 1122 4.2.3.2 allows 500 ms; Linux
    /// uses 40 ms at least, which netmp follows).
    public var delayedAckTimeout = Interval.milliseconds(40)
    /// How long the ACK of a connection's first data, one segment that ends a message, waits
    /// for the application's answer to carry it. Linux acknowledges such a segment at once
    /// and its answer follows microseconds later in a frame of its own; a request answered
    /// within the hold costs one frame less. A sender that Nagle holds back behind the ACK
    /// waits at most this long (Linux's delayed ACK holds it 40 ms after the start).
    public var answerAckHold = Interval.milliseconds(1)
    /// RFC 6298 2.4 says 1 s; Linux uses 200 ms, which suits the short RTTs netmp runs on.
    public var minimumRTO = Interval.milliseconds(200)
    public var maximumRTO = Interval.seconds(120)
    public var initialRTO = Interval.seconds(1)
    /// Give up on a connection after this many consecutive retransmission timeouts
    /// (Linux's tcp_retries2 is 15; SYNs give up after tcp_syn_retries, 6).
    public var maximumRetransmissions = 15
    public var maximumSYNRetransmissions = 6
    /// A passive open resends its SYN-ACK tcp_synack_retries times, 5 on Linux: the
    /// half-open connection is forgotten 63 s after its SYN.
    public var maximumSYNACKRetransmissions = 5
    /// TIME-WAIT lasts 2 * MSL (RFC 9293 3.6.1); Linux waits 60 s.
    public var timeWaitDuration = Interval.seconds(60)
    /// How long FIN-WAIT-2 waits for the peer's FIN once the application closed (Linux
    /// tcp_fin_timeout; TCP_LINGER2 sets it per socket).
    public var finWait2Timeout = Interval.seconds(60)
    /// TCP_LINGER2 below 0: a closed socket whose FIN is acknowledged resets the connection
    /// instead of waiting in FIN-WAIT-2 (Linux's tp->linger2 < 0).
    public var resetInsteadOfFinWait2 = false
    /// TCP_USER_TIMEOUT (RFC 5482): the longest that sent data may stay unacknowledged, or
    /// keepalive probes unanswered, before the connection fails with ETIMEDOUT; it then
    /// replaces the retransmission and probe counts. Zero: off.
    public var userTimeout = Interval.zero
    public init() {}
}
