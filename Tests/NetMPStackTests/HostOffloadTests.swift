import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// Records frames with the offload they ask for, as the TAP queue would get them.
struct OffloadRecordingSink: FrameSink {
    var frames: [(bytes: [UInt8], offload: FrameOffload)] = []
    mutating func transmit(_ frame: UnsafeRawBufferPointer) { frames.append((Array(frame), .none)) }
    mutating func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload) {
        frames.append((Array(UnsafeRawBufferPointer(frame)), offload))
    }
}

/// Records what a link that writes with a gather list gets: the headers, and the payload
/// left where it lay.
struct GatheringSink: FrameSink {
    var frames: [(headers: [UInt8], payload: [UInt8], firstPiece: UnsafeRawPointer?, offload: FrameOffload)] = []
    mutating func transmit(_ frame: UnsafeRawBufferPointer) { frames.append((Array(frame), [], nil, .none)) }
    mutating func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload) {
        frames.append((Array(UnsafeRawBufferPointer(frame)), [], nil, offload))
    }
    mutating func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload, payload: PayloadSpans) {
        let headers = Array(UnsafeRawBufferPointer(rebasing: frame[0..<(frame.count - payload.count)]))
        frames.append((headers, Array(payload.first) + Array(payload.second), payload.first.baseAddress, offload))
    }
}

/// The host over a link that offloads checksums and TCP segmentation (a TAP with
/// TUNSETOFFLOAD): super-segments leave as one frame, arrive as one, and the checksums the
/// link vouches for are not summed again.
@Suite struct HostOffloadTests {
    /// `host` over a link that offloads checksums and segmentation, with TCP that sends
    /// super-segments.
    func offloadingHost(_ host: Host = Lab.host()) -> Host {
        host.offloads = LinkOffloads(checksum: true, tcpSegmentation: true)
        var tcp = TCPConfiguration()
        tcp.segmentationLimit = TCPConfiguration.superSegmentLimit
        host.tcp = TCPEndpoints(configuration: tcp, secret: (1, 2))
        return host
    }

    /// A connection to the peer, established through the host.
    func established(_ host: Host) throws -> TCPSocket {
        _ = host.feed(Lab.arp(.request)) // the peer is resolved
        var sink = OffloadRecordingSink()
        let socket = try host.tcp!.connect(from: IPAddress(Lab.us), to: Endpoint(Lab.peer, 5201), now: .zero)
        host.tcp!.settle(socket, now: .zero, host: host, sink: &sink)
        var options = TCPOptions()
        options.maximumSegmentSize = 1460
        let synAck = TCPSegmentHeader(sourcePort: 5201, destinationPort: socket.tuple.local.port, sequenceNumber: 7000,
                                      acknowledgmentNumber: socket.connection.initialSendSequence.raw &+ 1,
                                      flags: [.syn, .ack], window: 65_535, options: options)
        _ = host.feed(Lab.ipv4(proto: IPProtocol.tcp, payloadLength: synAck.headerLength) { out in
            synAck.emit(into: out, segmentLength: synAck.headerLength, source: Lab.peer, destination: Lab.us)
        })
        #expect(socket.state == .established)
        return socket
    }

