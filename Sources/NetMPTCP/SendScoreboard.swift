import NetMPWire

/// The sender's SACK scoreboard (RFC 6675 2): which bytes above SND.UNA the receiver holds,
/// as sorted disjoint ranges, and the loss-recovery questions RFC 6675 asks of it.
struct SendScoreboard: Sendable {
    private(set) var ranges: [(start: SequenceNumber, end: SequenceNumber)] = []
    /// Bytes in all ranges.
    private(set) var sackedBytes = 0

    var isEmpty: Bool { ranges.isEmpty }
    var highestSacked: SequenceNumber? { ranges.last?.end }

    /// Records the blocks of an arriving ACK; blocks outside (SND.UNA, SND.MAX] are ignored
    /// (RFC 2018 allows old or bogus ones; a D-SACK below SND.UNA is one).
    mutating func record(_ options: TCPOptions, unacknowledged: SequenceNumber, maximum: SequenceNumber) {
        for i in 0..<options.sackCount {
            let block = options.sackBlock(i)
            let start = SequenceNumber(block.left), end = SequenceNumber(block.right)
            guard unacknowledged < end, start < end, end <= maximum, !(start < unacknowledged) else { continue }
            insert(start, end)
        }
    }

    mutating func insert(_ start: SequenceNumber, _ end: SequenceNumber) {
        var merged = (start: start, end: end)
        var kept: [(start: SequenceNumber, end: SequenceNumber)] = []
        for range in ranges {
            if range.end < merged.start || merged.end < range.start { kept.append(range) }
            else { merged = (min(range.start, merged.start), SequenceNumber.latest(range.end, merged.end)) }
        }
        kept.append(merged)
        kept.sort { $0.start < $1.start }
        ranges = kept
        sackedBytes = ranges.reduce(0) { $0 + ($1.end - $1.start) }
    }

    /// SND.UNA advanced: forget what it covers.
    mutating func acknowledge(upTo unacknowledged: SequenceNumber) {
        guard let first = ranges.first, first.start < unacknowledged else { return }
        ranges = ranges.compactMap { r in
            if r.end <= unacknowledged { return nil }
            return (SequenceNumber.latest(r.start, unacknowledged), r.end)
        }
        sackedBytes = ranges.reduce(0) { $0 + ($1.end - $1.start) }
    }

    mutating func clear() { ranges = []; sackedBytes = 0 }

    /// The end of the SACKed range holding `sequence`, if it is SACKed.
    func sackedRangeEnd(containing sequence: SequenceNumber) -> SequenceNumber? {
        ranges.first { $0.start <= sequence && sequence < $0.end }?.end
    }

    /// Bytes SACKed above `sequence`.
    func sackedBytes(above sequence: SequenceNumber) -> Int {
        ranges.reduce(0) { total, r in
            r.end <= sequence ? total : total + (r.end - SequenceNumber.latest(r.start, sequence))
        }
    }

    /// RFC 6675 IsLost: more than (DupThresh - 1) * SMSS bytes SACKed above `sequence`.
    func isLost(_ sequence: SequenceNumber, mss: Int, threshold: Int) -> Bool {
        sackedBytes(above: sequence) > (threshold - 1) * mss
    }

    /// RFC 6675 NextSeg rule 1: the first unSACKed hole at or above `from` that is lost,
    /// as (start, length up to the next SACKed range).
    func nextLostHole(from: SequenceNumber, mss: Int, threshold: Int) -> (SequenceNumber, Int)? {
        var cursor = from
        for r in ranges {
            if cursor < r.start {
                guard isLost(cursor, mss: mss, threshold: threshold) else { return nil }
                return (cursor, r.start - cursor)
            }
            cursor = SequenceNumber.latest(cursor, r.end)
        }
        return nil
    }

    /// Unsacked bytes from `from` up to the highest SACKed byte: presumed lost, not yet resent.
    func holeBytes(from: SequenceNumber) -> Int {
        var cursor = from, total = 0
        for r in ranges where cursor < r.end {
            if cursor < r.start { total += r.start - cursor }
            cursor = SequenceNumber.latest(cursor, r.end)
        }
        return total
    }
}
