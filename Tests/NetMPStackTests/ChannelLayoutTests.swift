import CNetMPChannel
import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// The rings keep their state in the C layout of netmp_channel.h, the one definition a
/// process on the other side of the stack-service boundary will read: the offsets Swift
/// sees are the ones the header asserts, and a ring's positions are found there.
@Suite struct ChannelLayoutTests {
    @Test func swiftSeesTheHeadersOffsets() {
        #expect(MemoryLayout<netmp_wait_word>.size == 8)
        #expect(MemoryLayout<netmp_send_ring>.size == 128)
        #expect(MemoryLayout<netmp_send_ring>.offset(of: \.reserved) == 0)
        #expect(MemoryLayout<netmp_send_ring>.offset(of: \.committed) == 8)
        #expect(MemoryLayout<netmp_send_ring>.offset(of: \.limit) == 16)
        #expect(MemoryLayout<netmp_send_ring>.offset(of: \.released) == 64)
        #expect(MemoryLayout<netmp_send_ring>.offset(of: \.writers) == 72)
        #expect(MemoryLayout<netmp_receive_ring>.size == 128)
        #expect(MemoryLayout<netmp_receive_ring>.offset(of: \.tail) == 0)
        #expect(MemoryLayout<netmp_receive_ring>.offset(of: \.end_of_stream) == 8)
        #expect(MemoryLayout<netmp_receive_ring>.offset(of: \.head) == 64)
        #expect(MemoryLayout<netmp_receive_ring>.offset(of: \.readers) == 72)
    }

    /// Reading the control block as C would: the positions, and the data right after it.
    @Test func ringsKeepTheirPositionsInTheControlBlock() {
        let send = SendRing(capacity: 1 << 16)
        let bytes = [UInt8](repeating: 7, count: 1000)
        #expect(bytes.withUnsafeBytes { send.write($0) } == 1000)
        send.release(300)
        let sendBlock = send.storage.block.load(as: netmp_send_ring.self)
        #expect(sendBlock.reserved == 1000 && sendBlock.committed == 1000 && sendBlock.released == 300)
        #expect(send.storage.bytes.baseAddress == send.storage.block + 128)

        let receive = ReceiveRing(capacity: 4096)
        bytes.withUnsafeBytes { receive.write(UnsafeRawBufferPointer(rebasing: $0[0..<500]), at: 0) }
        receive.publish(500)
        var out = [UInt8](repeating: 0, count: 200)
        #expect(out.withUnsafeMutableBytes { receive.read(into: $0) } == 200)
        receive.publishEndOfStream()
        let receiveBlock = receive.storage.block.load(as: netmp_receive_ring.self)
        #expect(receiveBlock.tail == 500 && receiveBlock.head == 200 && receiveBlock.end_of_stream == 1)
    }

    /// A usrreq record as C sees it: the fields a Swift sender wrote, where the header puts
    /// them, and the turn that publishes it. A connect carries the socket's options as
    /// numbers, read back into the same configuration.
    @Test func requestRecordAsCReadsIt() {
        #expect(MemoryLayout<netmp_request>.size == 64 && MemoryLayout<netmp_request_ring>.size == 128)
        #expect(MemoryLayout<netmp_socket_entry>.size == 448 && MemoryLayout<netmp_reply>.size == 320)
        let ring = RequestRing(capacity: 2)
        var configuration = TCPConfiguration()
        configuration.noDelay = true
        configuration.keepAlive = true
        configuration.keepAliveIdle = .seconds(30)
        configuration.congestionControl = .bbr
        configuration.maximumSegmentSize = 1200
        var request = Request(.connect, SocketHandle(slot: 5, generation: 9))
        request.remote = Endpoint(IPv4Address(10, 77, 0, 1), 5201)
        request.localPort = 40000
        request.options = ConnectOptions(configuration)
        #expect(ring.send(request))
        let record = ring.recordForTesting(0).load(as: netmp_request.self)
        #expect(record.turn == 1 && record.kind == NETMP_REQUEST_CONNECT && record.slot == 5 && record.generation == 9)
        #expect(record.address == IPv4Address(10, 77, 0, 1).value && record.port == 5201 && record.local_port == 40000)
        #expect(record.flags == 0 && record.options.flags == NETMP_STREAM_NODELAY | NETMP_STREAM_KEEPALIVE)
        #expect(record.options.mss == 1200 && record.options.keep_idle == 30 && UInt32(record.options.congestion) == NETMP_CONGESTION_BBR)
        let received = ring.receive()
        #expect(received == request)
        let rebuilt = received?.options.configuration(from: TCPConfiguration())
        #expect(rebuilt.map(ConnectOptions.init) == ConnectOptions(configuration))
        #expect(rebuilt?.noDelay == true && rebuilt?.keepAliveIdle == .seconds(30) && rebuilt?.congestionControl == .bbr)
        #expect(ring.recordForTesting(0).load(as: netmp_request.self).turn == 2) // free for the next round

        // An IPv6 destination: flagged, its halves over the words a connect leaves unused.
        request.remote = Endpoint(IPv6Address("fd77::1")!, 5201)
        #expect(ring.send(request))
        let v6 = ring.recordForTesting(1).load(as: netmp_request.self)
        #expect(v6.flags & NETMP_REQUEST_FLAG_IPV6 != 0 && v6.port == 5201)
        #expect(UInt64(bitPattern: v6.value) == 0xFD77 << 48 && UInt64(v6.option) | UInt64(v6.reply) << 32 == 1)
        #expect(ring.receive() == request)
    }

