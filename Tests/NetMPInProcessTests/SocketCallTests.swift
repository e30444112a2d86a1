import Foundation
import Glibc
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire
import Synchronization
import Testing

/// The socket calls' outcomes, errno for errno as Linux gives them, on the per-core runtime.
@Suite(.serialized) struct SocketCallTests {
    func expectErrno(_ errno: Int32, or other: Int32? = nil, _ body: () throws -> Void,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do { try body(); Issue.record("no error, expected errno \(errno)", sourceLocation: sourceLocation) } catch {
            let got = (error as? SocketError)?.errno
            #expect(got == errno || got == other, "got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func misuse_getsLinuxErrnos() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let fresh = StreamSocket(stack: pair.a)
        var byte: UInt8 = 1
        expectErrno(EPIPE) { _ = try withUnsafeBytes(of: &byte) { b in try fresh.send(b) } }
        expectErrno(ENOTCONN) { _ = try withUnsafeMutableBytes(of: &byte) { b in try fresh.receive(into: b) } }
        expectErrno(EINVAL) { _ = try fresh.accept() }
        expectErrno(ENOTCONN) { _ = try fresh.peerAddress() }
        expectErrno(ENOTCONN) { try fresh.shutdown(.write) }
        expectErrno(EADDRNOTAVAIL) { try fresh.bind(Endpoint(IPv4Address(10, 88, 0, 99), 80)) }
        try fresh.bind(Endpoint(IPv4Address(0), 5555))
        #expect(fresh.localAddress.port == 5555)
        expectErrno(EINVAL) { try fresh.bind(Endpoint(IPv4Address(0), 5556)) }
        let second = StreamSocket(stack: pair.a)
        expectErrno(EADDRINUSE) { try second.bind(Endpoint(IPv4Address(0), 5555)) }
        fresh.close()
        try second.bind(Endpoint(IPv4Address(0), 5555)) // released by close
        second.close()
        let offLink = StreamSocket(stack: pair.a)
        expectErrno(ENETUNREACH) { try offLink.connect(to: Endpoint(IPv4Address(192, 0, 2, 1), 80)) }
        // The socket stays unconnected (Linux's tcp_v4_connect fails before any state
        // change): trying again fails the same way, and non-blocking it fails at once too.
        expectErrno(ENETUNREACH) { try offLink.connect(to: Endpoint(IPv4Address(192, 0, 2, 1), 80)) }
        offLink.nonBlocking = true
        expectErrno(ENETUNREACH) { try offLink.connect(to: Endpoint(IPv4Address(192, 0, 2, 1), 80)) }
        #expect(offLink.isFresh)
        let zero = StreamSocket(stack: pair.a)
        expectErrno(ECONNREFUSED) { try zero.connect(to: Endpoint(StackPair.addressB, 0)) }
    }

    @Test func connect_noListener_refused_thenListenerAccepts() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let socket = StreamSocket(stack: pair.a)
        expectErrno(ECONNREFUSED) { try socket.connect(to: Endpoint(StackPair.addressB, 7100)) }
        let listener = try pair.listenOnB(port: 7100)
        listener.nonBlocking = true
        expectErrno(EAGAIN) { _ = try listener.accept() }
        listener.nonBlocking = false
        let client = StreamSocket(stack: pair.a)
        client.nonBlocking = true
        expectErrno(EINPROGRESS) { try client.connect(to: Endpoint(StackPair.addressB, 7100)) }
        // EALREADY while the handshake runs; 0 if it already completed: as on Linux, the
        // first connect() after completion answers 0, later ones EISCONN.
        var answered = false
        do { try client.connect(to: Endpoint(StackPair.addressB, 7100)); answered = true } catch {
            #expect(error.errno == EALREADY)
        }
        let server = try listener.accept()
        // The client's handshake completes; SO_ERROR is then 0 and the names are known.
        for _ in 0..<1000 where !client.channel.status.contains(.established) { usleep(1000) }
        #expect(client.takeError() == 0)
        if !answered { try client.connect(to: Endpoint(StackPair.addressB, 7100)) }
        expectErrno(EISCONN) { try client.connect(to: Endpoint(StackPair.addressB, 7100)) }
        #expect(try client.peerAddress() == Endpoint(StackPair.addressB, 7100))
        #expect(try server.peerAddress() == client.localAddress)
        #expect(server.localAddress == Endpoint(StackPair.addressB, 7100))
        client.close(); server.close(); listener.close()
    }

