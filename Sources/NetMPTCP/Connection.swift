import NetMPWire

/// RFC 9293 3.3.2 connection states.
public enum TCPState: String, Sendable, CaseIterable {
    case closed = "CLOSED", synSent = "SYN-SENT", synReceived = "SYN-RECEIVED", established = "ESTABLISHED"
    case finWait1 = "FIN-WAIT-1", finWait2 = "FIN-WAIT-2", closeWait = "CLOSE-WAIT", closing = "CLOSING"
    case lastAck = "LAST-ACK", timeWait = "TIME-WAIT"

    /// States past the handshake, where the synchronized-state input steps apply.
    var isSynchronized: Bool { self != .closed && self != .synSent && self != .synReceived }
    /// States in which arriving data is accepted (RFC 9293 3.10.7.4, seventh step).
    public var acceptsData: Bool { self == .established || self == .finWait1 || self == .finWait2 }
}

/// Why a connection ended badly, as the socket layer will report it (errno at the C boundary).
public enum TCPError: Error, Equatable, Sendable {
    case connectionRefused   // ECONNREFUSED
    case connectionReset     // ECONNRESET
    case timedOut            // ETIMEDOUT
    case unreachable(code: UInt8) // EHOSTUNREACH / ENETUNREACH
}

/// What changed for the application since it last looked.
public struct ConnectionEvents: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let connected = ConnectionEvents(rawValue: 1)
    public static let readable = ConnectionEvents(rawValue: 2)
    public static let writable = ConnectionEvents(rawValue: 4)
    /// The peer sent FIN: reads return end of file once the data is drained.
    public static let peerClosed = ConnectionEvents(rawValue: 8)
    /// The connection failed (`error` says why).
    public static let failed = ConnectionEvents(rawValue: 16)
    /// The connection reached CLOSED: its control block may be freed.
    public static let closed = ConnectionEvents(rawValue: 32)
}

/// A segment the runtime must build and send: the header, and which bytes of the send
/// buffer (offset from its first unacknowledged byte) carry the payload.
public struct OutgoingSegment: Equatable, Sendable {
    public var header: TCPSegmentHeader
    public var payloadOffset: Int
    public var payloadLength: Int
    /// For a super-segment (more payload than one segment carries, sent through a link that
    /// segments: TSO), the payload of each wire segment; 0 otherwise.
    public var segmentSize = 0
}

/// Why the engine dropped (part of) an arriving segment, counted per reason by the stack.
public enum TCPDrop: String, CaseIterable, Sendable {
    case outOfWindow = "tcp-out-of-window"        // RFC 9293 3.10.7.4 first check
    case paws = "tcp-paws"                        // RFC 7323 5: an old timestamp
    case challengeAck = "tcp-challenge-ack"       // RFC 5961: RST or SYN in the window, not exact
    case unacceptableAck = "tcp-bad-ack"          // RFC 5961 5.2 / 9293: ACK outside the sent range
    case noAck = "tcp-no-ack-flag"                // synchronized state, ACK bit off
    case resetIgnored = "tcp-reset-ignored"       // a RST that resets nothing
    case scoreboardFull = "tcp-reassembly-full"   // too many holes to hold more out-of-order data
    case notInSynSent = "tcp-unexpected-in-syn-sent"
    case challengeAckLimited = "tcp-challenge-ack-limited" // RFC 5961 7: over the rate limit, no answer
}

/// What the runtime must do with an arriving segment's payload and the buffers.
public struct InputResult: Equatable, Sendable {
    /// Copy `payload[range]` into the receive buffer at `offset` bytes past its readable end.
    public var store: (range: Range<Int>, offset: Int)? = nil
    /// Bytes that became readable (the readable end advances by this much).
    public var readable = 0
    /// Bytes of the send buffer acknowledged: free them.
    public var acknowledged = 0
    /// A reset to send at once (for a segment that must not be answered from this state).
    public var reset: TCPSegmentHeader? = nil
    /// Why the segment (or its data) was dropped, if it was.
    public var drop: TCPDrop? = nil

