import CNetMPChannel
import Glibc
import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// TCP through the host: demultiplexing, listeners, ICMP errors, SYN floods.
@Suite struct HostTCPTests {
    func host() -> Host {
        let host = Lab.host()
        host.tcp = TCPEndpoints(configuration: TCPConfiguration(), secret: (1, 2))
        _ = host.feed(Lab.arp(.request)) // the peer is resolved
        return host
    }

    func syn(from port: UInt16, to listening: UInt16 = 80, seq: UInt32 = 1000) -> [UInt8] {
        var options = TCPOptions()
        options.maximumSegmentSize = 1460
        let header = TCPSegmentHeader(sourcePort: port, destinationPort: listening, sequenceNumber: seq,
                                      acknowledgmentNumber: 0, flags: .syn, window: 65535, options: options)
        return Lab.ipv4(proto: IPProtocol.tcp, payloadLength: header.headerLength) { out in
            header.emit(into: out, segmentLength: header.headerLength, source: Lab.peer, destination: Lab.us)
        }
    }

    /// RFC 9293 3.10.7.2: a SYN to a listener gets a SYN-ACK; the third ACK puts the
    /// connection on the accept queue.
    @Test func listener_handshake_thenAccept() throws {
        let host = host()
        try host.tcp!.listen(port: 80)
        let out = host.feed(syn(from: 40000))
        let synAck = try Sent(out[0]).tcp()
        #expect(synAck.flags == [.syn, .ack] && synAck.acknowledgmentNumber == 1001)
        #expect(host.tcp!.accept(port: 80) == nil)
        let ack = TCPSegmentHeader(sourcePort: 40000, destinationPort: 80, sequenceNumber: 1001,
                                   acknowledgmentNumber: synAck.sequenceNumber &+ 1, flags: .ack, window: 65535)
        _ = host.feed(Lab.ipv4(proto: IPProtocol.tcp, payloadLength: 20) { out in
            ack.emit(into: out, segmentLength: 20, source: Lab.peer, destination: Lab.us)
        })
        let accepted = try #require(host.tcp!.accept(port: 80))
        #expect(accepted.state == .established && accepted.tuple.remote == Endpoint(Lab.peer, 40000))
    }

    /// TCP_DEFER_ACCEPT: an established connection reaches the accept queue when its first
    /// data arrives, or once the deferral passes without any; a listener that does not
    /// defer hands over at the third ACK.
    @Test func deferAccept_holdsConnectionsUntilDataOrItsTime() throws {
        let host = host()
        var deferral: Interval? = .seconds(3)
        try host.tcp!.listen(port: 80, acceptDeferral: { deferral })
        func segment(from port: UInt16, _ flags: TCPFlags, ack: UInt32, payload: [UInt8] = []) -> [UInt8] {
            let header = TCPSegmentHeader(sourcePort: port, destinationPort: 80, sequenceNumber: 1001,
                                          acknowledgmentNumber: ack, flags: flags, window: 65535)
            return Lab.ipv4(proto: IPProtocol.tcp, payloadLength: 20 + payload.count) { out in
                for (i, byte) in payload.enumerated() { out[20 + i] = byte } // the payload first, then the sum over it
                header.emit(into: out, segmentLength: 20 + payload.count, source: Lab.peer, destination: Lab.us)
            }
        }
        let t0 = Instant(nanoseconds: 1_000_000_000)
        // One connection brings data after its handshake, one brings none.
        let withData = try Sent(host.feed(syn(from: 40001), now: t0)[0]).tcp()
        let without = try Sent(host.feed(syn(from: 40002), now: t0)[0]).tcp()
        _ = host.feed(segment(from: 40001, .ack, ack: withData.sequenceNumber &+ 1), now: t0)
        _ = host.feed(segment(from: 40002, .ack, ack: without.sequenceNumber &+ 1), now: t0)
        #expect(host.tcp!.accept(port: 80) == nil, "handed over before data or its time")
        _ = host.feed(segment(from: 40001, [.ack, .psh], ack: withData.sequenceNumber &+ 1, payload: Array("GET /".utf8)),
                      now: t0 + .milliseconds(500))
        let first = try #require(host.tcp!.accept(port: 80))
        #expect(first.tuple.remote.port == 40001 && first.readable == 5)
        var sink = CollectingSink()
        host.tick(now: t0 + .milliseconds(2900), sink: &sink)
        #expect(host.tcp!.accept(port: 80) == nil)
        host.tick(now: t0 + .seconds(3), sink: &sink)
        let second = try #require(host.tcp!.accept(port: 80), "never handed over without data")
        #expect(second.tuple.remote.port == 40002 && second.readable == 0)

        // Turned off while listening: the next connection is handed over at once.
        deferral = nil
        let third = try Sent(host.feed(syn(from: 40003), now: t0)[0]).tcp()
        _ = host.feed(segment(from: 40003, .ack, ack: third.sequenceNumber &+ 1), now: t0)
        #expect(host.tcp!.accept(port: 80)?.tuple.remote.port == 40003)
    }