    /// shutdown() stops a listener as Linux's tcp_disconnect does: a blocked accept()
    /// wakes with EINVAL, poll says writable and hung up, connections are refused. listen()
    /// starts it again on its port, and it accepts as before; shut once more, it refuses.
    @Test func listenerShutdown_stopsIt_listenStartsItAgain() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7150)
        let woken = Atomic<Int32>(0)
        let waiter = Thread { do { _ = try listener.accept() } catch { woken.store((error as? SocketError)?.errno ?? -1, ordering: .releasing) } }
        waiter.start()
        usleep(100_000)
        try listener.shutdown(.both)
        for _ in 0..<1000 where woken.load(ordering: .acquiring) == 0 { usleep(1000) }
        #expect(woken.load(ordering: .acquiring) == EINVAL)
        #expect(listener.readiness == [.writable, .hangUp])
        expectErrno(ECONNREFUSED) { _ = try pair.connectFromA(port: 7150) }
        expectErrno(EINVAL) { _ = try listener.accept() }
        expectErrno(ENOTCONN) { try listener.shutdown(.both) } // not listening: Linux's TCP_CLOSE

        try listener.listen()
        #expect(listener.readiness == [])
        let client = try pair.connectFromA(port: 7150)
        let server = try listener.accept()
        #expect(try Array("again".utf8).withUnsafeBytes { try client.send($0) } == 5)
        var buffer = [UInt8](repeating: 0, count: 5)
        #expect(try buffer.withUnsafeMutableBytes { try server.receive(into: $0, flags: [.waitAll]) } == 5)
        #expect(buffer == Array("again".utf8))
        client.close(); server.close()

        try listener.shutdown(.read)
        expectErrno(ECONNREFUSED) { _ = try pair.connectFromA(port: 7150) }
        listener.close()
        expectErrno(EINVAL) { try listener.listen() }
    }

    @Test func peekWaitAllTimeoutsAndShutdownRead() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7200)
        let client = try pair.connectFromA(port: 7200)
        let server = try listener.accept()
        var buffer = [UInt8](repeating: 0, count: 10)
        server.nonBlocking = true
        expectErrno(EAGAIN) { _ = try buffer.withUnsafeMutableBytes { b in try server.receive(into: b) } }
        server.nonBlocking = false
        server.setTimeouts(receive: 50_000_000)
        let start = MonotonicClock.now()
        expectErrno(EAGAIN) { _ = try buffer.withUnsafeMutableBytes { b in try server.receive(into: b) } }
        #expect(MonotonicClock.now() - start >= .milliseconds(45))
        server.setTimeouts(receive: 0)

        let hello = Array("hello".utf8), world = Array("world".utf8)
        #expect(try hello.withUnsafeBytes { try client.send($0) } == 5)
        let peeked = try buffer.withUnsafeMutableBytes { try server.receive(into: $0, flags: [.peek, .waitAll]) }
        #expect(Array(buffer[0..<peeked]) == Array(hello[0..<peeked]))
        #expect(try world.withUnsafeBytes { try client.send($0) } == 5)
        // WAITALL: ten bytes, though they came in two sends.
        #expect(try buffer.withUnsafeMutableBytes { try server.receive(into: $0, flags: .waitAll) } == 10)
        #expect(buffer == hello + world)
        #expect(server.readable == 0)
        try server.shutdown(.read)
        #expect(try buffer.withUnsafeMutableBytes { try server.receive(into: $0) } == 0)
        client.close(); server.close(); listener.close()
    }

    /// A reset reaches every blocked reader: one sees ECONNRESET, the rest end of file; none
    /// is left waiting. Writes after it fail with EPIPE.
    @Test func peerAbort_wakesEveryBlockedReader() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7300)
        let client = try pair.connectFromA(port: 7300)
        let server = try listener.accept()
        let lock = NSLock()
        nonisolated(unsafe) var outcomes: [String] = []
        let readers = (0..<4).map { _ in
            spawnBounded {
                var buffer = [UInt8](repeating: 0, count: 100)
                var outcome: String
                do {
                    let n = try buffer.withUnsafeMutableBytes { try server.receive(into: $0) }
                    outcome = n == 0 ? "eof" : "data"
                } catch { outcome = "errno \((error as? SocketError)?.errno ?? -1)" }
                lock.lock(); outcomes.append(outcome); lock.unlock()
            }
        }
        usleep(100_000) // let them block
        client.setLinger(seconds: 0)
        client.close()
        for reader in readers { #expect(reader(10), "a reader missed the reset") }
        #expect(outcomes.filter { $0 == "errno \(ECONNRESET)" }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == "eof" }.count == 3, "\(outcomes)")
        var byte: UInt8 = 0
        expectErrno(EPIPE) { _ = try withUnsafeBytes(of: &byte) { b in try server.send(b) } }
        server.close(); listener.close()
    }

    /// close() on a listener resets the connections nobody accepted, on whichever core
    /// owns each (twelve connections: both cores hold some).
    @Test func listenerClose_resetsUnaccepted() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7400)
        let clients = try (0..<12).map { _ in try pair.connectFromA(port: 7400) }
        for _ in 0..<1000 where listener.listenQueueDepth < clients.count { usleep(1000) }
        #expect(listener.listenQueueDepth == clients.count)
        listener.close()
        var byte: UInt8 = 0
        for client in clients {
            client.setTimeouts(receive: 5_000_000_000)
            expectErrno(ECONNRESET) { _ = try withUnsafeMutableBytes(of: &byte) { b in try client.receive(into: b) } }
            client.close()
        }
    }

    /// Options set before connect travel with it; TCP_INFO comes from the owner core.
    @Test func optionsAndTCPInfo() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7500)
        let client = StreamSocket(stack: pair.a)
        client.setNoDelay(true)
        try client.connect(to: Endpoint(StackPair.addressB, 7500))
        let server = try listener.accept()
        client.setCork(true)
        client.setCork(false)
        let info = client.info()
        #expect(info.state == 1) // TCP_ESTABLISHED
        #expect(info.sendMSS > 1400 && info.sendMSS <= 1460, "\(info.sendMSS)")
        client.close(); server.close(); listener.close()
    }

    /// poll's view after shutdown, as Linux's tcp_poll gives it: SHUT_RD makes the socket
    /// readable with POLLRDHUP (RCV_SHUTDOWN), and both directions shut is POLLHUP.
    @Test func shutdown_readinessAsLinux() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7520)
        let client = try pair.connectFromA(port: 7520)
        let server = try listener.accept()
        #expect(client.readiness == .writable)
        try client.shutdown(.read)
        #expect(client.readiness.isSuperset(of: [.readable, .readHangUp, .writable]) && !client.readiness.contains(.hangUp))
        try client.shutdown(.write)
        #expect(client.readiness.isSuperset(of: [.readable, .readHangUp, .writable, .hangUp]))
        // The peer's FIN alone: readable with POLLRDHUP, no POLLHUP while it may still write.
        for _ in 0..<1000 where !server.readiness.contains(.readHangUp) { usleep(1000) }
        #expect(server.readiness.isSuperset(of: [.readable, .readHangUp]) && !server.readiness.contains(.hangUp))
        client.close(); server.close(); listener.close()
    }
}