    public static func == (a: InputResult, b: InputResult) -> Bool {
        a.store?.range == b.store?.range && a.store?.offset == b.store?.offset && a.readable == b.readable
            && a.acknowledged == b.acknowledged && a.reset == b.reset && a.drop == b.drop
    }
}

/// The transmission control block (RFC 9293 3.3.1) of one connection, as a value: no
/// thread, buffer or clock inside. Segments, user calls and `now` go in; decisions come out:
/// `handle` for arriving segments, `nextSegment` for what to send, `fireTimers` for time.
/// The buffers live with the runtime; the engine tells it which bytes to store and free.
public struct Connection: Sendable {
    public let tuple: FourTuple
    public internal(set) var configuration: TCPConfiguration
    public internal(set) var state: TCPState
    public internal(set) var error: TCPError? = nil
    var events: ConnectionEvents = []

    // MARK: Send sequence space (RFC 9293 3.3.1)
    /// ISS
    public let initialSendSequence: SequenceNumber
    /// SND.UNA
    public internal(set) var sendUnacknowledged: SequenceNumber
    /// SND.NXT
    public internal(set) var sendNext: SequenceNumber
    /// The highest sequence number sent (SND.MAX in BSD): SND.NXT moves back on a timeout.
    public internal(set) var sendMaximum: SequenceNumber
    /// SND.WND, scaled.
    public internal(set) var sendWindow = 0
    /// SND.WL1 and SND.WL2: the segment that last updated the window.
    var sendWindowUpdateSequence = SequenceNumber(0)
    var sendWindowUpdateAcknowledgment = SequenceNumber(0)
    /// The largest window the peer offered (RFC 5961 5.2's MAX.SND.WND).
    var maximumSendWindow = 0
    /// Sequence number of the first byte in the send buffer.
    var sendBufferStart: SequenceNumber
    /// Bytes in the send buffer: sent but unacknowledged, and not yet sent.
    public internal(set) var sendQueued = 0
    /// The application has shut down writing: a FIN follows the queued data.
    public internal(set) var finQueued = false
    /// The application closed the socket altogether: nobody will read, so FIN-WAIT-2 may
    /// time out (Linux's tcp_fin_timeout applies only to such orphans).
    public internal(set) var orphaned = false
    /// SND.UP: just past the last byte the application sent as urgent (send(MSG_OOB)),
    /// while the peer has not acknowledged it; segments before it carry URG.
    public internal(set) var sendUrgentUp: SequenceNumber? = nil

    // MARK: Receive sequence space
    /// IRS
    public internal(set) var initialReceiveSequence = SequenceNumber(0)
    /// RCV.NXT
    public internal(set) var receiveNext = SequenceNumber(0)
    /// Bytes readable but not yet consumed by the application.
    public internal(set) var unread = 0
    /// How much of the receive buffer the window may use now (auto-tuned upward).
    public internal(set) var receiveWindowLimit = 0
    /// Dynamic right-sizing: bytes the application consumed since `tuningPeriodStart`, and the
    /// round-trip time seen from the receive side (RFC 7323's echoed timestamps).
    var consumedInPeriod = 0
    var tuningPeriodStart: Instant? = nil
    var receiverRTT: UInt64? = nil
    /// The right edge of the window last advertised; it never moves left (RFC 9293 3.8.6.2.2).
    var advertisedRightEdge = SequenceNumber(0)
    /// Bytes the application consumed since the last segment that carried our window. A bare
    /// window update goes only for room the reader made (as Linux's tcp_cleanup_rbuf decides
    /// after a read), not for the cap of the SYN's unscaled window lifting: that one rides on
    /// the next ACK or answer, and the peer still has 64 KiB meanwhile.
    var consumedSinceAdvertised = 0
    /// Out-of-order data held past RCV.NXT, and the SACK blocks it produces.
    var outOfOrder = ReceiveScoreboard()
    /// Data is held past RCV.NXT (the receive buffer's space past its readable end is in use).
    public var holdsOutOfOrderData: Bool { !outOfOrder.isEmpty }
    /// The peer's FIN arrived, in order: reads end once the data is drained.
    public internal(set) var receivedFin = false
    /// A FIN that arrived ahead of missing data.
    var pendingFin: SequenceNumber? = nil
    /// Urgent data (RFC 9293 3.8.5, as Linux reads it): the sequence number of the byte the
    /// peer's latest urgent pointer names, and a count that moves with each new one.
    public internal(set) var urgentSequence: SequenceNumber? = nil
    public internal(set) var urgentCount: UInt32 = 0