    @Test func bulkWrite_leavesAsSuperSegment_cutIntoValidWireSegments() throws {
        let host = offloadingHost()
        let socket = try established(host)
        let data = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(data.withUnsafeBytes { socket.write($0) } == data.count)
        var sink = OffloadRecordingSink()
        let framesBefore = host.counters.framesOut
        host.tcp!.settle(socket, now: .zero, host: host, sink: &sink)
        // The initial window, ten segments of 1460, in one frame that asks for segmentation.
        #expect(sink.frames.count == 1)
        var (bytes, offload) = try #require(sink.frames.first)
        #expect(bytes.count == 14 + 20 + 20 + 10 * 1460)
        #expect(offload == FrameOffload(checksumStart: 34, checksumOffset: 16, segmentSize: 1460, headerLength: 54))
        #expect(host.counters.framesOut - framesBefore == 10 && host.counters.superFramesOut == 1)
        // Cut as the kernel would: ten frames, each with valid checksums, in sequence.
        var wire: [[UInt8]] = []
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 54 + 1460, alignment: 16)
        defer { scratch.deallocate() }
        bytes.withUnsafeMutableBytes { offload.complete($0, scratch: scratch) { wire.append(Array($0)) } }
        #expect(wire.count == 10)
        var expected = socket.connection.initialSendSequence.raw &+ 1
        var payload: [UInt8] = []
        for (i, frame) in wire.enumerated() {
            let sent = try Sent(frame)
            let tcp = try sent.tcp() // verifies the TCP checksum
            let ip = try sent.ip()
            #expect(tcp.sequenceNumber == expected && ip.totalLength == 20 + 20 + 1460)
            #expect(tcp.flags == .ack, "segment \(i): more data follows, so no PSH")
            expected &+= 1460
            payload += try sent.ipPayload()[20...]
        }
        #expect(payload == Array(data[0..<(10 * 1460)]))
    }

    /// With checksum offload a segment's payload is not copied behind its headers: the link
    /// gets it where it lies in the socket's send ring, and the two make the frame the
    /// copying path made.
    @Test func bulkWrite_payloadLeftInSendRing_linkGathersTheSameFrame() throws {
        let host = offloadingHost()
        let socket = try established(host)
        let data = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        #expect(data.withUnsafeBytes { socket.write($0) } == data.count)
        var sink = GatheringSink()
        host.tcp!.settle(socket, now: .zero, host: host, sink: &sink)
        #expect(sink.frames.count == 1)
        let (headers, payload, firstPiece, offload) = try #require(sink.frames.first)
        #expect(headers.count == 14 + 20 + 20 && payload == Array(data[0..<(10 * 1460)]))
        #expect(firstPiece == socket.channel.send.spans(from: 0, count: 1).first.baseAddress, "not a copy: the ring's own bytes")
        #expect(offload == FrameOffload(checksumStart: 34, checksumOffset: 16, segmentSize: 1460, headerLength: 54))
        // The same frame a sink that needs it whole gets (the copying path).
        let other = offloadingHost()
        let twin = try established(other)
        #expect(data.withUnsafeBytes { twin.write($0) } == data.count)
        var whole = OffloadRecordingSink()
        other.tcp!.settle(twin, now: .zero, host: other, sink: &whole)
        #expect(whole.frames.count == 1 && whole.frames.first?.bytes == headers + payload)
    }

    /// A payload left in place goes into the frame where the frame must be whole: one that
    /// waits for its next hop, and one to our own address.
    @Test func payloadInPlace_queuedForNeighbourOrLoopedBack_isPutIntoTheFrame() throws {
        let data = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 5 &+ 1) }
        let request = FrameOffload(checksumOffset: 16, segmentSize: 1000, headerLength: 20)
        func send(_ host: Host, to destination: IPv4Address, sink: inout GatheringSink) -> Result<Void, SendError> {
            data.withUnsafeBytes { bytes in
                host.sendIPv4(to: destination, proto: IPProtocol.tcp, payloadLength: 20 + data.count, now: .zero, sink: &sink,
                              offload: request, payload: PayloadSpans(bytes)) { out in
                    TCPSegmentHeader(sourcePort: 1, destinationPort: 2, sequenceNumber: 1, acknowledgmentNumber: 0, flags: .ack, window: 1)
                        .emit(into: out, segmentLength: 20 + data.count, source: Lab.us, destination: destination, partialChecksum: true)
                }
            }
        }
        let host = offloadingHost()
        var sink = GatheringSink()
        guard case .success = send(host, to: Lab.peer, sink: &sink) else { Issue.record("not sent"); return }
        #expect(sink.frames.count == 1 && sink.frames[0].offload == .none) // the ARP request
        sink.frames = []
        Lab.arp(.reply, asking: Lab.us, to: Lab.ourMAC, targetMAC: Lab.ourMAC).withUnsafeBytes {
            host.receive(frame: $0, now: .zero, sink: &sink)
        }
        let queued = try #require(sink.frames.first)
        #expect(sink.frames.count == 1 && queued.payload.isEmpty && Array(queued.headers.suffix(data.count)) == data)
        // Once resolved, the next one is gathered.
        guard case .success = send(host, to: Lab.peer, sink: &sink) else { Issue.record("not sent"); return }
        #expect(sink.frames.count == 2 && sink.frames[1].payload == data && sink.frames[1].headers.count == 54)

        let looping = offloadingHost()
        var none = GatheringSink()
        guard case .success = send(looping, to: Lab.us, sink: &none) else { Issue.record("not looped"); return }
        var looped: [[UInt8]] = []
        _ = looping.takeLoopedFrames { frame, _ in looped.append(Array(frame)) }
        #expect(none.frames.isEmpty && looped.count == 1 && Array(looped[0].suffix(data.count)) == data)
    }

    /// A frame that waits for its next hop keeps its offload request.
    @Test func frameWaitingForNeighbour_keepsOffloadRequest() throws {
        let host = offloadingHost()
        var sink = OffloadRecordingSink()
        let request = FrameOffload(checksumOffset: 16, segmentSize: 1000, headerLength: 20)
        let result = host.sendIPv4(to: Lab.peer, proto: IPProtocol.tcp, payloadLength: 20 + 5000, now: .zero, sink: &sink,
                                   offload: request) { out in
            TCPSegmentHeader(sourcePort: 1, destinationPort: 2, sequenceNumber: 1, acknowledgmentNumber: 0, flags: .ack, window: 1)
                .emit(into: out, segmentLength: 20 + 5000, source: Lab.us, destination: Lab.peer, partialChecksum: true)
        }
        guard case .success = result else { Issue.record("\(result)"); return }
        #expect(sink.frames.count == 1 && sink.frames[0].offload == .none) // the ARP request
        sink.frames = []
        Lab.arp(.reply, asking: Lab.us, to: Lab.ourMAC, targetMAC: Lab.ourMAC).withUnsafeBytes {
            host.receive(frame: $0, now: .zero, sink: &sink)
        }
        #expect(sink.frames.count == 1)
        #expect(sink.frames.first?.offload == FrameOffload(checksumStart: 34, checksumOffset: 16, segmentSize: 1000, headerLength: 54))
    }

    /// Without segmentation offload a frame over the MTU is refused, as before.
    @Test func superSegment_withoutLinkSegmentation_refused() {
        let host = Lab.host()
        _ = host.feed(Lab.arp(.request))
        var sink = OffloadRecordingSink()
        let result = host.sendIPv4(to: Lab.peer, proto: IPProtocol.tcp, payloadLength: 5000, now: .zero, sink: &sink,
                                   offload: FrameOffload(checksumOffset: 16, segmentSize: 1000, headerLength: 20)) { _ in }
        guard case .failure(.tooLarge) = result else { Issue.record("\(result)"); return }
        #expect(sink.frames.isEmpty && host.counters.drops[.frameTooLarge] == 1)
    }

    /// A checksum the link vouched for (the kernel's NEEDS_CSUM or DATA_VALID) is not summed
    /// again; the same frame without the mark is verified and dropped.
    @Test func trustedMark_skipsChecksum_unmarkedFrameVerified() throws {
        let host = Lab.host()
        host.tcp = TCPEndpoints(configuration: TCPConfiguration(), secret: (1, 2))
        _ = host.feed(Lab.arp(.request))
        try host.tcp!.listen(port: 80)
        var options = TCPOptions()
        options.maximumSegmentSize = 1460
        let syn = TCPSegmentHeader(sourcePort: 40000, destinationPort: 80, sequenceNumber: 1, acknowledgmentNumber: 0,
                                   flags: .syn, window: 65_535, options: options)
        // The checksum field holds only the pseudo-header sum, as the kernel leaves it.
        let frame = Lab.ipv4(proto: IPProtocol.tcp, payloadLength: syn.headerLength) { out in
            syn.emit(into: out, segmentLength: syn.headerLength, source: Lab.peer, destination: Lab.us, partialChecksum: true)
        }
        #expect(host.feed(frame).isEmpty)
        #expect(host.counters.drops[.tcpBadChecksum] == 1)
        var sink = OffloadRecordingSink()
        frame.withUnsafeBytes { host.receive(frame: $0, marks: ArrivalMarks(checksumsTrusted: true), now: .zero, sink: &sink) }
        #expect(try sink.frames.count == 1 && Sent(sink.frames[0].bytes).tcp().flags == [.syn, .ack])
    }
}

