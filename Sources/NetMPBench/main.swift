// netmp-bench: micro-benchmarks of the runtime's pieces beside C references measured in the
// same run. Scripts/bench runs it.
//
//   netmp-bench ports [--messages N] [--senders S]
//   netmp-bench requests [--messages N] [--senders S] [--spin US]
//   netmp-bench rings [--megabytes N]
//
// `ports` is the stack's own message port (core to core, private memory). `requests` and the
// second half of `rings` are what a program and the stack process share (docs/STACK-SERVICE.md):
// a client region in a memfd, mapped twice as the two processes map it, the request ring
// from application threads to a core, and a socket's receive ring placed in its slot.
import CNetMPBenchReference
import CNetMPLinux
import Glibc
import NetMPStack
import NetMPStackProcess
import NetMPSystem
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

func portRate(messages: Int, senders: Int, cpus: [Int32], spin: Int = 0) -> Double {
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
        if let m = port.receive() { received += 1; checksum &+= m.number; continue }
        if spinsBeforeSleeping(spin, { port.hasMessage }) { continue }
        port.wait()
    }
    threads.forEach { $0.join() }
    let seconds = Double((MonotonicClock.now() - start).nanoseconds) / 1e9
    precondition(checksum >= 0)
    return Double(received) / seconds
}

/// The owner (of the port, or the core taking requests) looks again, yielding between
/// looks, for up to `spin` microseconds before it sleeps, as a core does after a turn with
/// work (ProtocolLoop.spin); true when something came.
func spinsBeforeSleeping(_ spin: Int, _ waiting: () -> Bool) -> Bool {
    guard spin > 0 else { return false }
    let deadline = MonotonicClock.now() + .microseconds(UInt64(spin))
    repeat {
        if waiting() { return true }
        sched_yield()
    } while MonotonicClock.now() < deadline
    return false
}

/// Application threads posting usrreq records into a client region's request ring on shared
/// memory (through a second mapping of the memfd, as the program's), one core taking them.
/// Both sides wait as the port's do (MessagePort.wait), through the stack's own machinery: a
/// sender that posted wakes the core if it announced a sleep (CoreWaker, on the wake page);
/// the core, finding the ring empty, spins for `spin` microseconds (as ProtocolLoop does;
/// the port's owner alike), then announces a sleep, looks once more and sleeps on its
/// eventfd.
func requestRate(messages: Int, senders: Int, cpus: [Int32], spin: Int) -> Double {
    guard let region = try? ClientRegion(capacity: 16, stride: 0, cores: 1, requestCapacity: 1024, shared: true),
          let descriptor = region.descriptor, let programs = try? ClientRegion(mapping: descriptor),
          let wakePage = CoreWakePage(cores: 1, shared: true) else {
        print("netmp-bench: cannot make a shared client region")
        exit(1)
    }
    let core = RequestRing(in: region, core: 0)
    let posting = RequestRing(in: programs, core: 0)
    let port = MessagePort<Message>(capacity: 16, sleeps: wakePage.sleeps(0))
    let waker = CoreWaker(sleeps: wakePage.sleeps(0), eventfd: port.wakeupDescriptor, page: wakePage)
    _ = netmp_pin_current_thread(cpus[0])
    let perSender = messages / senders
    let start = MonotonicClock.now()
    let threads = (0..<senders).map { id in
        SenderThread {
            _ = netmp_pin_current_thread(cpus[(id + 1) % cpus.count])
            for n in 0..<perSender {
                let request = Request(.output, SocketHandle(slot: UInt32(id), generation: UInt32(truncatingIfNeeded: n)))
                while !posting.send(request) { waker.wakeIfSleeping(); sched_yield() }
                waker.wakeIfSleeping()
            }
        }
    }
    threads.forEach { $0.start() }
    var received = 0, checksum = 0
    while received < perSender * senders {
        if let request = core.receive() { received += 1; checksum &+= Int(request.handle.generation); continue }
        if spinsBeforeSleeping(spin, { core.hasRequest }) { continue }
        guard port.prepareToSleep() else { continue }
        if core.hasRequest { port.stopSleeping(); continue }
        var poller = pollfd(fd: port.wakeupDescriptor, events: Int16(POLLIN), revents: 0)
        _ = poll(&poller, 1, -1)
        if poller.revents != 0 { port.awake() } else { port.stopSleeping() }
    }
    threads.forEach { $0.join() }
    let seconds = Double((MonotonicClock.now() - start).nanoseconds) / 1e9
    precondition(checksum >= 0 && core.malformed == 0)
    withExtendedLifetime((region, programs, wakePage)) {}
    return Double(received) / seconds
}

/// A stream socket's receive ring placed in its slot of a socket table on shared memory: the
/// owner core writes through the stack's mapping, the application reads through the
/// program's. Both views stay alive until the run ends.
func sharedReceiveRings(capacity: Int) -> (owner: SocketChannel, reader: SocketChannel) {
    let stack = SocketTable(capacity: 4, stride: ClientRegion.streamStride(send: 4096, receive: capacity), shared: true)
    guard let descriptor = stack.memory.descriptor, let program = try? SocketTable(mapping: descriptor),
          let mine = SocketChannel(in: program, sendCapacity: 4096, receiveCapacity: capacity), let slot = mine.lease?.slot else {
        print("netmp-bench: cannot make a shared socket table")
        exit(1)
    }
    program.hold(slot) // for the owner's view, which adopts it
    guard let theirs = SocketChannel(adopting: slot, in: stack) else {
        print("netmp-bench: the owner cannot view the socket")
        exit(1)
    }
    return (theirs, mine)
}

