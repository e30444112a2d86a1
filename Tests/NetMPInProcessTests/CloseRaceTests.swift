import Foundation
import Glibc
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire
import Testing

/// close() racing every blocking call on other threads (the stack-service issue: closing a
/// listener while another thread waited in accept with a timeout crashed the runtime it
/// replaced): accept with and without a timeout, recv, send into a full window, and
/// connect to an address that never answers. Round after round for
/// NETMP_CLOSE_RACE_SECONDS (Scripts/test runs it under ThreadSanitizer); no call may
/// crash or hang: each returns, with an error or the end of the stream.
@Suite(.serialized) struct CloseRaceTests {
    static var seconds: Double {
        ProcessInfo.processInfo.environment["NETMP_CLOSE_RACE_SECONDS"].flatMap(Double.init) ?? 3
    }

    enum Call: CaseIterable { case accept, acceptWithTimeout, receive, send, connect }

    final class Outcomes: @unchecked Sendable {
        let lock = NSLock()
        var returned = 0
        func add() { lock.lock(); returned += 1; lock.unlock() }
    }

    @Test func closeRacesEveryBlockingCall_noCrashNoHang() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let server = try pair.listenOnB(port: 7640)
        defer { server.close() }
        let end = Date().addingTimeInterval(Self.seconds)
        var rounds = 0
        var calls: [Call: Int] = [:]
        // Nobody holds this address on the pair's link: a connect there waits for ARP.
        let nowhere = Endpoint(IPv4Address(10, 88, 0, 77), 7641)
        while Date() < end || rounds < Call.allCases.count {
            let call = Call.allCases[rounds % Call.allCases.count]
            rounds += 1
            calls[call, default: 0] += 1
            let outcomes = Outcomes()
            var victims: [StreamSocket] = []
            var joins: [(Double) -> Bool] = []
            var peer: StreamSocket?
            switch call {
            case .accept, .acceptWithTimeout:
                let listener = StreamSocket(stack: pair.a)
                try listener.bind(Endpoint(IPv4Address(0), 7642))
                try listener.listen(backlog: 4)
                if call == .acceptWithTimeout { listener.setTimeouts(receive: 2_000_000) } // 2 ms, looped below
                victims = [listener]
                joins = (0..<3).map { _ in
                    spawnBounded {
                        while true {
                            do { _ = try listener.accept() } catch {
                                if (error as? SocketError)?.errno == EAGAIN { continue } // the timeout: wait again
                            }
                            break
                        }
                        outcomes.add()
                    }
                }
            case .receive, .send:
                let client = try pair.connectFromA(port: 7640)
                peer = try server.accept() // it never reads nor writes: receives wait, sends fill the window
                victims = [client]
                let sending = call == .send
                joins = (0..<3).map { _ in
                    spawnBounded {
                        var buffer = [UInt8](repeating: 1, count: 1 << 20)
                        while true {
                            let n = try? buffer.withUnsafeMutableBytes { sending ? try client.send(UnsafeRawBufferPointer($0)) : try client.receive(into: $0) }
                            if n == nil || n == 0 { break }
                        }
                        outcomes.add()
                    }
                }
            case .connect:
                victims = (0..<3).map { _ in StreamSocket(stack: pair.a) }
                joins = victims.map { socket in
                    spawnBounded {
                        _ = try? socket.connect(to: nowhere)
                        outcomes.add()
                    }
                }
            }
            usleep(useconds_t.random(in: 0...20_000))
            for victim in victims { victim.close() }
            for (i, join) in joins.enumerated() { #expect(join(10), "round \(rounds) (\(call)): thread \(i) hung after close") }
            #expect(outcomes.returned == joins.count, "round \(rounds) (\(call))")
            peer?.close()
        }
        print("close races: \(rounds) rounds in \(Self.seconds) s: \(calls.map { "\($0.key) \($0.value)" }.sorted())")
    }
}