/// The host's side of a peer that still holds an earlier connection of the 4-tuple in
/// TIME-WAIT: its ACK draws our RST and, in the same batch, the SYN again.
@Suite struct HostStaleAckTests {
    @Test func synSent_staleAckInBatch_resetThenSyn() throws {
        let host = Lab.host()
        host.tcp = TCPEndpoints(configuration: TCPConfiguration(), secret: (1, 2))
        _ = host.feed(Lab.arp(.request))
        var sink = CollectingSink()
        let socket = try host.tcp!.connect(from: IPAddress(Lab.us), to: Endpoint(Lab.peer, 5201), now: .zero)
        host.tcp!.settle(socket, now: .zero, host: host, sink: &sink)
        #expect(sink.frames.count == 1)
        sink.frames = []
        let stale = TCPSegmentHeader(sourcePort: 5201, destinationPort: socket.tuple.local.port, sequenceNumber: 9,
                                     acknowledgmentNumber: 77, flags: .ack, window: 100)
        let frame = Lab.ipv4(proto: IPProtocol.tcp, payloadLength: 20) { out in
            stale.emit(into: out, segmentLength: 20, source: Lab.peer, destination: Lab.us)
        }
        host.tcp!.beginBatch()
        frame.withUnsafeBytes { host.receive(frame: $0, now: .zero, sink: &sink) }
        host.tcp!.endBatch(now: .zero, host: host, sink: &sink)
        let flags = try sink.frames.map { try Sent($0).tcp().flags }
        #expect(flags == [.rst, .syn])
    }

