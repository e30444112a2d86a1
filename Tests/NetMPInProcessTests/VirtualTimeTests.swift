import Glibc
import NetMPClient
import NetMPInProcess
import NetMPLink
import NetMPStack
import NetMPStackProcess
import NetMPSystem
import NetMPTCP
import NetMPWire
import Synchronization
import Testing

/// Two stacks on one VirtualClock, each core's turn taken by the test and every frame
/// between them carried by the test, which may drop it. Application calls go through the
/// same records and rings as always; only time and order are the test's. A blocking call
/// that waits for a core (bind, listen) runs on a helper thread while the test turns.
final class DrivenPair: @unchecked Sendable {
    let clock = VirtualClock()
    let a: NetworkStack
    let b: NetworkStack
    /// The test's ends of A's and B's queues.
    let wireA: Int32
    let wireB: Int32
    var descriptors: [Int32] = []
    /// Which frames each side's "wire" loses (false: carried).
    var dropFromA: ([UInt8]) -> Bool = { _ in false }
    var dropFromB: ([UInt8]) -> Bool = { _ in false }
    /// Every frame A sent, with the clock's time.
    var sentByA: [(at: Instant, frame: [UInt8])] = []

    init() throws {
        var ends: [Int32] = []
        for _ in 0..<2 {
            var pair: [Int32] = [0, 0]
            let kind = Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            try #require(socketpair(AF_UNIX, kind, 0, &pair) == 0)
            descriptors += pair
            ends += pair
        }
        wireA = ends[1]; wireB = ends[3]
        let configA = StackConfiguration(tapName: "driven-a", address: StackPair.addressA, prefixLength: 24)
        let configB = StackConfiguration(tapName: "driven-b", address: StackPair.addressB, prefixLength: 24)
        a = try NetworkStack.start(configA, queues: [TAPQueue(fd: ends[0], index: 0, virtioHeader: false)],
                                   tcpConfiguration: TCPConfiguration(), log: Log(level: .off), clock: clock)
        b = try NetworkStack.start(configB, queues: [TAPQueue(fd: ends[2], index: 0, virtioHeader: false)],
                                   tcpConfiguration: TCPConfiguration(), log: Log(level: .off), clock: clock)
    }

    func stop() {
        a.stop()
        b.stop()
        descriptors.forEach { _ = close($0) }
    }

    /// Both stacks turn and the frames they sent cross, until nothing more crosses.
    func settle() {
        for _ in 0..<64 {
            a.turn()
            b.turn()
            if carry() == 0 { return }
        }
    }

    /// Moves the clock on by `interval`, in steps of `step`, settling after each.
    func pass(_ interval: Interval, step: Interval = .milliseconds(100)) {
        var left = interval.nanoseconds
        while left > 0 {
            let now = min(left, step.nanoseconds)
            clock.advance(by: Interval(nanoseconds: now))
            left -= now
            settle()
        }
    }

    /// Moves the clock in steps of `step` until `done`, at most `limit`; whether it was.
    func passUntil(_ limit: Interval, step: Interval = .milliseconds(100), _ done: () -> Bool) -> Bool {
        let end = clock.now + limit
        while !done() && clock.now < end { pass(step, step: step) }
        return done()
    }

    /// Runs `call` on a helper thread and turns both stacks until it returns.
    func whileTurning<T: Sendable>(_ call: @escaping @Sendable () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let join = spawnBounded { box.set(Result { try call() }) }
        while box.get() == nil { settle(); usleep(100) }
        _ = join(1)
        return try box.get()!.get()
    }

    /// What a bind of a new socket of A to `port` at A's address says (0: bound), the
    /// socket closed again (its port goes back through a core, which the close waits for).
    func bindOnA(_ port: UInt16) throws -> Int32 {
        let probe = StreamSocket(stack: a)
        defer { try? whileTurning { probe.close() } }
        do {
            try whileTurning { try probe.bind(Endpoint(StackPair.addressA, port)) }
            return 0
        } catch let error as SocketError { return error.errno }
    }

