import CNetMPLinux
import Glibc
import NetMPLink
import NetMPStack
import NetMPWire

/// Writes the host's frames to one TAP queue.
public struct QueueSink: FrameSink {
    let queue: TAPQueue
    public internal(set) var failed: LinkError? = nil
    public internal(set) var writeErrors: UInt64 = 0
    /// Test impairments for both directions of this queue (nil: none, the normal case).
    public var faults: FaultInjector? = nil
    /// The time of the batch being handled, for the fault injector's delays.
    var now = Instant.zero

    public init(queue: TAPQueue) { self.queue = queue }

    public mutating func transmit(_ frame: UnsafeRawBufferPointer) {
        if faults != nil {
            for copy in faults!.admit(frame, .outbound, now: now) { copy.withUnsafeBytes { write($0) } }
            return
        }
        write(frame)
    }

    mutating func write(_ frame: UnsafeRawBufferPointer) {
        do { try queue.transmit(frame) } catch {
            writeErrors &+= 1
            if error == .deviceGone { failed = error }
        }
    }
}

/// One turn of a protocol thread's work: wait for frames or the next timer, handle a batch
/// of frames, run the timers, publish the counters. The thread loops on it; a test driver
/// that hosts the stack on its own thread calls it between its own steps.
public final class ProtocolLoop {
    public let host: Host
    public let queue: TAPQueue
    public var sink: QueueSink
    let stats: StatsPage?
    let core: Int
    let buffer: UnsafeMutableRawBufferPointer
    /// Frames handled between two looks at the clock and the timers.
    static let batch = 64

    public init(host: Host, queue: TAPQueue, stats: StatsPage?, core: Int) {
        self.host = host; self.queue = queue; self.stats = stats; self.core = core
        sink = QueueSink(queue: queue)
        buffer = .allocate(byteCount: 65_536 + 64, alignment: 64)
    }
    deinit { buffer.deallocate() }

    public func announce() { host.announce(sink: &sink) }

    /// Waits at most `maximumWait` (or until the next timer), then handles what arrived.
    public func runOnce(maximumWait: Interval? = nil) throws(LinkError) {
        var now = MonotonicClock.now()
        var wait = maximumWait
        func consider(_ deadline: Instant?) {
            guard let deadline else { return }
            let untilTimer = deadline - now
            if wait == nil || untilTimer < wait! { wait = untilTimer }
        }
        consider(host.nextDeadline)
        consider(sink.faults?.nextRelease)
        let timeout: Int32 = wait.map { Int32(min(($0.nanoseconds + 999_999) / 1_000_000, 60_000)) } ?? -1
        var poller = pollfd(fd: queue.fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&poller, 1, timeout)
        now = MonotonicClock.now()
        sink.now = now
        if sink.faults != nil { releaseHeldFrames(now: now) }
        for _ in 0..<Self.batch {
            guard let (_, frame) = try queue.receive(into: buffer) else { break }
            if sink.faults != nil {
                for copy in sink.faults!.admit(frame, .inbound, now: now) {
                    copy.withUnsafeBytes { host.receive(frame: $0, now: now, sink: &sink) }
                }
            } else {
                host.receive(frame: frame, now: now, sink: &sink)
            }
        }
        host.tick(now: now, sink: &sink)
        stats?.publish(core: core, counters: host.counters, neighbours: host.arp.count)
        if let failed = sink.failed { throw failed }
    }

    /// Frames the fault injector delayed, now due, in either direction.
    func releaseHeldFrames(now: Instant) {
        for (direction, frame) in sink.faults!.release(now: now) {
            frame.withUnsafeBytes { bytes in
                if direction == .inbound { host.receive(frame: bytes, now: now, sink: &sink) } else { sink.write(bytes) }
            }
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
        let loop = ProtocolLoop(host: host, queue: queue, stats: stats, core: core)
        loop.announce()
        log.info("core \(core): up on CPU \(cpu), \(host.address) at \(host.mac), TAP queue \(queue.index)")
        while true {
            do { try loop.runOnce() } catch {
                if error == .deviceGone { log.error("core \(core): stopped: \(error)"); return }
                log.debug("core \(core): \(error)")
            }
        }
    }
}
