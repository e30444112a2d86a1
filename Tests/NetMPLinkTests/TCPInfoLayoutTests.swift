import Glibc
import NetMPTCP
import NetMPWire
import Testing

/// TCP_INFO's bytes read back through the C library's own struct tcp_info: the layout is
/// the one programs compiled against <netinet/tcp.h> expect.
@Suite struct TCPInfoLayoutTests {
    @Test func emittedBytes_readByGlibcStruct() {
        var info = TCPInfo()
        info.state = 1; info.caState = 3; info.retransmits = 2; info.options = 7
        info.sendWindowScale = 7; info.receiveWindowScale = 9
        info.rto = 201_000; info.sendMSS = 1448; info.receiveMSS = 1460; info.unacked = 12
        info.pmtu = 1500; info.rtt = 345; info.rttVariation = 67; info.sendSlowStartThreshold = 88
        info.sendCongestionWindow = 99; info.advertisedMSS = 1460; info.reordering = 3; info.totalRetransmissions = 5
        var c = tcp_info()
        withUnsafeMutableBytes(of: &c) { _ = info.emit(into: $0) }
        #expect(c.tcpi_state == 1 && c.tcpi_ca_state == 3 && c.tcpi_retransmits == 2 && c.tcpi_options == 7)
        #expect(c.tcpi_snd_wscale == 7 && c.tcpi_rcv_wscale == 9)
        #expect(c.tcpi_rto == 201_000 && c.tcpi_snd_mss == 1448 && c.tcpi_rcv_mss == 1460 && c.tcpi_unacked == 12)
        #expect(c.tcpi_pmtu == 1500 && c.tcpi_rtt == 345 && c.tcpi_rttvar == 67 && c.tcpi_snd_ssthresh == 88)
        #expect(c.tcpi_snd_cwnd == 99 && c.tcpi_advmss == 1460 && c.tcpi_reordering == 3 && c.tcpi_total_retrans == 5)
    }

    /// Filled from a live engine: state, options and MSS as negotiated.
    @Test func filledFromEngine() {
        var c = Connection.connect(FourTuple(local: Endpoint(.init(10, 0, 0, 1), 1), remote: Endpoint(.init(10, 0, 0, 2), 2)),
                                   iss: SequenceNumber(1), now: .zero)
        _ = c.nextSegment(now: .zero)
        var options = TCPOptionsFixture.synAck
        options.timestamp = (5, 0)
        let synAck = TCPSegmentHeader(sourcePort: 2, destinationPort: 1, sequenceNumber: 100, acknowledgmentNumber: 2,
                                      flags: [.syn, .ack], window: 1000, options: options)
        _ = c.handle(synAck, payloadLength: 0, now: .zero)
        let info = c.info
        // The peer's 1400 less the timestamp option every segment carries, as Linux's mss_cache.
        #expect(info.state == 1 && info.sendMSS == 1388)
        #expect(info.options == TCPInfo.optionTimestamps | TCPInfo.optionSACK | TCPInfo.optionWindowScale)
        #expect(info.sendCongestionWindow == 10 && info.rto > 0)
    }
}

enum TCPOptionsFixture {
    static var synAck: TCPOptions {
        var o = TCPOptions()
        o.maximumSegmentSize = 1400
        o.windowScale = 7
        o.sackPermitted = true
        return o
    }
}