    // MARK: Options negotiated on the SYNs
    /// The MSS we send with: the peer's announcement clamped to ours.
    public internal(set) var sendMSS: Int
    var sendWindowShift = 0
    var receiveWindowShift = 0
    /// The peer's SYN carried a window scale option: only then does our SYN-ACK carry one.
    var peerOfferedWindowScale = false
    public internal(set) var timestampsEnabled = false
    public internal(set) var sackEnabled = false
    /// TS.Recent (RFC 7323 4.3) and our timestamp clock's offset.
    var timestampRecent: UInt32 = 0
    let timestampOffset: UInt32

    // MARK: Timers and estimators
    public internal(set) var rtt: RTTEstimator
    var retransmitDeadline: Instant? = nil
    var delayedAckDeadline: Instant? = nil
    /// The probe timer (Linux's ICSK_TIME_PROBE0): with a zero window, the next window
    /// probe; with the window open, the ceiling on TCP_CORK (`corkCeilingPassed`).
    var persistDeadline: Instant? = nil
    /// TCP_CORK held a partial segment with nothing in flight for a probe interval: it goes
    /// now, once (Linux sends it from its probe timer, tcp_write_wakeup: the 200 ms ceiling
    /// tcp(7) gives TCP_CORK).
    var corkCeilingPassed = false
    var closeDeadline: Instant? = nil // TIME-WAIT or FIN-WAIT-2
    var keepAliveDeadline: Instant? = nil
    /// Tail loss probe (RFC 8985 7): when the last segments of a flight are lost no duplicate
    /// ACK comes back, and only the RTO would notice; a probe after about two RTTs draws the
    /// SACK that starts fast recovery instead.
    var probeDeadline: Instant? = nil
    var probeDue = false
    /// One probe per flight (RFC 8985 7.2's TLP.end_seq): no other until SND.UNA moves.
    var probeSent = false
    public internal(set) var tailLossProbes: UInt64 = 0
    /// Keepalive probes sent without an answer.
    var keepAliveProbesSent = 0
    /// Zero-window probes sent in a row without an answer, and when the first of them went.
    var windowProbesUnanswered = 0
    var windowProbesSince: Instant? = nil
    /// A keepalive or zero-window probe is due at the next output.
    var bareProbeDue = false
    /// Consecutive timeouts without progress.
    public internal(set) var retransmissions = 0
    /// When the data now unacknowledged was sent, as the first retransmission timeout of a
    /// stall reckons it (Linux's retrans_stamp): TCP_USER_TIMEOUT counts from here. Nil
    /// while nothing has timed out since the last acknowledgment.
    var stalledSince: Instant? = nil
    /// A deadline the socket layer asked to be woken at (a listener's TCP_DEFER_ACCEPT):
    /// firing it only clears it, and the owner settles the connection as after any timer.
    public internal(set) var socketDeadline: Instant? = nil
    /// The connection resets itself at the next output (TCP_LINGER2 below 0).
    var resetDue = false
    /// A segment being timed for RTT when timestamps are off (Karn: never a retransmission).
    var timedSegment: (end: SequenceNumber, sent: Instant)? = nil

