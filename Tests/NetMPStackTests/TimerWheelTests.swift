import NetMPTestSupport
import NetMPStack
import NetMPWire
import Testing

/// A numbered entry for the wheel.
final class Timed: TimerWheelEntry {
    let key: Int
    var timerPlace = TimerWheelPlace()
    init(_ key: Int) { self.key = key }
}

@Suite struct TimerWheelTests {
    let t0 = Instant(nanoseconds: 5_000_000_000)

    /// A caller's array takes the due entries after what it holds, and emptied with its
    /// capacity kept serves the next tick in the same storage (no allocation per tick).
    @Test func dueInto_appendsAndReusesTheCallersStorage() {
        var wheel = TimerWheel<Timed>(now: t0)
        var due: [Timed] = []
        due.reserveCapacity(8)
        let storage = due.withUnsafeBufferPointer { $0.baseAddress }
        for key in 0..<4 { wheel.schedule(Timed(key), at: t0 + .milliseconds(UInt64(10 * (key + 1)))) }
        wheel.due(now: t0 + .milliseconds(20), into: &due)
        #expect(due.map(\.key).sorted() == [0, 1])
        wheel.due(now: t0 + .milliseconds(30), into: &due)
        #expect(due.map(\.key).sorted() == [0, 1, 2])
        due.removeAll(keepingCapacity: true)
        wheel.due(now: t0 + .milliseconds(40), into: &due)
        #expect(due.map(\.key) == [3] && due.withUnsafeBufferPointer { $0.baseAddress } == storage)
    }

    @Test func dueInDeadlineOrder_cancelledNeverFire() {
        var wheel = TimerWheel<Timed>(now: t0)
        let (one, two, three) = (Timed(1), Timed(2), Timed(3))
        wheel.schedule(one, at: t0 + .milliseconds(30))
        wheel.schedule(two, at: t0 + .milliseconds(10))
        wheel.schedule(three, at: t0 + .milliseconds(20))
        wheel.cancel(three)
        #expect(three.timerPlace.deadline == nil && two.timerPlace.deadline == t0 + .milliseconds(10))
        #expect(wheel.nextDeadline == t0 + .milliseconds(10))
        #expect(wheel.due(now: t0 + .milliseconds(9)).isEmpty)
        #expect(wheel.due(now: t0 + .milliseconds(25)).map(\.key) == [2])
        #expect(two.timerPlace.deadline == nil)
        #expect(wheel.nextDeadline == t0 + .milliseconds(30))
        #expect(wheel.due(now: t0 + .milliseconds(30)).map(\.key) == [1])
        #expect(wheel.nextDeadline == nil && wheel.count == 0)
    }

    @Test func rescheduling_movesTheTimer() {
        var wheel = TimerWheel<Timed>(now: t0)
        let one = Timed(1)
        wheel.schedule(one, at: t0 + .milliseconds(5))
        wheel.schedule(one, at: t0 + .milliseconds(50))
        #expect(wheel.count == 1)
        #expect(wheel.due(now: t0 + .milliseconds(10)).isEmpty)
        #expect(wheel.due(now: t0 + .milliseconds(50)).map(\.key) == [1])
    }

    /// Entries sharing a slot: removing one moves another into its place, which must still
    /// be found and cancelled by its own record.
    @Test func sharedSlot_removalKeepsTheOthersPlaces() {
        var wheel = TimerWheel<Timed>(now: t0)
        let entries = (0..<5).map(Timed.init)
        for (i, entry) in entries.enumerated() { wheel.schedule(entry, at: t0 + .microseconds(100 * UInt64(i))) }
        wheel.cancel(entries[1])
        wheel.cancel(entries[4]) // it had moved into the place of entry 1
        wheel.cancel(entries[0])
        #expect(wheel.count == 2)
        #expect(Set(wheel.due(now: t0 + .milliseconds(1)).map(\.key)) == [2, 3])
        #expect(wheel.count == 0 && wheel.nextDeadline == nil)
    }

