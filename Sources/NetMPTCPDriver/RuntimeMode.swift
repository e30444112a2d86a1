import Glibc
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPStackProcess
import NetMPSystem
import NetMPTCP
import NetMPWire

/// `--connections N`: the per-core runtime instead of a loop on this thread. The stack runs
/// its protocol threads (NETMP_CORES from `--cores`), and N application threads each open
/// a connection through StreamSocket and move a stream both ways (a second thread per
/// connection reads while the first writes). Prints one JSON line per connection, then the
/// stack's own stats (`netmp stat --json`'s format), taken while the connections still exist.
func runRuntimeMode(_ options: [String: String], configuration: StackConfiguration, total: Int) -> Never {
    guard let target = options["connect"], let count = options["connections"].flatMap({ Int($0) }), count > 0 else {
        die("--connections N needs --connect IP:PORT")
    }
    let parts = target.split(separator: ":")
    guard parts.count == 2, let ip = IPv4Address(parts[0]), let port = UInt16(parts[1]) else { die("--connect IP:PORT") }
    let seed = options["seed"].flatMap { Int($0) } ?? 1
    let stack: NetworkStack
    do { stack = try NetworkStack.start(configuration, log: Log(level: configuration.logLevel)) } catch { die("\(error)") }

    final class Outcome: @unchecked Sendable {
        var line = ""
        var ok = false
        var socket: StreamSocket?
    }
    let outcomes = (0..<count).map { _ in Outcome() }
    let start = MonotonicClock.now()
    let threads = (0..<count).map { index in
        startThread {
            let outcome = outcomes[index]
            let socket = StreamSocket(stack: stack)
            do { try socket.connect(to: Endpoint(ip, port)) } catch {
                outcome.line = "{\"connection\":\(index),\"outcome\":\"connect: \(error)\"}"
                return
            }
            outcome.socket = socket
            var receivedCRC = CRC32()
            var received = 0
            let reader = startThread {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 64)
                defer { buffer.deallocate() }
                while let n = try? socket.receive(into: buffer), n > 0 {
                    receivedCRC.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                    received += n
                }
            }
            var pattern = Pattern(state: UInt64(seed + index) &* 2 &+ 1)
            var sentCRC = CRC32()
            var sent = 0
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 64)
            defer { chunk.deallocate() }
            var failure: String? = nil
            while sent < total && failure == nil {
                let n = min(chunk.count, total - sent)
                pattern.fill(UnsafeMutableRawBufferPointer(rebasing: chunk[0..<n]))
                do {
                    let piece = UnsafeRawBufferPointer(rebasing: chunk[0..<n])
                    _ = try socket.send(piece)
                    sentCRC.update(piece)
                    sent += n
                } catch { failure = "send: \(error)" }
            }
            try? socket.shutdown(.write)
            reader()
            let local = socket.localAddress
            outcome.ok = failure == nil
            outcome.line = "{\"connection\":\(index),\"outcome\":\"\(failure ?? "ok")\",\"local_port\":\(local.port),"
                + "\"core\":\(socket.channel.owner),\"sent\":\(sent),\"sent_crc\":\(sentCRC.final),"
                + "\"received\":\(received),\"received_crc\":\(receivedCRC.final)}"
        }
    }
    for join in threads { join() }
    let seconds = Double((MonotonicClock.now() - start).nanoseconds) / 1e9
    usleep(250_000) // the connection table is published every 100 ms
    for outcome in outcomes { print(outcome.line) }
    print("{\"seconds\":\(seconds),\"stats\":\(stack.statsSnapshot()?.json ?? "null")}")
    for outcome in outcomes { outcome.socket?.close() }
    exit(outcomes.allSatisfy(\.ok) ? 0 : 1)
}

/// A plain pthread running `body`; the returned closure joins it.
func startThread(_ body: @escaping () -> Void) -> () -> Void {
    final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    var thread = pthread_t()
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    let r = pthread_create(&thread, nil, { context in
        Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    guard r == 0 else { die("pthread_create: \(r)") }
    return { pthread_join(thread, nil) }
}
