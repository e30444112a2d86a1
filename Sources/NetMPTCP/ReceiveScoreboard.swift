import NetMPWire

/// Out-of-order data held past RCV.NXT, as sorted disjoint ranges; it is also where the
/// SACK blocks come from (RFC 2018 4: the block with the newest segment first).
struct ReceiveScoreboard: Sendable {
    /// At most this many holes' worth of ranges; a segment that would need more is dropped
    /// (not acknowledged), and the sender sends it again.
    static let capacity = 32
    private(set) var ranges: [(start: SequenceNumber, end: SequenceNumber)] = []
    /// The range holding the most recently received segment.
    private(set) var newest: SequenceNumber? = nil

    var isEmpty: Bool { ranges.isEmpty }

    /// Adds [start, end); false (nothing changed) when it would exceed the capacity.
    mutating func insert(_ start: SequenceNumber, _ end: SequenceNumber) -> Bool {
        var merged = (start: start, end: end)
        var kept: [(start: SequenceNumber, end: SequenceNumber)] = []
        kept.reserveCapacity(ranges.count + 1)
        for range in ranges {
            if range.end < merged.start || merged.end < range.start { kept.append(range) }
            else { merged = (min(range.start, merged.start), SequenceNumber.latest(range.end, merged.end)) }
        }
        guard kept.count < Self.capacity else { return false }
        kept.append(merged)
        kept.sort { $0.start < $1.start }
        ranges = kept
        newest = merged.start
        return true
    }

    /// Removes the ranges that start at or before `next` and returns where in-order data now
    /// ends (RCV.NXT after the gap filled).
    mutating func advance(from next: SequenceNumber) -> SequenceNumber {
        var end = next
        while let first = ranges.first, !(end < first.start) {
            end = SequenceNumber.latest(end, first.end)
            ranges.removeFirst()
        }
        if let n = newest, !ranges.contains(where: { $0.start == n }) { newest = ranges.last?.start }
        return end
    }

    /// Up to `limit` SACK blocks, the newest first, then the others from the highest.
    func blocks(limit: Int) -> [SACKBlock] {
        var result: [SACKBlock] = []
        if let n = newest, let r = ranges.first(where: { $0.start == n }) { result.append(SACKBlock(left: r.start.raw, right: r.end.raw)) }
        for r in ranges.reversed() where result.count < limit && r.start != newest {
            result.append(SACKBlock(left: r.start.raw, right: r.end.raw))
        }
        return result
    }
}
