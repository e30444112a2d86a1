import Glibc
import NetMPWire
import Synchronization

/// A capture in progress: pcapng into a file or pipe, one interface per core. The cores
/// write blocks into their rings (`CaptureRing`); this object's thread moves them to the
/// descriptor every millisecond or so, one write(2) per contiguous run, and ends the
/// capture at its packet or byte limit. Nothing of it exists, and the cores test one nil
/// reference per frame, while no capture runs.
public final class CaptureSession: @unchecked Sendable {
    public struct Options: Sendable {
        public var filter: CaptureFilter?
        /// Bytes kept of each frame (tcpdump's -s; its default).
        public var snapLength = 262_144
        /// Stop after this many packets or bytes written (0: no limit).
        public var packetLimit: UInt64 = 0
        public var byteLimit: UInt64 = 0
        public init(filter: CaptureFilter? = nil, snapLength: Int = 262_144, packetLimit: UInt64 = 0, byteLimit: UInt64 = 0) {
            self.filter = filter; self.snapLength = snapLength; self.packetLimit = packetLimit; self.byteLimit = byteLimit
        }
    }

    public struct Summary: Sendable, Equatable {
        /// Packets written to the file, and packets the cores dropped for a full ring.
        public var written: UInt64
        public var dropped: UInt64
        public var bytes: UInt64
        /// Why it ended early: the limit, or the errno of a failed write (0: neither).
        public var limitReached: Bool
        public var writeError: Int32
    }

    public let rings: [CaptureRing]
    let fd: Int32
    let options: Options
    let stopping = Atomic<Bool>(false)
    /// Set by the writer when the capture can take no more (limit, failed write): the
    /// service then ends it.
    let ended = Atomic<Bool>(false)
    let writtenPackets = Atomic<UInt64>(0)
    let writtenBytes = Atomic<UInt64>(0)
    let failure = Atomic<Int32>(0)
    let limitHit = Atomic<Bool>(false)
    var thread = pthread_t()
    var started = false
    var closed = false
    /// Per core: 16 MiB, a few milliseconds of a core's traffic at full speed.
    public static let ringCapacity = 16 << 20

    /// Writes the file's header (the section, one Ethernet interface per core) to `fd`,
    /// which the session owns from now on. Throws the errno of a failed write.
    public init(fd: Int32, cores: Int, options: Options, ringCapacity: Int = CaptureSession.ringCapacity) throws(StackProcessError) {
        self.fd = fd
        self.options = options
        var realtime = timespec(), monotonic = timespec()
        clock_gettime(CLOCK_REALTIME, &realtime)
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        let offset = (UInt64(realtime.tv_sec) &* 1_000_000_000 &+ UInt64(realtime.tv_nsec))
            &- (UInt64(monotonic.tv_sec) &* 1_000_000_000 &+ UInt64(monotonic.tv_nsec))
        let snap = max(64, min(options.snapLength, 262_144))
        rings = (0..<cores).map {
            CaptureRing(interface: UInt32($0), capacity: max(ringCapacity, PcapNG.packetLength(captured: snap) * 4),
                        filter: options.filter, snapLength: snap, clockOffset: offset)
        }
        let header = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 + cores * 64, alignment: 8)
        defer { header.deallocate() }
        var at = PcapNG.writeSectionHeader(application: "netmp", into: header)
        for core in 0..<cores {
            at += PcapNG.writeInterface(name: "netmp-core\(core)", snapLength: UInt32(snap),
                                        into: UnsafeMutableRawBufferPointer(rebasing: header[at...]))
        }
        guard writeAll(UnsafeRawBufferPointer(rebasing: header[0..<at])) else {
            closed = true
            close(fd)
            throw .capture(errno: failure.load(ordering: .relaxed))
        }
    }

    /// Starts the writer thread.
    public func start() throws(StackProcessError) {
        thread = try startStackThread { self.run() }
        started = true
    }

    /// True once the capture can take nothing more (its limit, a failed write).
    public var hasEnded: Bool { ended.load(ordering: .acquiring) }

    /// Ends the capture once the cores no longer write into the rings: the writer takes
    /// what they hold, closes the file and leaves. Returns what was captured.
    public func finish() -> Summary {
        if started {
            stopping.store(true, ordering: .releasing)
            pthread_join(thread, nil)
            started = false
        }
        if !closed { close(fd); closed = true }
        return summary
    }

    deinit { if !closed { _ = finish() } }

    public var summary: Summary {
        Summary(written: writtenPackets.load(ordering: .relaxed),
                dropped: rings.reduce(0) { $0 + $1.dropped.load(ordering: .relaxed) },
                bytes: writtenBytes.load(ordering: .relaxed),
                limitReached: limitHit.load(ordering: .relaxed), writeError: failure.load(ordering: .relaxed))
    }

    func run() {
        while true {
            let last = stopping.load(ordering: .acquiring)
            var moved = 0
            if !ended.load(ordering: .relaxed) {
                for ring in rings { moved += ring.drain { run, blocks in take(run, blocks) } }
            }
            if last { return }
            if moved == 0 { usleep(1_000) }
        }
    }

    /// Writes as many of `blocks` (the lengths of the blocks in `run`) as the limits allow.
    func take(_ run: UnsafeRawBufferPointer, _ blocks: [Int]) -> Int {
        var count = blocks.count
        if options.packetLimit > 0 {
            let room = options.packetLimit - min(options.packetLimit, writtenPackets.load(ordering: .relaxed))
            count = min(count, Int(min(room, UInt64(Int.max))))
        }
        var bytes = blocks.prefix(count).reduce(0, +)
        if options.byteLimit > 0 {
            var room = options.byteLimit - min(options.byteLimit, writtenBytes.load(ordering: .relaxed))
            var fitting = 0
            bytes = 0
            for length in blocks.prefix(count) where UInt64(length) <= room {
                room -= UInt64(length); bytes += length; fitting += 1
            }
            count = fitting
        }
        if count > 0 {
            guard writeAll(UnsafeRawBufferPointer(rebasing: run[0..<bytes])) else {
                ended.store(true, ordering: .releasing)
                return 0
            }
            writtenPackets.add(UInt64(count), ordering: .relaxed)
            writtenBytes.add(UInt64(bytes), ordering: .relaxed)
        }
        if count < blocks.count {
            limitHit.store(true, ordering: .relaxed)
            ended.store(true, ordering: .releasing)
        }
        return count
    }

    /// The whole of `bytes` to the descriptor (a pipe may take part of a write); false
    /// with the errno kept if it fails (EPIPE: the reader went away).
    func writeAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var at = 0
        while at < bytes.count {
            let n = write(fd, bytes.baseAddress! + at, bytes.count - at)
            if n < 0 {
                if errno == EINTR { continue }
                failure.store(errno, ordering: .relaxed)
                return false
            }
            at += n
        }
        return true
    }
}
