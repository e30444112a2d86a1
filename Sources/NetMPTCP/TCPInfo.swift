import NetMPWire

/// What getsockopt(TCP_INFO) reports, filled from the engine, with Linux's field names
/// (include/uapi/linux/tcp.h) because iperf3 and ss-style tools read them. `emit` writes
/// Linux's struct tcp_info layout (native byte order), 240 bytes as of Linux 6.x.
public struct TCPInfo: Equatable, Sendable {
    public var state: UInt8 = 0
    public var caState: UInt8 = 0
    public var retransmits: UInt8 = 0
    public var probes: UInt8 = 0
    public var backoff: UInt8 = 0
    public var options: UInt8 = 0
    public var sendWindowScale: UInt8 = 0
    public var receiveWindowScale: UInt8 = 0
    /// Microseconds.
    public var rto: UInt32 = 0
    public var ato: UInt32 = 0
    public var sendMSS: UInt32 = 0
    public var receiveMSS: UInt32 = 0
    /// Segments sent and not acknowledged.
    public var unacked: UInt32 = 0
    public var sacked: UInt32 = 0
    public var lost: UInt32 = 0
    public var retrans: UInt32 = 0
    public var pmtu: UInt32 = 0
    public var receiveSlowStartThreshold: UInt32 = 0
    /// Smoothed RTT and its variation, microseconds.
    public var rtt: UInt32 = 0
    public var rttVariation: UInt32 = 0
    public var sendSlowStartThreshold: UInt32 = 0
    /// Congestion window in segments.
    public var sendCongestionWindow: UInt32 = 0
    public var advertisedMSS: UInt32 = 0
    public var reordering: UInt32 = 0
    public var totalRetransmissions: UInt32 = 0
    public var bytesAcked: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var notSentBytes: UInt32 = 0
    public var sendWindow: UInt32 = 0
    public var receiveWindow: UInt32 = 0

    public init() {}

    public static let size = 240
    /// TCPI_OPT_* bits.
    public static let optionTimestamps: UInt8 = 1, optionSACK: UInt8 = 2, optionWindowScale: UInt8 = 4

    /// Linux's TCP_* state numbers (include/net/tcp_states.h).
    public static func linuxState(_ state: TCPState) -> UInt8 {
        switch state {
        case .established: 1
        case .synSent: 2
        case .synReceived: 3
        case .finWait1: 4
        case .finWait2: 5
        case .timeWait: 6
        case .closed: 7
        case .closeWait: 8
        case .lastAck: 9
        case .closing: 11
        }
    }

    /// Where struct tcp_info keeps the 32-bit and 64-bit fields netmp fills (the bytes
    /// 0-6 are single fields, written one by one). Constant key paths: safe to share.
    nonisolated(unsafe) static let words: [(Int, WritableKeyPath<TCPInfo, UInt32>)] = [
        (8, \.rto), (12, \.ato), (16, \.sendMSS), (20, \.receiveMSS), (24, \.unacked), (28, \.sacked), (32, \.lost),
        (36, \.retrans), (60, \.pmtu), (64, \.receiveSlowStartThreshold), (68, \.rtt), (72, \.rttVariation),
        (76, \.sendSlowStartThreshold), (80, \.sendCongestionWindow), (84, \.advertisedMSS), (88, \.reordering),
        (100, \.totalRetransmissions), (144, \.notSentBytes), (228, \.sendWindow), (232, \.receiveWindow),
    ]
    nonisolated(unsafe) static let doubleWords: [(Int, WritableKeyPath<TCPInfo, UInt64>)] = [(120, \.bytesAcked), (128, \.bytesReceived)]

