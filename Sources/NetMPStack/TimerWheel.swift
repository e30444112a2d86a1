import NetMPWire

/// A hashed timing wheel (Varghese and Lauck): one per owner, for every connection's next
/// deadline. Arming and cancelling are O(1); finding the next deadline scans a 4096-bit map.
/// Slots are 1 ms wide and cover 4.096 s; deadlines further out (TIME-WAIT, keepalive)
/// wait in a side table that is swept into the wheel once a second.
public struct TimerWheel<Key: Hashable> {
    static var slotCount: Int { 4096 }
    static var tick: UInt64 { 1_000_000 }  // 1 ms
    static var span: UInt64 { UInt64(slotCount) * tick }
    static var sweepInterval: UInt64 { 1_000_000_000 }

    var slots: [[Key: Instant]]
    var occupied = [UInt64](repeating: 0, count: 4096 / 64)
    var far: [Key: Instant] = [:]
    var location: [Key: Int] = [:]     // slot index, or -1 for the far table
    /// The tick the wheel has advanced to: every deadline before it has been handed out.
    var cursor: UInt64
    var nextSweep: UInt64

    public init(now: Instant) {
        slots = Array(repeating: [:], count: Self.slotCount)
        cursor = now.nanoseconds / Self.tick
        nextSweep = now.nanoseconds + Self.sweepInterval
    }

    public var count: Int { location.count }

    /// Arms (or re-arms) `key` for `deadline`.
    public mutating func schedule(_ key: Key, at deadline: Instant) {
        cancel(key)
        let tick = max(deadline.nanoseconds / Self.tick, cursor)
        if tick - cursor < UInt64(Self.slotCount) {
            let slot = Int(tick % UInt64(Self.slotCount))
            slots[slot][key] = deadline
            occupied[slot >> 6] |= 1 << UInt64(slot & 63)
            location[key] = slot
        } else {
            far[key] = deadline
            location[key] = -1
        }
    }

    public mutating func cancel(_ key: Key) {
        guard let slot = location.removeValue(forKey: key) else { return }
        if slot < 0 { far[key] = nil; return }
        slots[slot][key] = nil
        if slots[slot].isEmpty { occupied[slot >> 6] &= ~(1 << UInt64(slot & 63)) }
    }

    /// The earliest armed deadline (or the next sweep of the far table, which may be earlier
    /// than any deadline in it: a wakeup that finds nothing due is the price of O(1) arming).
    public var nextDeadline: Instant? {
        var best: Instant? = far.isEmpty ? nil : Instant(nanoseconds: nextSweep)
        let start = Int(cursor % UInt64(Self.slotCount))
        for step in 0..<(Self.slotCount / 64 + 1) {
            // Walk the bitmap word by word from the cursor's slot, wrapping once.
            let wordIndex = ((start >> 6) + step) % (Self.slotCount / 64)
            var word = occupied[wordIndex]
            if step == 0 { word &= ~0 << UInt64(start & 63) }
            else if step == Self.slotCount / 64 { word &= (1 << UInt64(start & 63)) &- 1 }
            guard word != 0 else { continue }
            let slot = wordIndex << 6 + word.trailingZeroBitCount
            if let d = slots[slot].values.min(), best == nil || d < best! { best = d }
            return best
        }
        return best
    }

    /// Takes out every key whose deadline is at or before `now`.
    public mutating func due(now: Instant) -> [Key] {
        var result: [Key] = []
        let target = now.nanoseconds / Self.tick
        if now.nanoseconds >= nextSweep { sweep(now: now) }
        let steps = min(target &- cursor &+ 1, UInt64(Self.slotCount))
        for i in 0..<steps {
            let slot = Int((cursor + i) % UInt64(Self.slotCount))
            guard occupied[slot >> 6] & (1 << UInt64(slot & 63)) != 0 else { continue }
            for (key, deadline) in slots[slot] where deadline <= now {
                result.append(key)
                cancel(key)
            }
        }
        cursor = max(cursor, target)
        return result
    }

    /// Moves far deadlines that now fall within the wheel's span into their slots.
    mutating func sweep(now: Instant) {
        nextSweep = now.nanoseconds + Self.sweepInterval
        // The cursor stays where it is: the slots between it and `now` are still to be visited.
        for (key, deadline) in far where deadline.nanoseconds / Self.tick &- cursor < UInt64(Self.slotCount) || deadline <= now {
            schedule(key, at: deadline)
        }
    }
}