    /// What a core refuses in a connect record: values no application's setsockopt allows.
    @Test func connectOptionsOutOfRange_refused() {
        var options = ConnectOptions(TCPConfiguration())
        options.maximumSegmentSize = 40
        #expect(options.configuration(from: TCPConfiguration()) == nil)
        options = ConnectOptions(TCPConfiguration())
        options.receiveBufferSize = UInt32.max
        #expect(options.configuration(from: TCPConfiguration()) == nil)
        options = ConnectOptions(TCPConfiguration())
        options.keepAliveProbes = 0
        #expect(options.configuration(from: TCPConfiguration()) == nil)
    }

    /// TCP_INFO crosses in a reply slot as Linux's struct tcp_info and reads back whole; a
    /// slot nobody asked for takes no answer.
    @Test func replySlot_carriesTCPInfo() {
        let board = ReplyBoard()
        #expect(!board.answer(3) { _ in 0 })
        #expect(!board.answer(UInt32(ReplyBoard.capacity)) { _ in 0 })
        var info = TCPInfo()
        info.state = 1; info.options = 7; info.sendWindowScale = 7; info.receiveWindowScale = 9
        info.sendMSS = 1448; info.rtt = 250; info.sendCongestionWindow = 44; info.bytesAcked = 1 << 40
        info.receiveWindow = 65_535
        let index = board.take()
        #expect(board.take() != index)
        #expect(board.answer(index) { info.emit(into: $0) })
        #expect(board.awaitAnswer(index) { TCPInfo(parsing: $0) } == info)
    }

    /// A stream socket's published state is a netmp_stream_slot: what the owner publishes
    /// and the application raises is there, in the bits the header names.
    @Test func streamSlotHoldsStatusErrorAndOwner() {
        #expect(MemoryLayout<netmp_stream_slot>.size == 128)
        #expect(MemoryLayout<netmp_stream_slot>.offset(of: \.owner) == 8)
        #expect(MemoryLayout<netmp_stream_slot>.offset(of: \.changes) == 24)
        let channel = SocketChannel(sendCapacity: 4096, receiveCapacity: 4096)
        #expect(channel.slot.load(as: netmp_stream_slot.self).owner == -1)
        channel.attach(to: 1)
        channel.publish([.attached, .established])
        channel.raise(.outputRequested)
        channel.publish(.failed, error: 104)
        let slot = channel.slot.load(as: netmp_stream_slot.self)
        #expect(slot.owner == 1 && slot.error == 104)
        #expect(slot.status == NETMP_STATUS_ATTACHED | NETMP_STATUS_ESTABLISHED | NETMP_STATUS_FAILED | NETMP_STATUS_OUTPUT_REQUESTED)
        #expect(channel.takeError() == 104 && channel.slot.load(as: netmp_stream_slot.self).error == 0)
        // The 4-tuple the owner picked, for getsockname without a round trip to it.
        #expect(channel.publishedTuple == nil)
        let tuple = FourTuple(local: Endpoint(IPv4Address(10, 77, 0, 2), 40_001), remote: Endpoint(IPv4Address(10, 77, 0, 1), 80))
        channel.publishTuple(tuple)
        let written = channel.slot.load(as: netmp_stream_slot.self)
        // Addresses as IPv6 halves, IPv4 mapped: ::ffff:10.77.0.2.
        #expect(written.local_address.0 == 0 && written.local_address.1 == 0xFFFF_0A4D_0002 && written.local_port == 40_001)
        #expect(written.remote_address.1 == 0xFFFF_0A4D_0001 && written.remote_port == 80)
        #expect(channel.publishedTuple == tuple)
        let tuple6 = FourTuple(local: Endpoint(IPv6Address("fd77::2")!, 40_002), remote: Endpoint(IPv6Address("fd77::1")!, 80))
        channel.publishTuple(tuple6)
        #expect(channel.publishedTuple == tuple6)
    }