    /// A's `port`, held by a connection that just closed, refuses a bind (EADDRINUSE) now
    /// and 59 s later, and takes one 61 s later: Linux's 60 s of TIME-WAIT and of an
    /// orphan's FIN-WAIT-2 alike.
    func expectPortHeldSixtySeconds(_ port: UInt16, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let closedAt = clock.now
        #expect(try bindOnA(port) == EADDRINUSE, sourceLocation: sourceLocation)
        pass(.seconds(59), step: .seconds(1))
        #expect(try bindOnA(port) == EADDRINUSE, "let go before 60 s", sourceLocation: sourceLocation)
        pass(.seconds(2), step: .seconds(1))
        #expect(try bindOnA(port) == 0, "still held \((clock.now - closedAt).nanoseconds / 1_000_000_000) s after the close",
                sourceLocation: sourceLocation)
    }

    /// Closes `listener` (stopping to listen waits for every core, so the stacks turn
    /// meanwhile) and `sockets`.
    func closeAll(_ listener: StreamSocket, _ sockets: StreamSocket...) throws {
        sockets.forEach { $0.close() }
        try whileTurning { listener.close() }
    }

    /// Frames carried this round.
    private func carry() -> Int {
        var moved = 0
        var buffer = [UInt8](repeating: 0, count: 70_000)
        for (from, to, drop) in [(wireA, wireB, dropFromA), (wireB, wireA, dropFromB)] {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                guard n > 0 else { break }
                let frame = Array(buffer[0..<n])
                if from == wireA { sentByA.append((clock.now, frame)) }
                moved += 1
                if drop(frame) { continue }
                _ = frame.withUnsafeBytes { write(to, $0.baseAddress, $0.count) }
            }
        }
        return moved
    }
}

final class ResultBox<T: Sendable>: Sendable {
    private let value = Mutex<Result<T, any Error>?>(nil)
    func set(_ v: Result<T, any Error>) { value.withLock { $0 = v } }
    func get() -> Result<T, any Error>? { value.withLock { $0 } }
}

/// What a test reads of an Ethernet frame carrying IPv4 and TCP (nil: not such a frame).
struct TCPFrameView {
    let flags: UInt8
    let payloadLength: Int
    init?(_ frame: [UInt8]) {
        guard frame.count >= 54, frame[12] == 0x08, frame[13] == 0x00, frame[23] == 6 else { return nil }
        let ipLength = Int(frame[14] & 0x0f) * 4
        let total = Int(frame[16]) << 8 | Int(frame[17])
        let tcp = 14 + ipLength
        guard frame.count >= tcp + 20 else { return nil }
        flags = frame[tcp + 13]
        payloadLength = total - ipLength - Int(frame[tcp + 12] >> 4) * 4
    }
    var isSyn: Bool { flags & 0x02 != 0 }
}