    // MARK: Congestion control and loss recovery
    public internal(set) var congestion: CongestionController
    var duplicateAcks = 0
    /// NewReno's "recover" (RFC 6582): loss recovery lasts until this is acknowledged.
    var recoveryPoint: SequenceNumber? = nil
    /// Retransmit one segment here at the next output (fast retransmit, partial ACK).
    var retransmitAt: SequenceNumber? = nil
    /// What the peer SACKed (RFC 6675), and HighRxt: how far loss recovery has resent.
    var scoreboard = SendScoreboard()
    /// What each transmission saw of the delivered count, for BBR's rate samples.
    var deliveryRate = DeliveryRateEstimator()
    var highestRetransmitted = SequenceNumber(0)
    /// SND.MAX when the current round of hole retransmissions began: data SACKed beyond it
    /// was sent after those retransmissions, so a hole still open below HighRxt means a
    /// retransmission was lost too (what RACK detects by time; here by order).
    var retransmissionRoundMark: SequenceNumber? = nil
    public internal(set) var lostRetransmissions: UInt64 = 0
    /// DupThresh (RFC 5681, RFC 6675), in segments: raised when a recovery proves spurious,
    /// so a path that reorders stops being mistaken for one that loses (as Linux adapts its
    /// tp->reordering).
    public internal(set) var reorderingThreshold = 3
    /// The window before the current recovery cut it, to undo a spurious one, and the
    /// timestamp of the recovery's first retransmission (Eifel detection, RFC 3522).
    var windowBeforeRecovery: WindowBeforeReduction? = nil
    var recoveryRetransmitTimestamp: UInt32? = nil
    public internal(set) var spuriousRecoveries: UInt64 = 0
    /// SYN-SENT answered an ACK for another connection with a RST and sent its SYN again.
    var synResentAfterStaleAck = false

    // MARK: Acknowledgment state
    var ackNow = false
    /// RFC 5961 7: challenge ACKs sent in the current one-second window, so a storm of
    /// forged RSTs or SYNs cannot make us a traffic amplifier.
    var challengeAcksSent = 0
    var challengeWindowStart = Instant.zero
    static let challengeAckLimit = 10
    var unacknowledgedSegments = 0
    /// Segments to acknowledge at once after the handshake (Linux's quick-ack mode).
    var quickAcks = 16

    // MARK: Statistics (TCP_INFO)
    public internal(set) var bytesAcknowledged: UInt64 = 0
    public internal(set) var bytesReceived: UInt64 = 0
    public internal(set) var segmentsRetransmitted: UInt64 = 0
    public internal(set) var timeouts: UInt64 = 0
    public internal(set) var recoveries: UInt64 = 0

    init(tuple: FourTuple, state: TCPState, iss: SequenceNumber, now: Instant, configuration: TCPConfiguration,
         timestampOffset: UInt32?) {
        self.tuple = tuple
        self.configuration = configuration
        self.state = state
        initialSendSequence = iss
        sendUnacknowledged = iss
        sendNext = iss
        sendMaximum = iss
        sendBufferStart = iss + 1
        sendMSS = min(536, configuration.maximumSegmentSize) // RFC 9293 3.7.1 default until the SYN says
        self.timestampOffset = timestampOffset ?? iss.raw &* 2_654_435_761
        rtt = RTTEstimator(initial: configuration.initialRTO, minimum: configuration.minimumRTO, maximum: configuration.maximumRTO)
        congestion = CongestionController(configuration.congestionControl, maximumSegmentSize: configuration.maximumSegmentSize,
                                         burst: configuration.segmentationLimit)
        var shift = 0
        while shift < 14 && configuration.receiveBufferSize >> shift > 65_535 { shift += 1 }
        receiveWindowShift = shift
        receiveWindowLimit = min(configuration.receiveBufferSize, max(configuration.initialReceiveWindow, 4 * configuration.maximumSegmentSize))
    }

    /// An active open (RFC 9293 3.10.1, CLOSED -> SYN-SENT): the SYN goes out at the next output.
    /// `timestampOffset` is the RFC 7323 5.4 clock offset; the host gives one per address
    /// pair (as Linux does), so a new connection on a 4-tuple the peer still holds in
    /// TIME-WAIT carries newer timestamps and is let in (RFC 6191). Without one, the
    /// offset comes from the ISS.
    public static func connect(_ tuple: FourTuple, iss: SequenceNumber, now: Instant,
                               configuration: TCPConfiguration = TCPConfiguration(),
                               timestampOffset: UInt32? = nil) -> Connection {
        Connection(tuple: tuple, state: .synSent, iss: iss, now: now, configuration: configuration,
                   timestampOffset: timestampOffset)
    }

