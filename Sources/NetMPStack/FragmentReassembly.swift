import NetMPWire

/// One core's reassembly of fragmented IPv4 and IPv6 packets (RFC 791, RFC 8200 4.5). The
/// kernel's TAP hashes every fragment of a packet by its addresses alone, so all of them
/// reach the same queue and the same core: reassembly needs no other core.
///
/// Memory is bounded: at most `maximumPackets` packets wait at once, each in a buffer of the
/// largest packet, taken from a pool that grows to that number and is reused (so a flood
/// of fragments allocates nothing after the pool is full); one source holds at most
/// `perSource` of them, so a flood from one source cannot starve another's. A new packet
/// that finds no room evicts the oldest waiting one (its source's own oldest when that
/// source is at its share). A packet not complete within the timeout (30 s for IPv4 as
/// Linux's ipfrag_time, 60 s for IPv6 as RFC 8200 asks) is abandoned.
///
/// Fragments are kept by their bounds, not merged: an exact repeat (the path duplicated a
/// fragment) is dropped alone, any other overlap abandons the whole packet (RFC 5722 for
/// IPv6; Linux does the same for IPv4 since FragmentSmack), as do a fragment past 64 KiB,
/// a middle fragment whose length is not a multiple of 8, a last fragment that disagrees
/// with an earlier one, and more than `maximumFragments` fragments.
public final class FragmentReassembly {
    /// Which packet a fragment belongs to: RFC 791's (source, destination, protocol,
    /// identification); IPv6's has no protocol (0) and a 32-bit identification.
    public struct Key: Hashable, Sendable {
        public var source: IPAddress
        public var destination: IPAddress
        public var identification: UInt32
        public var proto: UInt8
        public init(source: IPAddress, destination: IPAddress, identification: UInt32, proto: UInt8) {
            self.source = source; self.destination = destination; self.identification = identification; self.proto = proto
        }
    }

    public static let maximumPackets = 64
    public static let perSource = 16
    public static let maximumFragments = 128
    public static let timeoutIPv4 = Interval.seconds(30)
    public static let timeoutIPv6 = Interval.seconds(60)
    /// The longest unfragmentable part kept (the IPv4 header, or IPv6's header and the
    /// extension headers in front of the fragment header).
    public static let maximumHeader = 512
    /// Where a packet's data starts in its buffer: its header is written just in front.
    static let dataStart = maximumHeader
    static let bufferSize = maximumHeader + 65_536

    /// A packet being put together.
    final class Packet {
        let buffer: UnsafeMutableRawBufferPointer
        var key = Key(source: IPAddress(IPv4Address.any), destination: IPAddress(IPv4Address.any), identification: 0, proto: 0)
        var ipv6 = false
        /// The fragments' bounds in the data, in arrival order.
        var pieces: [(start: Int, end: Int)] = []
        var received = 0
        /// The data's length, once the last fragment came.
        var total: Int?
        /// The first fragment's unfragmentable part, once it came (its length).
        var headerLength: Int?
        var started = Instant.zero
        var deadline = Instant.zero

        init() {
            buffer = .allocate(byteCount: FragmentReassembly.bufferSize, alignment: 16)
            pieces.reserveCapacity(FragmentReassembly.maximumFragments)
        }
        deinit { buffer.deallocate() }

        func reset(_ key: Key, ipv6: Bool, now: Instant) {
            self.key = key
            self.ipv6 = ipv6
            pieces.removeAll(keepingCapacity: true)
            received = 0
            total = nil
            headerLength = nil
            started = now
            deadline = now + (ipv6 ? FragmentReassembly.timeoutIPv6 : FragmentReassembly.timeoutIPv4)
        }
    }

    /// A whole packet: its unfragmentable part (as the first fragment had it) and then all
    /// its data, contiguous. The caller fixes the header's length and fragment fields, uses
    /// the packet, and gives it back (`recycle`).
    public struct Whole {
        public let packet: UnsafeMutableRawBufferPointer
        public let headerLength: Int
        let holder: Packet
    }

    public enum Outcome {
        case incomplete
        case whole(Whole)
        /// The fragment (or the packet it belonged to) was dropped, for this reason.
        case dropped(PolicyDrop)
    }

    var waiting: [Key: Packet] = [:]
    var free: [Packet] = []
    var bySource: [IPAddress: Int] = [:]
    /// Packets abandoned for want of room since the last `takeEvictions` (the host counts
    /// them as drops).
    var evictedSinceTaken = 0

    public init() {}

    public var packetsWaiting: Int { waiting.count }
    public var nextDeadline: Instant? { waiting.values.lazy.map(\.deadline).min() }