/// The boundary between an application's sockets and a core, run turn by turn on virtual
/// time: timers of minutes and hours pass in milliseconds, and the outcome the application
/// sees (readiness, SO_ERROR) is checked at the virtual moment it must appear.
@Suite(.serialized) struct VirtualTimeTests {
    /// A connect whose SYNs are all lost: retried 1, 2, 4, 8, 16 and 32 s apart (Linux's
    /// tcp_syn_retries of 6 from a 1 s RTO), then failed with ETIMEDOUT 64 s after the
    /// last, 127 s after the connect; the application sees the error, and not before.
    @Test func connectToSilentPeer_retriesThenTimesOut_onVirtualTime() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        pair.dropFromA = { TCPFrameView($0) != nil } // ARP crosses; TCP never arrives
        let socket = StreamSocket(stack: pair.a)
        socket.nonBlocking = true
        let start = pair.clock.now
        #expect(throws: SocketError(EINPROGRESS)) { try socket.connect(to: Endpoint(StackPair.addressB, 7001)) }
        pair.settle()
        #expect(pair.passUntil(.seconds(126)) { socket.readiness.contains(.error) } == false,
                "failed before 126 s: \(socket.readiness)")
        #expect(pair.passUntil(.seconds(2)) { socket.readiness.contains(.error) })
        let failedAfter = (pair.clock.now - start).nanoseconds / 100_000_000 // tenths of a second
        #expect((1270...1280).contains(failedAfter), "failed after \(failedAfter) tenths of a second")
        #expect(socket.takeError() == ETIMEDOUT)
        let syns = pair.sentByA.filter { TCPFrameView($0.frame)?.isSyn == true }
            .map { ($0.at - start).nanoseconds / 1_000_000_000 }
        #expect(syns == [0, 1, 3, 7, 15, 31, 63], "SYNs at \(syns) s")
        socket.close()
    }

    /// SO_KEEPALIVE with Linux's defaults on an idle connection whose peer falls silent:
    /// the first probe 7200 s after the peer was last heard, then one every 75 s, and 75 s
    /// after the ninth unanswered one the connection fails with ETIMEDOUT, 7875 s in. Two
    /// hours and more, in virtual time.
    @Test func keepaliveWithLinuxDefaults_peerSilent_failsAfterNineProbes() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        // 1 ms steps: the SYN-ACK, the last B is heard, comes within the step it was sent in.
        let (listener, socket, accepted) = try connected(pair, port: 7002) { $0.setKeepAlive(true) }
        let lastHeard = pair.clock.now
        // From now on B's TCP is never heard: the probes go unanswered. (Its ARP is: after
        // two hours A asks again for B's address, and without an answer no probe leaves.)
        pair.dropFromB = { TCPFrameView($0) != nil }
        pair.sentByA.removeAll()
        #expect(pair.passUntil(.seconds(7873), step: .seconds(1)) { socket.readiness.contains(.error) } == false)
        #expect(pair.passUntil(.seconds(4), step: .seconds(1)) { socket.readiness.contains(.error) })
        let failedAfter = (pair.clock.now - lastHeard).nanoseconds / 1_000_000_000
        #expect((7875...7876).contains(failedAfter), "failed after \(failedAfter) s")
        #expect(socket.takeError() == ETIMEDOUT)
        // Probes: A's segments without SYN or RST (the last one, a RST, is Linux's too).
        let probes = pair.sentByA.filter { TCPFrameView($0.frame).map { !$0.isSyn && $0.flags & 0x04 == 0 } == true }
            .map { ($0.at - lastHeard).nanoseconds / 1_000_000_000 }
        #expect(probes.count == 9 && probes.first.map { (7200...7201).contains($0) } == true, "probes at \(probes) s")
        #expect(zip(probes, probes.dropFirst()).allSatisfy { $1 - $0 == 75 }, "probes at \(probes) s")
        try pair.closeAll(listener, accepted, socket)
    }

    /// The side that closes first holds its port in TIME-WAIT for 60 s (Linux's
    /// TCP_TIMEWAIT_LEN): a bind to it fails with EADDRINUSE until then, and succeeds after.
    @Test func timeWait_holdsThePortSixtySeconds() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, accepted) = try connected(pair, port: 7003)
        let port = socket.localAddress.port
        socket.close() // A's FIN first: A ends in TIME-WAIT
        pair.pass(.milliseconds(10), step: .milliseconds(1))
        accepted.close()
        pair.pass(.milliseconds(10), step: .milliseconds(1))
        try pair.expectPortHeldSixtySeconds(port)
        try pair.closeAll(listener)
    }

    /// A port unreachable about a datagram: once every frame has crossed (no sleep and
    /// hope), the socket that asked (IP_RECVERR) has the record and the pending error, and
    /// an unconnected socket that did not ask has neither, as on Linux.
    @Test func portUnreachable_onlyTheSocketThatAskedHearsIt() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let asking = DatagramSocket(stack: pair.a), silent = DatagramSocket(stack: pair.a)
        asking.setReceiveErrors(true, ipv6: false)
        for (socket, port) in [(asking, UInt16(9301)), (silent, 9302)] {
            // The first send binds the socket, which a core answers.
            _ = try pair.whileTurning {
                try Array("datagram".utf8).withUnsafeBytes { try socket.send($0, to: Endpoint(StackPair.addressB, port)) }
            }
        }
        pair.settle()
        #expect(asking.readiness.contains(.error))
        var buffer = [UInt8](repeating: 0, count: 64)
        let (length, error) = try buffer.withUnsafeMutableBytes { try asking.receiveError(into: $0) }
        #expect(Array(buffer[0..<length]) == Array("datagram".utf8) && error.errorNumber == ECONNREFUSED)
        #expect(error.datagram.remote == Endpoint(StackPair.addressB, 9301))
        #expect(!silent.readiness.contains(.error) && silent.takeError() == 0)
        #expect(throws: SocketError(EAGAIN)) { _ = try buffer.withUnsafeMutableBytes { try silent.receiveError(into: $0) } }
        try pair.whileTurning { asking.close(); silent.close() }
    }

    /// Data the peer never acknowledges: one segment, so the loss probe waits for a delayed
    /// ACK and goes when the RTO falls due, in its place (0.2 s); then resent with the
    /// timeout doubling from Linux's 200 ms floor to its 120 s ceiling, fifteen times
    /// (tcp_retries2), and the connection fails with ETIMEDOUT at the first timeout 924.6 s
    /// or more after the data first left (Linux's tcp_model_timeout): 924.8 s, as Linux's
    /// timeline (0, 0.2, 0.4, 0.8 ... 804.8, 924.8) has it.
    @Test func unacknowledgedData_resentFifteenTimes_thenTimesOut() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, accepted) = try connected(pair, port: 7004)
        pair.dropFromB = { TCPFrameView($0) != nil } // B hears, never answers
        pair.sentByA.removeAll()
        let sentAt = pair.clock.now
        let data = [UInt8](repeating: 7, count: 1000)
        #expect(try data.withUnsafeBytes { try socket.send($0) } == 1000)
        // Fine steps while the timeouts are short, coarse ones once they are not.
        _ = pair.passUntil(.seconds(10), step: .milliseconds(10)) { false }
        #expect(pair.passUntil(.seconds(1000), step: .milliseconds(100)) { socket.readiness.contains(.error) })
        let failedAfter = Double((pair.clock.now - sentAt).nanoseconds) / 1e9
        #expect(socket.takeError() == ETIMEDOUT)
        let sends = pair.sentByA.filter { TCPFrameView($0.frame).map { $0.payloadLength > 0 } == true }
            .map { Double(($0.at - sentAt).nanoseconds) / 1e9 }
        // The first send, the tail loss probe one RTO later, then fifteen retransmissions,
        // the last ones 120 s apart. (Past 10 s the clock moves in 0.1 s steps.)
        #expect(sends.count == 17, "the data left at \(sends) s")
        #expect(sends.count > 2 && abs(sends[1] - sends[0] - 0.2) < 0.015 && abs(sends[2] - sends[1] - 0.2) < 0.015,
                "the probe and the first timeout: the data left at \(sends) s")
        #expect(zip(sends.suffix(5), sends.suffix(4)).allSatisfy { abs($1 - $0 - 120) < 0.2 }, "the data left at \(sends) s")
        #expect((924.6...925.0).contains(failedAfter), "failed after \(failedAfter) s; the data left at \(sends) s")
        try pair.closeAll(listener, accepted, socket)
    }

    /// A receiver that stops reading: its window closes, the sender probes it with the
    /// probe interval backing off to 120 s and never gives up while each probe is answered
    /// (Linux's tcp_probe_timer); an hour later the receiver reads and every byte arrives,
    /// in order.
    @Test func closedWindow_probedForAnHour_thenEveryByteArrives() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, accepted) = try connected(pair, port: 7005)
        accepted.nonBlocking = true
        // A writes until its send buffer is full and B's window closed.
        let block = (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        var sent = 0
        for _ in 0..<4_000 {
            let n = (try? block.withUnsafeBytes { try socket.send(UnsafeRawBufferPointer(rebasing: $0[(sent % 65_536)...])) }) ?? 0
            sent += n
            pair.pass(.milliseconds(1), step: .milliseconds(1))
            if n == 0 && !socket.readiness.contains(.writable) { break }
        }
        #expect(sent > 0 && !socket.readiness.contains(.writable), "sent \(sent)")
        pair.sentByA.removeAll()
        let closedAt = pair.clock.now
        pair.pass(.seconds(3600), step: .seconds(1))
        #expect(!socket.readiness.contains(.error) && socket.takeError() == 0, "the sender gave up")
        let probes = pair.sentByA.filter { TCPFrameView($0.frame) != nil }.map { ($0.at - closedAt).nanoseconds / 1_000_000_000 }
        let gaps = zip(probes, probes.dropFirst()).map { $1 - $0 }
        #expect(gaps.suffix(10).allSatisfy { $0 == 120 }, "probes at \(probes) s")
        #expect((25...40).contains(probes.count), "probes at \(probes) s")
        // B reads everything A wrote (and A writes what it could not yet).
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let total = sent + 100_000
        for _ in 0..<10_000 where received.count < total {
            if sent < total {
                let offset = sent % 65_536, left = min(total - sent, 65_536 - offset)
                sent += (try? block.withUnsafeBytes { try socket.send(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + left)])) }) ?? 0
            }
            while let n = try? buffer.withUnsafeMutableBytes({ try accepted.receive(into: $0) }), n > 0 {
                received += buffer[0..<n]
            }
            pair.pass(.milliseconds(1), step: .milliseconds(1))
        }
        #expect(received.count == total)
        #expect(received.indices.allSatisfy { received[$0] == block[$0 % 65_536] }, "the bytes differ")
        try pair.closeAll(listener, accepted, socket)
    }

    /// A handshake whose last ACK never arrives: the listener resends its SYN-ACK 1, 2,
    /// 4, 8 and 16 s apart (Linux's tcp_synack_retries of 5) and forgets the connection
    /// when the last one times out; nothing ever reaches accept. The client, established
    /// all along, is reset when it sends.
    @Test func synAckUnanswered_resentFiveTimes_neverAccepted() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, synAcks) = try lostHandshakeAck(pair, port: 7006, watch: .seconds(70))
        #expect(socket.readiness.contains(.writable) && !socket.readiness.contains(.error))
        #expect(synAcks == [0, 1, 3, 7, 15, 31], "SYN-ACKs at \(synAcks) s")
        #expect(listener.listenQueueDepth == 0)
        #expect(throws: SocketError(EAGAIN)) { _ = try listener.accept() }
        try expectDataReset(pair, socket) // B forgot it
        try pair.closeAll(listener, socket)
    }

    /// A connect to B's `port` whose SYN crosses while every TCP frame A sends after it is
    /// lost, watched for `watch`: the listener (TCP_SYNCNT `synCount` if given), A's socket
    /// and the seconds after the connect at which B sent a SYN-ACK.
    func lostHandshakeAck(_ pair: DrivenPair, port: UInt16, synCount: Int? = nil, watch: Interval)
        throws -> (listener: StreamSocket, socket: StreamSocket, synAcks: [UInt64]) {
        let listener = StreamSocket(stack: pair.b)
        if let synCount { listener.setSYNRetransmissions(synCount) }
        try pair.whileTurning { try listener.bind(Endpoint(IPv4Address(0), port)); try listener.listen() }
        listener.nonBlocking = true
        var synSeen = false
        pair.dropFromA = { frame in
            guard let tcp = TCPFrameView(frame) else { return false }
            defer { synSeen = synSeen || tcp.isSyn }
            return synSeen
        }
        var synAcks: [Instant] = []
        pair.dropFromB = { frame in
            if let tcp = TCPFrameView(frame), tcp.flags & 0x12 == 0x12 { synAcks.append(pair.clock.now) }
            return false
        }
        let socket = StreamSocket(stack: pair.a)
        socket.nonBlocking = true
        #expect(throws: SocketError(EINPROGRESS)) { try socket.connect(to: Endpoint(StackPair.addressB, port)) }
        let start = pair.clock.now
        pair.pass(watch, step: .milliseconds(100))
        return (listener, socket, synAcks.map { ($0 - start).nanoseconds / 1_000_000_000 })
    }

    /// A's data, carried again, is answered with a reset: B holds no connection for it.
    func expectDataReset(_ pair: DrivenPair, _ socket: StreamSocket, sourceLocation: SourceLocation = #_sourceLocation) throws {
        pair.dropFromA = { _ in false }
        _ = try Array("late".utf8).withUnsafeBytes { try socket.send($0) }
        #expect(pair.passUntil(.seconds(2), step: .milliseconds(10)) { socket.readiness.contains(.error) }, sourceLocation: sourceLocation)
        #expect(socket.takeError() == ECONNRESET, sourceLocation: sourceLocation)
    }

    /// A connected pair on the driven stacks, A's socket and B's accepted one.
    func connected(_ pair: DrivenPair, port: UInt16, before: (StreamSocket) -> Void = { _ in })
        throws -> (listener: StreamSocket, a: StreamSocket, b: StreamSocket) {
        let listener = StreamSocket(stack: pair.b)
        try pair.whileTurning { try listener.bind(Endpoint(IPv4Address(0), port)); try listener.listen() }
        listener.nonBlocking = true
        let socket = StreamSocket(stack: pair.a)
        socket.nonBlocking = true
        before(socket)
        #expect(throws: SocketError(EINPROGRESS)) { try socket.connect(to: Endpoint(StackPair.addressB, port)) }
        #expect(pair.passUntil(.seconds(1), step: .milliseconds(1)) { socket.readiness.contains(.writable) })
        return (listener, socket, try listener.accept())
    }

    /// TCP_CORK set on a live connection reaches its owner in order with the data: a small
    /// write waits while nothing is in flight until the probe timer fires one RTO later
    /// (Linux's 200 ms ceiling on TCP_CORK, tcp(7)), not before; the next small write waits
    /// again, and clearing TCP_CORK sends it at once.
    @Test func cork_holdsASmallWrite_untilTheCeilingOrUncorked() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, accepted) = try connected(pair, port: 7012)
        socket.setCork(true)
        let wroteAt = pair.clock.now
        #expect(try [UInt8](repeating: 7, count: 10).withUnsafeBytes { try socket.send($0) } == 10)
        pair.pass(.milliseconds(190), step: .milliseconds(10))
        #expect(accepted.readable == 0, "a corked small write went out before the ceiling")
        #expect(pair.passUntil(.seconds(2), step: .milliseconds(10)) { accepted.readable == 10 })
        let waited = pair.clock.now - wroteAt
        #expect(waited >= .milliseconds(200) && waited <= .milliseconds(300), "the ceiling came after \(waited)")
        // The next write once the first is acknowledged (B delays its ACK; a loss probe sent
        // meanwhile would carry a waiting write, as Linux's does, cork or not).
        pair.pass(.milliseconds(300), step: .milliseconds(10))
        #expect(try [UInt8](repeating: 8, count: 5).withUnsafeBytes { try socket.send($0) } == 5)
        pair.pass(.milliseconds(100), step: .milliseconds(10))
        #expect(accepted.readable == 10, "the next small write went out without waiting")
        socket.setCork(false)
        pair.settle()
        #expect(accepted.readable == 15, "uncorking did not send the held write")
        try pair.closeAll(listener, socket, accepted)
    }

    /// TCP_USER_TIMEOUT of 10 s: data a silent peer never acknowledges fails the connection
    /// 10 s after it first left (Linux clamps the last RTO to the user timeout), not after
    /// fifteen retransmissions.
    @Test func userTimeout_failsTenSecondsAfterTheDataLeft() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, accepted) = try connected(pair, port: 7007) { $0.setUserTimeout(milliseconds: 10_000) }
        pair.dropFromB = { TCPFrameView($0) != nil }
        let sentAt = pair.clock.now
        #expect(try Array("unheard".utf8).withUnsafeBytes { try socket.send($0) } == 7)
        #expect(pair.passUntil(.seconds(9), step: .milliseconds(10)) { socket.readiness.contains(.error) } == false)
        #expect(pair.passUntil(.seconds(2), step: .milliseconds(10)) { socket.readiness.contains(.error) })
        let failedAfter = (pair.clock.now - sentAt).nanoseconds / 10_000_000 // hundredths
        #expect((1000...1002).contains(failedAfter), "failed after \(failedAfter) hundredths of a second")
        #expect(socket.takeError() == ETIMEDOUT)
        try pair.closeAll(listener, accepted, socket)
    }

    /// The side that closes first while its peer never does waits in FIN-WAIT-2 for
    /// tcp_fin_timeout, 60 s, holding its port, and then lets go (Linux's orphan rule).
    @Test func finWait2_orphanLetsGoAfterSixtySeconds() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, accepted) = try connected(pair, port: 7008)
        let port = socket.localAddress.port
        socket.close() // B acknowledges the FIN and never closes
        pair.pass(.milliseconds(20), step: .milliseconds(1))
        try pair.expectPortHeldSixtySeconds(port)
        try pair.closeAll(listener, accepted)
    }

    /// A sender that writes until its buffer and the receiver's window are full and then
    /// closes (or is killed: the stack closes for it), while the receiver reads only 1.5 s
    /// later: the closed window is probed, and once the receiver reads, every byte arrives
    /// and then the end of the stream.
    @Test func closedWindowThenClose_everyByteThenTheEnd() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, accepted) = try connected(pair, port: 7009)
        accepted.nonBlocking = true
        let block = (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        var sent = 0, stalled = 0
        while stalled < 200 { // 200 ms without room: both buffers full, the window closed
            let offset = sent % 65_536
            let n = (try? block.withUnsafeBytes { try socket.send(UnsafeRawBufferPointer(rebasing: $0[offset...])) }) ?? 0
            sent += n
            stalled = n == 0 ? stalled + 1 : 0
            pair.pass(.milliseconds(1), step: .milliseconds(1))
        }
        // The 4 MiB send buffer and the receiver's first window.
        #expect(sent > 4 << 20, "sent \(sent)")
        let total = sent
        socket.close()
        pair.pass(.milliseconds(1500), step: .milliseconds(1))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var ended = false
        for _ in 0..<60_000 where !ended {
            while true {
                do {
                    let n = try buffer.withUnsafeMutableBytes { try accepted.receive(into: $0) }
                    if n == 0 { ended = true; break }
                    received += buffer[0..<n]
                } catch { break }
            }
            pair.pass(.milliseconds(1), step: .milliseconds(1))
        }
        #expect(ended && received.count == total, "\(received.count) of \(total) bytes, ended \(ended)")
        #expect(received.indices.allSatisfy { received[$0] == block[$0 % 65_536] }, "the bytes differ")
        try pair.closeAll(listener, accepted)
    }

    /// Keepalive of 10 s idle and 5 s between probes with TCP_USER_TIMEOUT of 12 s: the
    /// user timeout decides instead of the probe count (Linux's tcp_keepalive_timer gives
    /// up once a probe is out and the peer has been silent that long), so the connection
    /// fails at the second timer, 15 s after the peer was last heard, after one probe.
    @Test func keepaliveWithUserTimeout_theTimeoutDecides() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, accepted) = try connected(pair, port: 7010) {
            $0.setKeepAlive(true)
            $0.setKeepAliveParameters(idle: 10, interval: 5, probes: 9)
            $0.setUserTimeout(milliseconds: 12_000)
        }
        let lastHeard = pair.clock.now
        pair.dropFromB = { TCPFrameView($0) != nil }
        pair.sentByA.removeAll()
        #expect(pair.passUntil(.seconds(14), step: .milliseconds(100)) { socket.readiness.contains(.error) } == false)
        #expect(pair.passUntil(.seconds(2), step: .milliseconds(100)) { socket.readiness.contains(.error) })
        let failedAfter = (pair.clock.now - lastHeard).nanoseconds / 100_000_000 // tenths
        #expect((150...151).contains(failedAfter), "failed after \(failedAfter) tenths of a second")
        #expect(socket.takeError() == ETIMEDOUT)
        let probes = pair.sentByA.filter { TCPFrameView($0.frame).map { $0.payloadLength == 0 && $0.flags & 0x04 == 0 } == true }
        #expect(probes.count == 1, "\(probes.count) probes")
        try pair.closeAll(listener, accepted, socket)
    }

    /// TCP_SYNCNT on a listener is its connections' SYN-ACK retransmissions (Linux's
    /// icsk_syn_retries before tcp_synack_retries): with 2, SYN-ACKs at 0, 1 and 3 s, and
    /// the half-open connection forgotten at 7 s, so the client's data at 8 s is reset.
    @Test func listenerSynCount_isItsSynAckRetries() throws {
        let pair = try DrivenPair()
        defer { pair.stop() }
        let (listener, socket, synAcks) = try lostHandshakeAck(pair, port: 7011, synCount: 2, watch: .seconds(8))
        #expect(synAcks == [0, 1, 3], "SYN-ACKs at \(synAcks) s")
        try expectDataReset(pair, socket)
        try pair.closeAll(listener, socket)
    }
}