    /// Reads back what `emit` wrote (a reply from the owner core); a short buffer leaves
    /// the fields past its end zero, as a short tcp_info would.
    public init(parsing bytes: UnsafeRawBufferPointer) {
        var all = [UInt8](repeating: 0, count: Self.size)
        all.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, Self.size)])) }
        all.withUnsafeBytes { b in
            state = b[0]; caState = b[1]; retransmits = b[2]; probes = b[3]; backoff = b[4]; options = b[5]
            sendWindowScale = b[6] & 0x0F; receiveWindowScale = b[6] >> 4
            for (offset, field) in Self.words { self[keyPath: field] = b.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
            for (offset, field) in Self.doubleWords { self[keyPath: field] = b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        }
    }

    /// Writes struct tcp_info; fields netmp does not track are zero. Returns the size written.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, Self.size)
        var all = [UInt8](repeating: 0, count: Self.size)
        all.withUnsafeMutableBytes { b in
            b[0] = state; b[1] = caState; b[2] = retransmits; b[3] = probes; b[4] = backoff; b[5] = options
            b[6] = (sendWindowScale & 0x0F) | (receiveWindowScale << 4)
            for (offset, field) in Self.words { b.storeBytes(of: self[keyPath: field], toByteOffset: offset, as: UInt32.self) }
            for (offset, field) in Self.doubleWords { b.storeBytes(of: self[keyPath: field], toByteOffset: offset, as: UInt64.self) }
        }
        all.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        return n
    }
}

extension Connection {
    /// The TCP_INFO snapshot of this connection.
    public var info: TCPInfo {
        var i = TCPInfo()
        i.state = TCPInfo.linuxState(state)
        i.caState = recoveryPoint != nil ? 3 : (duplicateAcks > 0 ? 1 : 0) // TCP_CA_Recovery / Disorder / Open
        i.retransmits = UInt8(min(retransmissions, 255))
        // Linux's icsk_probes_out counts keepalive and zero-window probes alike.
        i.probes = UInt8(min(keepAliveProbesSent + windowProbesUnanswered, 255))
        i.backoff = UInt8(min(retransmissions, 255))
        if timestampsEnabled { i.options |= TCPInfo.optionTimestamps }
        if sackEnabled { i.options |= TCPInfo.optionSACK }
        if sendWindowShift > 0 || receiveWindowShift > 0 { i.options |= TCPInfo.optionWindowScale }
        i.sendWindowScale = UInt8(sendWindowShift)
        i.receiveWindowScale = UInt8(receiveWindowShift)
        i.rto = UInt32(rtt.timeout.nanoseconds / 1000)
        i.ato = UInt32(configuration.delayedAckTimeout.nanoseconds / 1000)
        i.sendMSS = UInt32(sendMSS - (timestampsEnabled ? 12 : 0)) // Linux's mss_cache: net of the timestamp option every segment carries
        i.receiveMSS = UInt32(configuration.maximumSegmentSize)
        i.unacked = UInt32((flight + sendMSS - 1) / max(sendMSS, 1))
        i.sacked = UInt32(scoreboard.sackedBytes / max(sendMSS, 1))
        i.retrans = UInt32(min(segmentsRetransmitted, UInt64(UInt32.max)))
        i.pmtu = UInt32(sendMSS + 40)
        i.receiveSlowStartThreshold = UInt32(min(receiveWindow, Int(UInt32.max)))
        i.rtt = UInt32((rtt.smoothed ?? 0) / 1000)
        i.rttVariation = UInt32(rtt.variation / 1000)
        i.sendSlowStartThreshold = UInt32(min(congestion.slowStartThreshold / max(sendMSS, 1), Int(UInt32.max)))
        i.sendCongestionWindow = UInt32(congestion.window / max(sendMSS, 1))
        i.advertisedMSS = UInt32(configuration.maximumSegmentSize)
        i.reordering = UInt32(reorderingThreshold)
        i.totalRetransmissions = UInt32(min(segmentsRetransmitted, UInt64(UInt32.max)))
        i.bytesAcked = bytesAcknowledged
        i.bytesReceived = bytesReceived
        i.notSentBytes = UInt32(max(0, dataEnd - sendNext))
        i.sendWindow = UInt32(sendWindow)
        i.receiveWindow = UInt32(receiveWindow)
        return i
    }
}