    /// A passive open completing its first step (LISTEN + SYN -> SYN-RECEIVED, RFC 9293
    /// 3.10.7.2): the listener hands the SYN here; the SYN-ACK goes out at the next output.
    public static func accept(_ syn: TCPSegmentHeader, tuple: FourTuple, iss: SequenceNumber, now: Instant,
                              configuration: TCPConfiguration = TCPConfiguration(),
                              timestampOffset: UInt32? = nil) -> Connection {
        var connection = Connection(tuple: tuple, state: .synReceived, iss: iss, now: now, configuration: configuration,
                                    timestampOffset: timestampOffset)
        connection.synchronize(with: syn)
        return connection
    }

    /// Records the peer's SYN: IRS, RCV.NXT and the options (RFC 7323, RFC 2018, MSS).
    mutating func synchronize(with syn: TCPSegmentHeader) {
        initialReceiveSequence = SequenceNumber(syn.sequenceNumber)
        receiveNext = initialReceiveSequence + 1
        advertisedRightEdge = receiveNext
        let options = syn.options
        sendMSS = min(Int(options.maximumSegmentSize ?? 536), configuration.maximumSegmentSize)
        peerOfferedWindowScale = options.windowScale != nil
        sendWindowShift = min(Int(options.windowScale ?? 0), 14) // RFC 7323 2.3: larger shifts are taken as 14
        if options.windowScale == nil { receiveWindowShift = 0 } // both sides or neither (RFC 7323 2.2)
        timestampsEnabled = configuration.timestamps && options.timestamp != nil
        if let ts = options.timestamp { timestampRecent = ts.value }
        sackEnabled = configuration.selectiveAcknowledgments && options.sackPermitted
        sendWindow = Int(syn.window) // never scaled on a SYN (RFC 7323 2.2)
        maximumSendWindow = sendWindow
        sendWindowUpdateSequence = SequenceNumber(syn.sequenceNumber)
        congestion = CongestionController(configuration.congestionControl, maximumSegmentSize: sendMSS, burst: configuration.segmentationLimit)
    }

    /// Takes what happened since the last call.
    public mutating func takeEvents() -> ConnectionEvents {
        defer { events = [] }
        return events
    }

    /// Bytes sent and not yet acknowledged, in sequence space.
    public var flight: Int { sendNext - sendUnacknowledged }
    /// Sequence number just past the queued data (where the FIN goes).
    var dataEnd: SequenceNumber { sendBufferStart + sendQueued }
    /// Queued bytes that have left at least once (up to SND.MAX): the rest is what
    /// TCP_NOTSENT_LOWAT counts. A retransmission timeout, which moves SND.NXT back, does
    /// not make sent data unsent (Linux's write_seq - snd_nxt does not grow either).
    public var sentData: Int { max(0, min(sendQueued, sendMaximum - sendBufferStart)) }
    var finSent: Bool { finQueued && dataEnd < sendMaximum }
    var finAcknowledged: Bool { finQueued && dataEnd < sendUnacknowledged }

    /// The receive window we can offer now: buffer space past the unread data.
    var receiveWindow: Int { max(0, receiveWindowLimit - unread) }

    mutating func enter(_ newState: TCPState, now: Instant) {
        state = newState
        switch newState {
        case .timeWait:
            closeDeadline = now + configuration.timeWaitDuration
            retransmitDeadline = nil; persistDeadline = nil; probeDeadline = nil
        case .closed:
            retransmitDeadline = nil; delayedAckDeadline = nil; persistDeadline = nil; closeDeadline = nil
            keepAliveDeadline = nil; probeDeadline = nil
            events.insert(.closed)
        default: break
        }
    }

    mutating func fail(_ reason: TCPError, now: Instant) {
        error = reason
        events.insert(.failed)
        enter(.closed, now: now)
    }
}