    /// The same over IPv6: one frame asking for GSO_UDP_L4 from our IPv6 address, cut into
    /// whole datagrams whose payload lengths and checksums (over IPv6's pseudo-header) hold.
    @Test func datagramRunOverIPv6_leavesAsOneFrame_cutIntoValidDatagrams() throws {
        let host = Lab6.host()
        host.offloads = LinkOffloads(checksum: true, tcpSegmentation: true, udpSegmentation: true, tcpSegmentation6: true)
        _ = host.feed(Lab6.solicitation(for: Lab6.us)) // the peer is resolved
        var sink = OffloadRecordingSink()
        let count = 5, each = 1000
        let result = host.sendUDP(from: 4000, to: Endpoint(Lab6.peer, 9000), datagrams: count, each: each, now: .zero,
                                  sink: &sink) { out in
            for i in 0..<out.count { out[i] = UInt8(truncatingIfNeeded: i / each &+ 0x41) }
        }
        guard case .success = result else { Issue.record("send failed: \(result)"); return }
        var (bytes, offload) = try #require(sink.frames.first)
        #expect(sink.frames.count == 1 && bytes.count == 14 + 40 + 8 + count * each)
        #expect(offload == FrameOffload(checksumStart: 54, checksumOffset: 6, segmentSize: each, headerLength: 62,
                                        datagrams: true, ipv6: true))
        var cut: [[UInt8]] = []
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 62 + each, alignment: 16)
        defer { scratch.deallocate() }
        bytes.withUnsafeMutableBytes { frame in offload.complete(frame, scratch: scratch) { cut.append(Array($0)) } }
        #expect(cut.count == count)
        for (i, datagram) in cut.enumerated() {
            try datagram.withUnsafeBytes { raw in
                let ip = try IPv6Header(parsing: UnsafeRawBufferPointer(rebasing: raw[14...]))
                #expect(ip.payloadLength == 8 + each && ip.source == Lab6.us && ip.destination == Lab6.peer)
                let udp = try UDPHeader(parsing: UnsafeRawBufferPointer(rebasing: raw[54...]),
                                        addresses: .v6(source: Lab6.us, destination: Lab6.peer))
                #expect(udp.datagramLength == 8 + each && udp.destinationPort == 9000)
                #expect(raw[62...].allSatisfy { $0 == UInt8(0x41 + i) })
            }
        }
    }

    /// A run of equal datagrams to one destination leaves as one frame asking for UDP
    /// segmentation (GSO_UDP_L4); cut as the kernel would, every datagram is whole and its
    /// IP and UDP checksums valid, with consecutive identifications.
    @Test func datagramRun_leavesAsOneFrame_cutIntoValidDatagrams() throws {
        let host = Lab.host()
        host.offloads = LinkOffloads(checksum: true, tcpSegmentation: true, udpSegmentation: true)
        _ = host.feed(Lab.arp(.request)) // the peer is resolved
        var sink = OffloadRecordingSink()
        let count = 5, each = 1000
        let result = host.sendUDP(from: 4000, to: Endpoint(Lab.peer, 9000), datagrams: count, each: each, now: .zero,
                                  sink: &sink) { out in
            for i in 0..<out.count { out[i] = UInt8(truncatingIfNeeded: i / each &+ 0x41) }
        }
        guard case .success = result else { Issue.record("send failed: \(result)"); return }
        #expect(sink.frames.count == 1)
        var (bytes, offload) = try #require(sink.frames.first)
        #expect(bytes.count == 14 + 20 + 8 + count * each)
        #expect(offload == FrameOffload(checksumStart: 34, checksumOffset: 6, segmentSize: each, headerLength: 42, datagrams: true))
        #expect(host.counters.superFramesOut == 1)
        var cut: [[UInt8]] = []
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 42 + each, alignment: 16)
        defer { scratch.deallocate() }
        bytes.withUnsafeMutableBytes { frame in offload.complete(frame, scratch: scratch) { cut.append(Array($0)) } }
        #expect(cut.count == count)
        var identification: UInt16? = nil
        for (i, datagram) in cut.enumerated() {
            try datagram.withUnsafeBytes { raw in
                let ip = try IPv4Header(parsing: UnsafeRawBufferPointer(rebasing: raw[14...]))
                #expect(ip.totalLength == 20 + 8 + each)
                if let previous = identification { #expect(ip.identification == previous &+ 1) }
                identification = ip.identification
                let udp = try UDPHeader(parsing: UnsafeRawBufferPointer(rebasing: raw[34...]), source: Lab.us, destination: Lab.peer)
                #expect(udp.datagramLength == 8 + each && udp.destinationPort == 9000)
                #expect(raw[42...].allSatisfy { $0 == UInt8(0x41 + i) })
            }
        }
        // The kernel's __udp_gso_segment keeps the frame's partial sum and swaps the run's
        // UDP length in it for each datagram's (csum16_sub, csum16_add); each datagram's sum
        // is then finished over its own bytes. The same arithmetic here checks the partial
        // sum netmp wrote (the software cut above recomputes every sum from scratch).
        func add(_ a: UInt16, _ b: UInt16) -> UInt16 {
            let sum = UInt32(a) + UInt32(b)
            return UInt16((sum & 0xFFFF) + (sum >> 16))
        }
        let partial = UInt16(bytes[40]) << 8 | UInt16(bytes[41])
        let perDatagram = add(add(partial, ~UInt16(8 + count * each)), UInt16(8 + each))
        for datagram in cut {
            var kernelCut = datagram
            kernelCut[40] = UInt8(perDatagram >> 8)
            kernelCut[41] = UInt8(perDatagram & 0xFF)
            kernelCut.withUnsafeMutableBytes { FrameOffload.finishChecksum($0, start: 34, offset: 6) }
            #expect(kernelCut == datagram, "the kernel's adjusted sum differs from a whole one")
        }
    }

    /// One datagram is one frame with only the checksum left to the link.
    @Test func singleDatagram_checksumOffloadOnly() throws {
        let host = Lab.host()
        host.offloads = LinkOffloads(checksum: true, tcpSegmentation: true, udpSegmentation: true)
        _ = host.feed(Lab.arp(.request))
        var sink = OffloadRecordingSink()
        _ = host.sendUDP(from: 4000, to: Endpoint(Lab.peer, 9000), length: 300, now: .zero, sink: &sink) { out in
            for i in 0..<out.count { out[i] = UInt8(truncatingIfNeeded: i) }
        }
        var (bytes, offload) = try #require(sink.frames.first)
        #expect(offload == FrameOffload(checksumStart: 34, checksumOffset: 6, headerLength: 42))
        bytes.withUnsafeMutableBytes { FrameOffload.finishChecksum($0, start: 34, offset: 6) }
        try bytes.withUnsafeBytes { raw in
            _ = try UDPHeader(parsing: UnsafeRawBufferPointer(rebasing: raw[34...]), source: Lab.us, destination: Lab.peer)
        }
    }
}
