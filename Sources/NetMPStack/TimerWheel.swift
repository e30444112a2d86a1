import NetMPWire

/// Where an entry sits in a TimerWheel, kept in the entry itself: arming and cancelling
/// then touch no hash table (they hashed the connection's four-tuple four or five times
/// per re-arm, a tenth of a core's time under a connections-per-second load).
public struct TimerWheelPlace: Sendable {
    static let unarmed: Int32 = -2, far: Int32 = -1
    var slot = TimerWheelPlace.unarmed   // a wheel slot, `far`, or `unarmed`
    var index: Int32 = 0                 // position in that slot's list
    var at = Instant.zero
    public init() {}
    /// The deadline the entry is armed for, or nil.
    public var deadline: Instant? { slot == Self.unarmed ? nil : at }
}

/// What a TimerWheel arms: an object that remembers its place.
public protocol TimerWheelEntry: AnyObject {
    var timerPlace: TimerWheelPlace { get set }
}

/// A hashed timing wheel (Varghese and Lauck): one per owner, for every connection's next
/// deadline. Arming and cancelling are O(1); finding the next deadline scans a 4096-bit map.
/// Slots are 1 ms wide and cover 4.096 s; deadlines further out (TIME-WAIT, keepalive)
/// wait in a side list that is swept into the wheel once a second.
public struct TimerWheel<Entry: TimerWheelEntry> {
    static var slotCount: Int { 4096 }
    static var tick: UInt64 { 1_000_000 }  // 1 ms
    static var span: UInt64 { UInt64(slotCount) * tick }
    static var sweepInterval: UInt64 { 1_000_000_000 }

    var slots: [[Entry]]
    var occupied = [UInt64](repeating: 0, count: 4096 / 64)
    var far: [Entry] = []
    /// The tick the wheel has advanced to: every deadline before it has been handed out.
    var cursor: UInt64
    var nextSweep: UInt64
    public private(set) var count = 0

    public init(now: Instant) {
        slots = Array(repeating: [], count: Self.slotCount)
        cursor = now.nanoseconds / Self.tick
        nextSweep = now.nanoseconds + Self.sweepInterval
    }

    /// Arms (or re-arms) `entry` for `deadline`.
    public mutating func schedule(_ entry: Entry, at deadline: Instant) {
        cancel(entry)
        let tick = max(deadline.nanoseconds / Self.tick, cursor)
        var place = TimerWheelPlace()
        place.at = deadline
        if tick - cursor < UInt64(Self.slotCount) {
            let slot = Int(tick % UInt64(Self.slotCount))
            place.slot = Int32(slot)
            place.index = Int32(slots[slot].count)
            slots[slot].append(entry)
            occupied[slot >> 6] |= 1 << UInt64(slot & 63)
        } else {
            place.slot = TimerWheelPlace.far
            place.index = Int32(far.count)
            far.append(entry)
        }
        entry.timerPlace = place
        count += 1
    }

    public mutating func cancel(_ entry: Entry) {
        let place = entry.timerPlace
        guard place.slot != TimerWheelPlace.unarmed else { return }
        entry.timerPlace = TimerWheelPlace()
        count -= 1
        if place.slot == TimerWheelPlace.far { Self.remove(at: Int(place.index), from: &far); return }
        let slot = Int(place.slot)
        Self.remove(at: Int(place.index), from: &slots[slot])
        if slots[slot].isEmpty { occupied[slot >> 6] &= ~(1 << UInt64(slot & 63)) }
    }

    /// Unordered removal: the last entry takes the place of the one removed.
    static func remove(at index: Int, from list: inout [Entry]) {
        let last = list.removeLast()
        guard index < list.count else { return }
        list[index] = last
        last.timerPlace.index = Int32(index)
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
            if let d = slots[slot].lazy.map(\.timerPlace.at).min(), best == nil || d < best! { best = d }
            return best
        }
        return best
    }

    /// Takes out every entry whose deadline is at or before `now`.
    public mutating func due(now: Instant) -> [Entry] {
        var result: [Entry] = []
        due(now: now, into: &result)
        return result
    }

    /// The same, appended to `result`: a caller that keeps the array (emptied with its
    /// capacity kept) takes its timers without an allocation per tick.
    public mutating func due(now: Instant, into result: inout [Entry]) {
        let target = now.nanoseconds / Self.tick
        let steps = min(target &- cursor &+ 1, UInt64(Self.slotCount))
        for i in 0..<steps {
            let slot = Int((cursor + i) % UInt64(Self.slotCount))
            guard occupied[slot >> 6] & (1 << UInt64(slot & 63)) != 0 else { continue }
            let first = result.count
            for entry in slots[slot] where entry.timerPlace.at <= now { result.append(entry) }
            for entry in result[first...] { cancel(entry) }
        }
        cursor = max(cursor, target)
        if now.nanoseconds >= nextSweep { sweep(now: now, due: &result) }
    }

    /// Moves far deadlines that now fall within the wheel's span into their slots, and
    /// hands out those already due. It runs after the cursor reached `now`: a wheel left
    /// idle for longer than its span would otherwise measure the span from where it
    /// stopped, and put a deadline due now back among the far ones for another second.
    mutating func sweep(now: Instant, due: inout [Entry]) {
        nextSweep = now.nanoseconds + Self.sweepInterval
        let near = far.filter { $0.timerPlace.at.nanoseconds / Self.tick &- cursor < UInt64(Self.slotCount) || $0.timerPlace.at <= now }
        for entry in near {
            if entry.timerPlace.at <= now { cancel(entry); due.append(entry) } else { schedule(entry, at: entry.timerPlace.at) }
        }
    }
}