/// The owner core publishing into a ReceiveRing, one application thread reading from it:
/// the receive half of the seed's socket buffer. `shared`: in a slot of a shared socket
/// table, written and read through two mappings; otherwise a ring in private memory.
func ringRate(bytes: Int, capacity: Int, chunk: Int, shared: Bool, cpus: [Int32]) -> Double {
    let views = shared ? sharedReceiveRings(capacity: capacity) : nil
    let ring = views?.owner.receive ?? ReceiveRing(capacity: capacity)
    let reader = views?.reader.receive ?? ring
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
        let n = reader.read(into: out)
        if n == 0 { sched_yield(); continue }
        sum &+= Int(out[0])
        received += n
    }
    owner.join()
    out.deallocate()
    precondition(sum >= 0)
    withExtendedLifetime(views) {}
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
case "requests":
    let messages = options["messages"] ?? 10_000_000
    // The stack's cores spin this long before they sleep (pollSpinMicroseconds).
    let spin = max(options["spin"] ?? StackConfiguration.defaultPollSpinMicroseconds, 0)
    // Fifteen: where a sender shares the core's CPU a round's ratio spreads 40-350%.
    let rounds = options["rounds"] ?? 15
    print("request ring on shared memory (64-byte records, a memfd mapped twice) beside the stack's")
    print("message port (private memory) and the C port: \(messages) each, core on CPU \(cpus[0]), senders on the others")
    print("(on a machine of two CPUs one sender shares the core's); the core and the port's owner spin \(spin) us")
    print("before they sleep, as the stack's cores do (--spin N);")
    print("\(rounds) rounds, the three back to back in each: rates are the best round's, requests/port the median")
    print("of the rounds' own ratios (lowest-highest), which a slow moment of the VM skews less")
    print("senders    requests/s     port msg/s      C msg/s   requests/C   port/C   requests/port")
    for senders in [1, options["senders"] ?? 2] {
        var requests = 0.0, port = 0.0, c = 0.0
        var ratios: [Double] = []
        for _ in 0..<rounds {
            let r = requestRate(messages: messages, senders: senders, cpus: cpus, spin: spin)
            let p = portRate(messages: messages, senders: senders, cpus: cpus, spin: spin)
            requests = max(requests, r)
            port = max(port, p)
            ratios.append(r / p)
            c = max(c, cpus.withUnsafeBufferPointer { netmp_reference_port_rate(messages, Int32(senders), $0.baseAddress, Int32(cpus.count)) })
        }
        print([String(senders).leftPadded(7), String(Int(requests)).leftPadded(14), String(Int(port)).leftPadded(14),
               String(Int(c)).leftPadded(13), percent(requests / c).leftPadded(12), percent(port / c).leftPadded(8),
               spread(ratios).leftPadded(24)].joined(separator: ""))
    }
case "rings":
    let bytes = (options["megabytes"] ?? 2048) << 20
    let rounds = options["rounds"] ?? 5
    let capacity = 256 << 10
    print("receive ring: \(bytes >> 20) MiB through a \(capacity >> 10) KiB ring, owner on CPU \(cpus[1 % cpus.count]), reader on CPU \(cpus[0]);")
    print("in private memory, and in a socket's slot of a shared table (a memfd mapped twice); \(rounds) rounds,")
    print("the three back to back in each: rates are the best round's, shared/private the median of the rounds'")
    print("own ratios (lowest-highest)")
    print(" chunk   private MB/s   shared MB/s   C MB/s   private/C   shared/C           shared/private")
    for chunk in [1448, 16 << 10, 64 << 10] {
        var own = 0.0, shared = 0.0, c = 0.0
        var ratios: [Double] = []
        for _ in 0..<rounds {
            let o = ringRate(bytes: bytes, capacity: capacity, chunk: chunk, shared: false, cpus: cpus)
            let s = ringRate(bytes: bytes, capacity: capacity, chunk: chunk, shared: true, cpus: cpus)
            own = max(own, o)
            shared = max(shared, s)
            ratios.append(s / o)
            c = max(c, cpus.withUnsafeBufferPointer { netmp_reference_ring_rate(bytes, capacity, chunk, $0.baseAddress, Int32(cpus.count)) })
        }
        print([String(chunk).leftPadded(6), String(Int(own / 1e6)).leftPadded(15), String(Int(shared / 1e6)).leftPadded(14),
               String(Int(c / 1e6)).leftPadded(9), percent(own / c).leftPadded(12), percent(shared / c).leftPadded(11),
               spread(ratios).leftPadded(25)].joined(separator: ""))
    }
default:
    print("usage: netmp-bench ports [--messages N] [--senders S] | requests [--messages N] [--senders S] [--rounds R] [--spin US]")
    print("       | rings [--megabytes N] [--rounds R]")
    exit(2)
}

func percent(_ ratio: Double) -> String { String(Int((ratio * 100).rounded())) + "%" }

/// The median of `ratios` with their lowest and highest: "103% (62-112%)".
func spread(_ ratios: [Double]) -> String {
    let sorted = ratios.sorted()
    let middle = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    return percent(middle) + " (" + String(percent(sorted[0]).dropLast()) + "-" + percent(sorted[sorted.count - 1]) + ")"
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