    /// A connection the application closed keeps only its control block in TIME-WAIT: the
    /// rings go back at once (to the ring cache), and the connection still answers a
    /// retransmitted FIN as TIME-WAIT must (RFC 9293 3.10.7.4).
    @Test func timeWaitAfterClose_givesTheRingsBack() throws {
        let host = host()
        try host.tcp!.listen(port: 80)
        let synAck = try Sent(host.feed(syn(from: 40000))[0]).tcp()
        func segment(_ flags: TCPFlags, ack: UInt32) -> [UInt8] {
            let header = TCPSegmentHeader(sourcePort: 40000, destinationPort: 80, sequenceNumber: 1001,
                                          acknowledgmentNumber: ack, flags: flags, window: 65535)
            return Lab.ipv4(proto: IPProtocol.tcp, payloadLength: 20) { out in
                header.emit(into: out, segmentLength: 20, source: Lab.peer, destination: Lab.us)
            }
        }
        _ = host.feed(segment(.ack, ack: synAck.sequenceNumber &+ 1))
        var accepted = host.tcp!.accept(port: 80)
        try #require(accepted != nil)
        weak let receiveRing = accepted!.channel.receive
        weak let sendRing = accepted!.channel.send
        var sink = CollectingSink()
        accepted!.close(now: .zero)
        host.tcp!.settle(accepted!, now: .zero, host: host, sink: &sink)
        #expect(try Sent(try #require(sink.frames.last)).tcp().flags.contains(.fin))
        accepted = nil
        // The peer acknowledges our FIN and sends its own: TIME-WAIT.
        let fin = segment([.fin, .ack], ack: synAck.sequenceNumber &+ 2)
        #expect(host.feed(fin).count == 1)
        let tuple = FourTuple(local: Endpoint(Lab.us, 80), remote: Endpoint(Lab.peer, 40000))
        let quiet = try #require(host.tcp!.sockets[tuple])
        #expect(quiet.state == .timeWait)
        #expect(receiveRing == nil && sendRing == nil, "the rings are still held")
        #expect(quiet.channel.receive.capacity == 0 && quiet.channel.send.capacity == 0)
        let answer = host.feed(fin)
        #expect(answer.count == 1)
        #expect(try answer.first.map { try Sent($0).tcp().acknowledgmentNumber } == 1002)
    }

    /// A bounded SYN queue: past the backlog, SYNs are dropped and counted, so a flood costs
    /// at most `backlog` control blocks.
    @Test func synFlood_boundedByBacklog_dropsCounted() throws {
        let host = host()
        try host.tcp!.listen(port: 80, backlog: 16)
        var answered = 0
        for port in UInt16(20000)..<21000 { answered += host.feed(syn(from: port)).count }
        #expect(answered == 16)
        #expect(host.tcp!.sockets.count == 16)
        #expect(host.counters.drops[.tcpListenOverflow] == 984)
    }

    /// An active open to the peer's `port`, its SYN sent: the socket and the frames it sent.
    func connect(_ host: Host, to port: UInt16, channel: SocketChannel? = nil) throws -> (TCPSocket, CollectingSink) {
        let socket = try host.tcp!.connect(from: IPAddress(Lab.us), to: Endpoint(Lab.peer, port), now: .zero, channel: channel)
        var frames = CollectingSink()
        host.tcp!.settle(socket, now: .zero, host: host, sink: &frames)
        return (socket, frames)
    }