    /// A datagram socket: its slot (peer, send request, overflow count, families, bound
    /// address) and each core's record queue, in the header's layout.
    @Test func datagramSlotAndQueues() {
        #expect(MemoryLayout<netmp_datagram_slot>.size == 128)
        #expect(MemoryLayout<netmp_record_queue>.size == 128 && MemoryLayout<netmp_record_queue>.offset(of: \.head) == 64)
        let bound = IPAddress(IPv6Address("fd77::2")!)
        let channel = DatagramChannel(port: 5000, cores: 2, homeCore: 0, families: .ipv6, boundAddress: bound,
                                      queueCapacity: 128, sendCapacity: 4096)
        let peer = Endpoint(IPv6Address("fd77::1")!, 53)
        channel.connect(to: peer)
        #expect(channel.requestOutput() && !channel.requestOutput())
        let payload = [UInt8](repeating: 1, count: 40)
        let arrival = DatagramArrival(source: peer, destination: Endpoint(bound, 5000), trafficClass: 0x28, hopLimit: 63,
                                      at: Instant(nanoseconds: 123_456_789))
        #expect(payload.withUnsafeBytes { channel.deliver($0, arrival: arrival, core: 1) })
        #expect(!payload.withUnsafeBytes { channel.deliver($0, arrival: arrival, core: 1) }) // 128 bytes hold one
        let slot = channel.slot.load(as: netmp_datagram_slot.self)
        #expect(slot.peer_version == 2 && slot.peer_port == 1 << 16 | 53)
        #expect(slot.peer_address.0 == peer.address.bits.high && slot.peer_address.1 == peer.address.bits.low)
        #expect(slot.families == UInt16(NETMP_FAMILY_IPV6) && slot.bound_address.0 == bound.bits.high && slot.bound_address.1 == bound.bits.low)
        #expect(slot.output_requested == 1 && slot.overflows == 1 && channel.overflows == 1)
        #expect(MemoryLayout<netmp_datagram_record>.size == 56)
        #expect(channel.queues[1].storage.block.load(as: netmp_record_queue.self).tail == 56 + 40)
        var buffer = [UInt8](repeating: 0, count: 100)
        let got = buffer.withUnsafeMutableBytes { channel.receive(into: $0, peek: false) }
        #expect(got?.length == 40 && got?.arrival == arrival) // every field of the record back
        #expect(channel.queues[1].storage.block.load(as: netmp_record_queue.self).head == 56 + 40)
        // A view made from the slot's words reads what bind wrote.
        #expect(channel.families == .ipv6 && channel.boundAddress == bound)
        channel.connect(to: nil)
        #expect(channel.connectedPeer == nil && channel.slot.load(as: netmp_datagram_slot.self).peer_version == 4)
    }

    /// Which datagrams a UDP socket takes: by family, by the address it bound, by its peer
    /// (connected to port 0 too, as Linux allows).
    @Test func datagramSocketTakes_familyBoundAddressPeer() {
        let v4 = Endpoint(IPv4Address(10, 0, 0, 1), 53), v6 = Endpoint(IPv6Address("fd77::1")!, 53)
        let us4 = IPAddress(IPv4Address(10, 0, 0, 2)), us6 = IPAddress(IPv6Address("fd77::2")!)
        let both = DatagramChannel(port: 1, cores: 1, homeCore: 0, families: .both)
        #expect(both.takes(from: v4, to: us4) && both.takes(from: v6, to: us6))
        let only4 = DatagramChannel(port: 1, cores: 1, homeCore: 0)
        #expect(only4.takes(from: v4, to: us4) && !only4.takes(from: v6, to: us6))
        let bound = DatagramChannel(port: 1, cores: 1, homeCore: 0, families: .ipv6, boundAddress: us6)
        #expect(bound.takes(from: v6, to: us6) && !bound.takes(from: v6, to: IPAddress(IPv6Address("fe80::1")!)))
        both.connect(to: Endpoint(v6.address, 0))
        #expect(!both.takes(from: v6, to: us6) && both.takes(from: Endpoint(v6.address, 0), to: us6))
        #expect(both.connectedPeer == Endpoint(v6.address, 0))
    }
}