    /// Adds one fragment: `data` at `offset` of the packet's data, the last one unless
    /// `moreFragments`; `header` is its unfragmentable part (kept from the fragment at
    /// offset 0). `limit`: the most data the packet may hold (its length field's bound).
    public func add(_ key: Key, ipv6: Bool, header: UnsafeRawBufferPointer, offset: Int, moreFragments: Bool,
                    data: UnsafeRawBufferPointer, limit: Int, now: Instant) -> Outcome {
        let end = offset + data.count
        guard end <= limit, header.count <= Self.maximumHeader else { abandon(key); return .dropped(.fragmentTooLarge) }
        guard !moreFragments || data.count % 8 == 0, data.count > 0 || !moreFragments else {
            abandon(key); return .dropped(.fragmentBadLength)
        }
        let packet = waiting[key] ?? start(key, ipv6: ipv6, now: now)
        for piece in packet.pieces {
            if piece.start == offset && piece.end == end { return .dropped(.fragmentDuplicate) }
            if offset < piece.end && piece.start < end { abandon(key); return .dropped(.fragmentOverlap) }
        }
        if let total = packet.total, end > total || (!moreFragments && end != total) {
            abandon(key); return .dropped(.fragmentBadLength)
        }
        if !moreFragments {
            // Data already held past the end this one gives is an overlap of another kind.
            if packet.pieces.contains(where: { $0.end > end }) { abandon(key); return .dropped(.fragmentBadLength) }
            packet.total = end
        }
        guard packet.pieces.count < Self.maximumFragments else { abandon(key); return .dropped(.fragmentTooMany) }
        packet.pieces.append((offset, end))
        packet.received += data.count
        UnsafeMutableRawBufferPointer(rebasing: packet.buffer[(Self.dataStart + offset)..<(Self.dataStart + end)]).copyMemory(from: data)
        if offset == 0 {
            packet.headerLength = header.count
            UnsafeMutableRawBufferPointer(rebasing: packet.buffer[(Self.dataStart - header.count)..<Self.dataStart]).copyMemory(from: header)
        }
        guard let total = packet.total, let headerLength = packet.headerLength, packet.received == total else { return .incomplete }
        // No overlaps and as many bytes as the packet holds: every byte is there.
        waiting[key] = nil
        leave(key.source)
        let whole = UnsafeMutableRawBufferPointer(rebasing: packet.buffer[(Self.dataStart - headerLength)..<(Self.dataStart + total)])
        return .whole(Whole(packet: whole, headerLength: headerLength, holder: packet))
    }

    /// A whole packet's buffer goes back to the pool.
    public func recycle(_ whole: Whole) { free.append(whole.holder) }

    /// How many waiting packets were abandoned for a newer one's room since the last call.
    public func takeEvictions() -> Int {
        defer { evictedSinceTaken = 0 }
        return evictedSinceTaken
    }

    /// Abandons the packets whose time is up, and returns how many. `first` sees each one
    /// whose first fragment came (an ICMP time exceeded quotes it): its key, its family,
    /// and that fragment as kept (the unfragmentable part, then its data).
    public func expire(now: Instant, _ first: (Key, _ ipv6: Bool, _ fragment: UnsafeRawBufferPointer) -> Void) -> Int {
        var expired = 0
        for (key, packet) in waiting where packet.deadline <= now {
            if let headerLength = packet.headerLength, let piece = packet.pieces.first(where: { $0.start == 0 }) {
                first(key, packet.ipv6,
                      UnsafeRawBufferPointer(rebasing: packet.buffer[(Self.dataStart - headerLength)..<(Self.dataStart + piece.end)]))
            }
            abandon(key)
            expired += 1
        }
        return expired
    }

    /// A packet for `key`, in a pooled buffer: room is made first, from the source's own
    /// oldest when it holds its share, else from the oldest of all.
    func start(_ key: Key, ipv6: Bool, now: Instant) -> Packet {
        if bySource[key.source, default: 0] >= Self.perSource {
            evictOldest { $0.source == key.source }
        } else if waiting.count >= Self.maximumPackets {
            evictOldest { _ in true }
        }
        let packet = free.popLast() ?? Packet()
        packet.reset(key, ipv6: ipv6, now: now)
        waiting[key] = packet
        bySource[key.source, default: 0] += 1
        return packet
    }

    func evictOldest(where matches: (Key) -> Bool) {
        guard let oldest = waiting.filter({ matches($0.key) }).min(by: { $0.value.started < $1.value.started }) else { return }
        abandon(oldest.key)
        evictedSinceTaken += 1
    }

    func abandon(_ key: Key) {
        guard let packet = waiting.removeValue(forKey: key) else { return }
        leave(key.source)
        free.append(packet)
    }

    func leave(_ source: IPAddress) {
        let left = bySource[source, default: 1] - 1
        bySource[source] = left > 0 ? left : nil
    }
}
