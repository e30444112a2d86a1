import Foundation
import Glibc
import NetMPClient
import NetMPInProcess
import NetMPLink
import NetMPStack
import NetMPStackProcess
import NetMPSystem
import NetMPTCP
import NetMPWire
import Testing

/// Two netmp stacks in this process, wired back to back: one SEQPACKET socket pair per
/// core stands in for the wire (a frame per read and write, like a TAP queue). With
/// `crossed`, stack A's queue i meets stack B's queue i+1, so the kernel-side "steering"
/// disagrees with the owner hash and every TCP frame must be forwarded between cores.
/// No TAP, no namespace, no root: the whole runtime under test, ThreadSanitizer included.
final class StackPair: @unchecked Sendable {
    let a: NetworkStack
    let b: NetworkStack
    var descriptors: [Int32] = []
    static let addressA = IPv4Address(10, 88, 0, 1)
    static let addressB = IPv4Address(10, 88, 0, 2)
    /// With `ipv6`, each stack has an IPv6 address too (ready when init returns).
    static let address6A = IPv6Address("fd88::1")!
    static let address6B = IPv6Address("fd88::2")!

    /// With `checksumOffload`, frames carry virtio headers and each stack leaves its
    /// checksums to the "link", which vouches for them on arrival (as a TAP does).
    init(cores: Int, crossed: Bool = false, tcp: TCPConfigurationOverride? = nil, ipv6: Bool = false,
         checksumOffload: Bool = false) throws {
        var queuesA: [TAPQueue] = [], queuesB: [Int32] = Array(repeating: -1, count: cores)
        for core in 0..<cores {
            var pair: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw POSIXError(.EMFILE)
            }
            var size: Int32 = 4 << 20
            for fd in pair { setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4); setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
            descriptors += pair
            queuesA.append(TAPQueue(fd: pair[0], index: core, virtioHeader: checksumOffload))
            queuesB[crossed ? (core + 1) % cores : core] = pair[1]
        }
        var tcpConfiguration = TCPConfiguration()
        tcp?(&tcpConfiguration)
        var configA = StackConfiguration(tapName: "pair-a", address: Self.addressA, prefixLength: 24)
        var configB = StackConfiguration(tapName: "pair-b", address: Self.addressB, prefixLength: 24)
        if ipv6 {
            configA.ipv6Addresses = [IPv6InterfaceAddress(Self.address6A, prefixLength: 64)]
            configB.ipv6Addresses = [IPv6InterfaceAddress(Self.address6B, prefixLength: 64)]
        }
        let offloads = checksumOffload ? LinkOffloads(checksum: true) : .none
        a = try NetworkStack.start(configA, queues: queuesA, tcpConfiguration: tcpConfiguration, log: Log(level: .off),
                                   linkOffloads: offloads)
        b = try NetworkStack.start(configB, queues: queuesB.enumerated().map { TAPQueue(fd: $1, index: $0, virtioHeader: checksumOffload) },
                                   tcpConfiguration: tcpConfiguration, log: Log(level: .off), linkOffloads: offloads)
        if ipv6 {
            // Duplicate address detection takes a second; neither may find the other on its address.
            guard a.waitForIPv6Addresses().isEmpty, b.waitForIPv6Addresses().isEmpty else { throw POSIXError(.EADDRINUSE) }
        }
    }

    func stop() {
        a.stop()
        b.stop()
        descriptors.forEach { _ = close($0) }
    }

    /// A listener on B, port `port`.
    func listenOnB(port: UInt16, backlog: Int = 64) throws -> StreamSocket {
        let listener = StreamSocket(stack: b)
        try listener.bind(Endpoint(IPv4Address(0), port))
        try listener.listen(backlog: backlog)
        return listener
    }

    /// A connection from A to B's `port`.
    func connectFromA(port: UInt16) throws -> StreamSocket {
        let socket = StreamSocket(stack: a)
        try socket.connect(to: Endpoint(Self.addressB, port))
        return socket
    }
}

typealias TCPConfigurationOverride = (inout TCPConfiguration) -> Void

extension StackPair {
    /// One stream of `bytes` bytes (stream `seed`) from a new connection of A's to
    /// `listener`, which listens at B's `port`: the accepting side reads it to the end and
    /// checks every byte. A hang on either side, a short stream or a wrong byte fails the test.
    func streamOnce(to listener: StreamSocket, port: UInt16, seed: Int, bytes: Int) throws {
        nonisolated(unsafe) var received: (Int, Int?) = (0, nil)
        let server = spawnBounded {
            guard let connection = try? listener.accept() else { return }
            received = (try? connection.receiveStream(seed: seed)) ?? (-1, nil)
            connection.close()
        }
        let socket = try connectFromA(port: port)
        defer { socket.close() }
        #expect(try socket.sendStream(seed: seed, count: bytes) == bytes)
        try socket.shutdown(.write)
        #expect(server(60), "the server hung")
        #expect(received.0 == bytes && received.1 == nil, "\(received)")
    }
}

/// Runs `body` on a new thread; the returned join waits at most `seconds` and says whether
/// the thread finished (a hang fails the test instead of hanging it).
func spawnBounded(_ body: @escaping @Sendable () -> Void) -> (_ seconds: Double) -> Bool {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread { body(); done.signal() }
    thread.stackSize = 1 << 20
    thread.start()
    let joined = NSLock()
    nonisolated(unsafe) var finished = false
    // Idempotent: a second join of a finished thread says so at once.
    return { seconds in
        joined.lock(); defer { joined.unlock() }
        if !finished { finished = done.wait(timeout: .now() + seconds) == .success }
        return finished
    }
}

/// A reproducible stream: byte i of stream `seed` (cheap enough to check every byte).
@inline(__always) func streamByte(_ seed: Int, _ i: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: (i &* 2_654_435_761 &+ seed &* 40_503) >> 7 ^ i)
}

extension StreamSocket {
    /// Sends `count` bytes of stream `seed` in chunks; returns the bytes sent.
    func sendStream(seed: Int, count: Int, chunk: Int = 61_440) throws -> Int {
        var buffer = [UInt8](repeating: 0, count: chunk)
        var sent = 0
        while sent < count {
            let n = min(chunk, count - sent)
            for k in 0..<n { buffer[k] = streamByte(seed, sent + k) }
            let written = try buffer.withUnsafeBytes { try send(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            sent += written
            if written < n { break }
        }
        return sent
    }

    /// Reads to end of stream, checking each byte against stream `seed`; returns the count
    /// and the offset of the first wrong byte, if any.
    func receiveStream(seed: Int) throws -> (count: Int, firstMismatch: Int?) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var total = 0
        var mismatch: Int? = nil
        while true {
            let n = try buffer.withUnsafeMutableBytes { try receive(into: $0) }
            if n == 0 { return (total, mismatch) }
            if mismatch == nil {
                for k in 0..<n where buffer[k] != streamByte(seed, total + k) { mismatch = total + k; break }
            }
            total += n
        }
    }
}
