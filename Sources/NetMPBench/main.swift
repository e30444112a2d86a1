// netmp-bench: micro-benchmarks of the runtime's pieces beside C references measured in the
// same run. Scripts/bench runs it.
//
//   netmp-bench ports [--messages N] [--senders S]
//   netmp-bench rings [--megabytes N]
import CNetMPBenchReference
import CNetMPLinux
import Glibc
import NetMPRuntime
import NetMPStack
import NetMPWire

struct Message { var sender: Int; var number: Int }

/// Threads pinned like the C reference: the owner on the first CPU, senders round-robin.
final class SenderThread {
    let body: () -> Void
    var thread = pthread_t()
    init(_ body: @escaping () -> Void) { self.body = body }
    func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { c in
            Unmanaged<SenderThread>.fromOpaque(c!).takeRetainedValue().body()
            return nil
        }, context)
    }
    func join() { pthread_join(thread, nil) }
}

func portRate(messages: Int, senders: Int, cpus: [Int32]) -> Double {
    let port = MessagePort<Message>(capacity: 1024)
    _ = netmp_pin_current_thread(cpus[0])
    let perSender = messages / senders
    let start = MonotonicClock.now()
    let threads = (0..<senders).map { id in
        SenderThread {
            _ = netmp_pin_current_thread(cpus[(id + 1) % cpus.count])
            for n in 0..<perSender { while !port.send(Message(sender: id, number: n)) { sched_yield() } }
        }
    }
    threads.forEach { $0.start() }
    var received = 0, checksum = 0
    while received < perSender * senders {
        if let m = port.receive() { received += 1; checksum &+= m.number } else { port.wait() }
    }
    threads.forEach { $0.join() }
    let seconds = Double((MonotonicClock.now() - start).nanoseconds) / 1e9
    precondition(checksum >= 0)
    return Double(received) / seconds
}

/// The owner core publishing into a ReceiveRing, one application thread reading from it:
/// the receive half of the seed's socket buffer, as the runtime will use it.
func ringRate(bytes: Int, capacity: Int, chunk: Int, cpus: [Int32]) -> Double {
    let ring = ReceiveRing(capacity: capacity)
    _ = netmp_pin_current_thread(cpus[0])
    let start = MonotonicClock.now()
    let owner = SenderThread {
        _ = netmp_pin_current_thread(cpus[1 % cpus.count])
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        data.initializeMemory(as: UInt8.self, repeating: 0x5A)
        var sent = 0
        while sent < bytes {
            let n = min(chunk, ring.free, bytes - sent)
            guard n > 0 else { sched_yield(); continue }
            ring.write(UnsafeRawBufferPointer(rebasing: data[0..<n]), at: 0)
            ring.publish(n)
            sent += n
        }
        data.deallocate()
    }
    owner.start()
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
    var received = 0, sum = 0
    while received < bytes {
        let n = ring.read(into: out)
        if n == 0 { sched_yield(); continue }
        sum &+= Int(out[0])
        received += n
    }
    owner.join()
    out.deallocate()
    precondition(sum >= 0)
    return Double(received) / (Double((MonotonicClock.now() - start).nanoseconds) / 1e9)
}

var options: [String: Int] = [:]
var arguments = CommandLine.arguments.dropFirst()
let command = arguments.first ?? "ports"
arguments = arguments.dropFirst()
while let flag = arguments.first, let value = arguments.dropFirst().first.flatMap({ Int($0) }) {
    options[String(flag.dropFirst(2))] = value
    arguments = arguments.dropFirst(2)
}
var cpuList = [Int32](repeating: 0, count: 256)
let cpuCount = Int(netmp_allowed_cpus(&cpuList, 256))
let cpus = Array(cpuList[0..<max(cpuCount, 1)])

switch command {
case "ports":
    let messages = options["messages"] ?? 10_000_000
    print("message port: \(messages) messages, owner on CPU \(cpus[0]), senders on the other CPUs")
    print("senders    netmp msg/s     C msg/s   netmp/C")
    for senders in [1, options["senders"] ?? 2] {
        // Alternate the two so neither always runs on a cold machine; best of three each.
        var swift = 0.0, c = 0.0
        for _ in 0..<3 {
            swift = max(swift, portRate(messages: messages, senders: senders, cpus: cpus))
            c = max(c, cpus.withUnsafeBufferPointer { netmp_reference_port_rate(messages, Int32(senders), $0.baseAddress, Int32(cpus.count)) })
        }
        let ratio: String = String(Int(swift / c * 100)) + "%"
        let columns: [String] = [String(senders).leftPadded(7) + "   ",
                                 String(Int(swift)).leftPadded(11), String(Int(c)).leftPadded(12), "   " + ratio]
        print(columns.joined())
    }
case "rings":
    let bytes = (options["megabytes"] ?? 2048) << 20
    let capacity = 256 << 10
    print("receive ring: \(bytes >> 20) MiB through a \(capacity >> 10) KiB ring, owner on CPU \(cpus[1 % cpus.count]), reader on CPU \(cpus[0])")
    print("chunk       netmp MB/s      C MB/s   netmp/C")
    for chunk in [1448, 16 << 10, 64 << 10] {
        var swift = 0.0, c = 0.0
        for _ in 0..<3 {
            swift = max(swift, ringRate(bytes: bytes, capacity: capacity, chunk: chunk, cpus: cpus))
            c = max(c, cpus.withUnsafeBufferPointer { netmp_reference_ring_rate(bytes, capacity, chunk, $0.baseAddress, Int32(cpus.count)) })
        }
        let ratio: String = String(Int(swift / c * 100)) + "%"
        let columns: [String] = [String(chunk).leftPadded(6) + "  ", String(Int(swift / 1e6)).leftPadded(13),
                                 String(Int(c / 1e6)).leftPadded(12), "   " + ratio]
        print(columns.joined())
    }
default:
    print("usage: netmp-bench ports [--messages N] [--senders S] | rings [--megabytes N]")
    exit(2)
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
