import Glibc
import NetMPSystem
import NetMPWire
import Synchronization

/// One core's side of a capture: a single-producer, single-consumer ring of pcapng
/// enhanced packet blocks. The core (the producer) writes each frame it sends or receives
/// straight into the ring as a finished block, already filtered and cut to the snap
/// length, so the capture's writer thread only hands contiguous runs of bytes to write(2).
/// A full ring drops the frame and counts it (the core never waits for the file).
///
/// Positions are byte counts that only grow; a block never wraps: when one does not fit
/// before the end, the producer writes a zero word there (pcapng has no block type 0) and
/// starts the block at the beginning.
public final class CaptureRing: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    let capacity: Int
    /// Bytes published by the core (release) and bytes the writer is done with (release).
    let head = Atomic<Int>(0)
    let tail = Atomic<Int>(0)
    /// The producer's last look at `tail` (it reads the shared word only when this one
    /// says the ring is full).
    var knownTail = 0
    let interface: UInt32
    let filter: CaptureFilter?
    let snapLength: Int
    /// Wall-clock nanoseconds minus monotonic ones when the capture started: the blocks'
    /// timestamps are the epoch's, as readers expect.
    let clockOffset: UInt64
    /// Frames written into the ring and frames dropped because it was full (the core's
    /// counts; the writer reads them for the summary).
    let captured = Atomic<UInt64>(0)
    let dropped = Atomic<UInt64>(0)

    init(interface: UInt32, capacity: Int, filter: CaptureFilter?, snapLength: Int, clockOffset: UInt64) {
        precondition(capacity % 4 == 0 && capacity >= PcapNG.packetLength(captured: snapLength))
        self.capacity = capacity
        self.interface = interface; self.filter = filter; self.snapLength = snapLength; self.clockOffset = clockOffset
        let mapped = mmap(nil, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        precondition(mapped != MAP_FAILED, "capture ring: cannot map \(capacity) bytes")
        bytes = UnsafeMutableRawBufferPointer(start: mapped, count: capacity)
    }

    deinit { munmap(bytes.baseAddress, capacity) }

    /// The core's call for every frame it sends (`outbound`) or reads (`inbound`).
    @inline(__always)
    public func record(_ frame: UnsafeRawBufferPointer, _ direction: PcapNG.Direction) {
        if let filter, !filter.matches(frame) { return }
        let length = PcapNG.packetLength(captured: min(frame.count, snapLength))
        var position = head.load(ordering: .relaxed)
        let offset = position % capacity
        let skip = offset + length > capacity ? capacity - offset : 0
        if position + skip + length - knownTail > capacity {
            knownTail = tail.load(ordering: .acquiring)
            if position + skip + length - knownTail > capacity {
                dropped.add(1, ordering: .relaxed)
                return
            }
        }
        if skip > 0 {
            bytes.storeBytes(of: UInt32(0), toByteOffset: offset, as: UInt32.self)
            position += skip
        }
        let start = position % capacity
        _ = PcapNG.writePacket(frame, interface: interface, nanoseconds: MonotonicClock.now().nanoseconds &+ clockOffset,
                               direction: direction, snapLength: snapLength,
                               into: UnsafeMutableRawBufferPointer(rebasing: bytes[start..<start + length]))
        head.store(position + length, ordering: .releasing)
        captured.add(1, ordering: .relaxed)
    }

    /// The writer's call: hands each contiguous run of whole blocks to `write`, which
    /// takes a prefix of the run's blocks (their count and bytes) and may take fewer, 0 to
    /// stop (a limit reached, a failed file). Returns the blocks taken.
    func drain(_ write: (UnsafeRawBufferPointer, _ blocks: [Int]) -> Int) -> Int {
        var position = tail.load(ordering: .relaxed)
        let end = head.load(ordering: .acquiring)
        var taken = 0
        var lengths: [Int] = []
        while position < end {
            let offset = position % capacity
            if capacity - offset < 12 || bytes.load(fromByteOffset: offset, as: UInt32.self) == 0 {
                position += capacity - offset // the producer's skip to the beginning
                continue
            }
            // The run: blocks back to back up to the end of what is published or of the ring.
            lengths.removeAll(keepingCapacity: true)
            var runEnd = offset
            while position + (runEnd - offset) < end, capacity - runEnd >= 12,
                  bytes.load(fromByteOffset: runEnd, as: UInt32.self) != 0 {
                let length = Int(bytes.load(fromByteOffset: runEnd + 4, as: UInt32.self))
                lengths.append(length)
                runEnd += length
            }
            let took = write(UnsafeRawBufferPointer(rebasing: bytes[offset..<runEnd]), lengths)
            position += lengths.prefix(took).reduce(0, +)
            taken += took
            tail.store(position, ordering: .releasing)
            if took < lengths.count { break }
        }
        return taken
    }
}