    /// Deadlines beyond the wheel's 4 s span (TIME-WAIT's 60 s) fire on time too.
    @Test func farDeadline_sweptIn_firesOnTime() {
        var wheel = TimerWheel<Timed>(now: t0)
        wheel.schedule(Timed(7), at: t0 + .seconds(60))
        wheel.schedule(Timed(8), at: t0 + .milliseconds(1))
        var now = t0
        var fired: [(Int, Instant)] = []
        while let next = wheel.nextDeadline, now < t0 + .seconds(70) {
            now = max(now, next)
            for entry in wheel.due(now: now) { fired.append((entry.key, now)) }
        }
        #expect(fired.map(\.0) == [8, 7])
        #expect(fired.last?.1 == t0 + .seconds(60))
    }

    /// A wheel not looked at for longer than its span (an idle core asks for no wakeup)
    /// hands out a far deadline at the first look past it, not a sweep later.
    @Test func farDeadline_afterALongGap_firesAtTheFirstLook() {
        var wheel = TimerWheel<Timed>(now: t0)
        wheel.schedule(Timed(7), at: t0 + .seconds(60))
        #expect(wheel.due(now: t0 + .seconds(30)).isEmpty)
        #expect(wheel.due(now: t0 + .seconds(61)).map(\.key) == [7])
        #expect(wheel.count == 0 && wheel.nextDeadline == nil)
    }

    /// Against a brute-force model: random schedules, cancels and clock jumps.
    @Test func matchesModel_underRandomOperations() {
        var rng = SeededGenerator(state: 77)
        var wheel = TimerWheel<Timed>(now: t0)
        let entries = (0..<200).map(Timed.init)
        var model: [Int: Instant] = [:]
        var now = t0
        for _ in 0..<20_000 {
            let key = Int(rng.next() % 200)
            switch rng.next() % 4 {
            case 0, 1:
                let deadline = now + Interval(nanoseconds: rng.next() % 10_000_000_000)
                wheel.schedule(entries[key], at: deadline); model[key] = deadline
            case 2:
                wheel.cancel(entries[key]); model[key] = nil
            default:
                // Now and then a jump past the wheel's span: an idle core looks again late.
                let jump = rng.next() % 50 == 0 ? rng.next() % 20_000_000_000 : rng.next() % 50_000_000
                now = now + Interval(nanoseconds: jump)
                let fired = Set(wheel.due(now: now).map(\.key))
                let expected = Set(model.filter { $0.value <= now }.map(\.key))
                #expect(fired == expected)
                for key in expected { model[key] = nil }
            }
            #expect(wheel.count == model.count)
            if let next = wheel.nextDeadline, let modelNext = model.values.min() { #expect(next <= modelNext) }
        }
        for (key, deadline) in model { #expect(entries[key].timerPlace.deadline == deadline) }
    }
}

@Suite struct ReceiveRingTests {
    /// Out-of-order bytes written past the published end, across the wrap, become readable
    /// when the gap before them is filled and published.
    @Test func outOfOrderAcrossWrap_readableOnceGapFilled() {
        let ring = ReceiveRing(capacity: 8)
        ([1, 2, 3, 4, 5, 6] as [UInt8]).withUnsafeBytes { ring.write($0, at: 0) }
        ring.publish(6)
        var out = [UInt8](repeating: 0, count: 4)
        #expect(out.withUnsafeMutableBytes { ring.read(into: $0) } == 4)     // head = 4, tail = 6
        ([9, 9] as [UInt8]).withUnsafeBytes { ring.write($0, at: 2) }        // positions 8, 9 (wrapped)
        #expect(ring.readable == 2)                                          // not published yet
        ([7, 8] as [UInt8]).withUnsafeBytes { ring.write($0, at: 0) }        // the gap at 6, 7
        ring.publish(4)
        var all = [UInt8](repeating: 0, count: 6)
        #expect(all.withUnsafeMutableBytes { ring.read(into: $0) } == 6)
        #expect(all == [5, 6, 7, 8, 9, 9])
        #expect(ring.readable == 0 && !ring.atEnd)
        ring.publishEndOfStream()
        #expect(ring.atEnd)
    }
}
