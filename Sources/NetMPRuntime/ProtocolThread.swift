import CNetMPLinux
import Glibc
import NetMPLink
import NetMPStack
import NetMPWire

/// Writes the host's frames to this thread's TAP queue.
struct QueueSink: FrameSink {
    let queue: TAPQueue
    var failed: LinkError? = nil
    var writeErrors: UInt64 = 0

    mutating func transmit(_ frame: UnsafeRawBufferPointer) {
        do { try queue.transmit(frame) } catch {
            writeErrors &+= 1
            if error == .deviceGone { failed = error }
        }
    }
}

/// One protocol thread: pinned to a CPU, it alone reads its TAP queue and runs the host on
/// what arrives. It sleeps in poll(2) until a frame arrives or the next timer is due.
public final class ProtocolThread: @unchecked Sendable {
    public let core: Int
    public let cpu: Int
    let host: Host
    let queue: TAPQueue
    let stats: StatsPage?
    let log: Log
    /// Frames handled between two looks at the clock and the timers.
    static let batch = 64

    init(core: Int, cpu: Int, host: Host, queue: TAPQueue, stats: StatsPage?, log: Log) {
        self.core = core; self.cpu = cpu; self.host = host; self.queue = queue; self.stats = stats; self.log = log
    }

    func start() throws(RuntimeError) {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        // The program's signals must not land on this thread: block them all while creating
        // it, so it starts with everything blocked, and restore the caller's mask after.
        var all = sigset_t(), previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_SETMASK, &all, &previous)
        let r = pthread_create(&thread, nil, { context in
            Unmanaged<ProtocolThread>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        guard r == 0 else {
            Unmanaged<ProtocolThread>.fromOpaque(context).release()
            throw .threadFailed(errno: r)
        }
        pthread_detach(thread)
    }

    func run() {
        let pinned = netmp_pin_current_thread(Int32(cpu))
        if pinned != 0 { log.info("core \(core): cannot pin to CPU \(cpu) (errno \(-pinned)); running unpinned") }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536 + 64, alignment: 64)
        defer { buffer.deallocate() }
        var sink = QueueSink(queue: queue)
        host.announce(sink: &sink)
        log.info("core \(core): up on CPU \(cpu), \(host.address) at \(host.mac), TAP queue \(queue.index)")
        var poller = pollfd(fd: queue.fd, events: Int16(POLLIN), revents: 0)
        while sink.failed == nil {
            var now = MonotonicClock.now()
            var timeout: Int32 = -1
            if let deadline = host.nextDeadline {
                let wait = deadline - now
                timeout = Int32(min((wait.nanoseconds + 999_999) / 1_000_000, 60_000))
            }
            _ = poll(&poller, 1, timeout)
            now = MonotonicClock.now()
            do {
                for _ in 0..<Self.batch {
                    guard let (_, frame) = try queue.receive(into: buffer) else { break }
                    host.receive(frame: frame, now: now, sink: &sink)
                }
            } catch {
                if error == .deviceGone { sink.failed = error; break }
                log.debug("core \(core): \(error)")
            }
            host.tick(now: now, sink: &sink)
            stats?.publish(core: core, counters: host.counters, neighbours: host.arp.count)
        }
        log.error("core \(core): stopped: \(sink.failed?.description ?? "?")")
    }
}