    /// The peer's SYN-ACK to `socket`'s SYN (sequence numbers from the SYN the socket sent).
    func answerSYN(_ host: Host, _ socket: TCPSocket, options: TCPOptions = TCPOptions()) throws {
        let synSeq = socket.connection.initialSendSequence.raw
        let synAck = TCPSegmentHeader(sourcePort: socket.tuple.remote.port, destinationPort: socket.tuple.local.port,
                                      sequenceNumber: 77, acknowledgmentNumber: synSeq &+ 1, flags: [.syn, .ack],
                                      window: 65535, options: options)
        _ = host.feed(Lab.ipv4(proto: IPProtocol.tcp, payloadLength: synAck.headerLength) { out in
            synAck.emit(into: out, segmentLength: synAck.headerLength, source: Lab.peer, destination: Lab.us)
        })
    }

    /// TCP_CORK set by the application is in force for the bytes it writes next, before
    /// any set-option record reaches the owner: the owner reads the slot's output options
    /// whenever it looks at the socket (a frame for the connection may make it look first).
    @Test func outputOptionsInTheSlot_governTheNextWrite() throws {
        let host = host()
        let channel = SocketChannel(sendCapacity: 4096, receiveCapacity: 4096)
        let (socket, _) = try connect(host, to: 5203, channel: channel)
        try answerSYN(host, socket)
        #expect(socket.state == .established)
        channel.setOutputOption(NETMP_OUTPUT_CORK, true)
        #expect([UInt8](repeating: 1, count: 10).withUnsafeBytes { channel.send.write($0) } == 10)
        var corked = CollectingSink()
        host.tcp!.settle(socket, now: .zero, host: host, sink: &corked)
        #expect(corked.frames.allSatisfy { (try? Sent($0).ipPayload().count) ?? 0 <= 20 }, "a corked small write went out")
        #expect(socket.connection.configuration.cork)
        channel.setOutputOption(NETMP_OUTPUT_CORK, false)
        var uncorked = CollectingSink()
        host.tcp!.settle(socket, now: .zero, host: host, sink: &uncorked)
        #expect(uncorked.frames.contains { (try? Sent($0).ipPayload().count) == 20 + 10 })
    }

    /// RFC 1122 4.2.3.9: port unreachable for a connecting socket ends it with ECONNREFUSED;
    /// fragmentation needed (RFC 1191) lowers an established connection's MSS.
    @Test func icmpErrors_reachTheConnection() throws {
        let host = host()
        let channel = SocketChannel(sendCapacity: 4096, receiveCapacity: 4096)
        let socket = try host.tcp!.connect(from: IPAddress(Lab.us), to: Endpoint(Lab.peer, 5201), now: .zero, channel: channel)
        var sink = CollectingSink()
        host.tcp!.settle(socket, now: .zero, host: host, sink: &sink)
        let sentSYN = sink.frames[0]
        let unreachable = Lab.ipv4(proto: IPProtocol.icmp, payloadLength: 8 + 48) { out in
            _ = Array(sentSYN[14...]).withUnsafeBytes {
                ICMPv4Message.emitError(type: 3, code: 3, original: UnsafeRawBufferPointer(rebasing: $0[0..<48]), into: out)
            }
        }
        _ = host.feed(unreachable)
        #expect(socket.state == .closed && socket.error == .connectionRefused)
        // Published with the frame that carried the error, not at the next timer: the
        // application's connect fails at once, as Linux's does.
        #expect(channel.status.contains(.failed) && channel.error == ECONNREFUSED)
        #expect(host.tcp!.sockets[socket.tuple] == nil)

        let (second, frames) = try connect(host, to: 5202)
        var options = TCPOptions()
        options.maximumSegmentSize = 1460
        try answerSYN(host, second, options: options)
        #expect(second.state == .established && second.connection.sendMSS == 1460)
        let fragNeeded = Lab.ipv4(proto: IPProtocol.icmp, payloadLength: 8 + 48, from: Lab.gateway) { out in
            _ = Array(frames.frames[0][14...]).withUnsafeBytes {
                ICMPv4Message.emitError(type: 3, code: 4, nextHopMTU: 1280, original: UnsafeRawBufferPointer(rebasing: $0[0..<48]), into: out)
            }
        }
        _ = host.feed(fragNeeded)
        #expect(second.connection.sendMSS == 1240)
    }

    /// Segments to a port nobody listens on still get RST, and the drop is counted.
    @Test func noListener_reset() throws {
        let host = host()
        let out = host.feed(syn(from: 40000, to: 81))
        #expect(try Sent(out[0]).tcp().flags == [.rst, .ack])
        #expect(host.counters.drops[.tcpNoSocket] == 1)
    }
}
