import NetMPTestSupport
import NetMPTCP
import NetMPWire
import Testing

/// Hostile input in every state: random flags, sequence and acknowledgment numbers near and
/// far from the window, random options and lengths. The engine may drop, answer or close,
/// never crash or break its invariants; and the drops are named.
@Suite struct EngineFuzzTests {
    static func states() -> [(String, Connection)] {
        var list: [(String, Connection)] = [("SYN-SENT", Fixture.synSent())]
        let syn = TCPSegmentHeader(sourcePort: 80, destinationPort: 40000, sequenceNumber: 5000, acknowledgmentNumber: 0,
                                   flags: .syn, window: 65_535, options: Fixture.synAckOptions(timestamps: true))
        var received = Connection.accept(syn, tuple: Fixture.tuple, iss: Fixture.iss, now: Fixture.t0, configuration: Fixture.configuration())
        _ = Fixture.drain(&received)
        list.append(("SYN-RECEIVED", received))
        var established = Fixture.established()
        established.queued(20_000)
        _ = Fixture.drain(&established)
        list.append(("ESTABLISHED", established))
        var finWait1 = Fixture.established()
        finWait1.close(now: Fixture.t0)
        _ = Fixture.drain(&finWait1)
        list.append(("FIN-WAIT-1", finWait1))
        var finWait2 = finWait1
        _ = finWait2.handle(Fixture.segment(.ack, seq: 5001, ack: 1002), payloadLength: 0, now: Fixture.t0)
        list.append(("FIN-WAIT-2", finWait2))
        var closing = finWait1
        _ = closing.handle(Fixture.segment([.fin, .ack], seq: 5001, ack: 1001), payloadLength: 0, now: Fixture.t0)
        list.append(("CLOSING", closing))
        var timeWait = finWait2
        _ = timeWait.handle(Fixture.segment([.fin, .ack], seq: 5001, ack: 1002), payloadLength: 0, now: Fixture.t0)
        list.append(("TIME-WAIT", timeWait))
        var closeWait = Fixture.established()
        _ = closeWait.handle(Fixture.segment([.fin, .ack], seq: 5001, ack: 1001), payloadLength: 0, now: Fixture.t0)
        _ = Fixture.drain(&closeWait)
        list.append(("CLOSE-WAIT", closeWait))
        var lastAck = closeWait
        lastAck.close(now: Fixture.t0)
        _ = Fixture.drain(&lastAck)
        list.append(("LAST-ACK", lastAck))
        return list
    }

    @Test func randomSegments_everyState_invariantsHold() {
        var rng = SeededGenerator(state: 0xBADC0DE)
        var drops: [TCPDrop: Int] = [:]
        var statesReached = Set<TCPState>()
        for (name, start) in Self.states() {
            #expect(start.state.rawValue == name)
            for run in 0..<100 {
                var c = start
                var now = Fixture.t0
                for step in 0..<1000 {
                    let flags = TCPFlags(rawValue: UInt8(truncatingIfNeeded: rng.next()) & 0x3F)
                    func near(_ base: UInt32) -> UInt32 {
                        rng.next() % 10 == 0 ? UInt32(truncatingIfNeeded: rng.next())
                                             : base &+ UInt32(bitPattern: Int32(Int(rng.next() % 140_000) - 70_000))
                    }
                    var options = TCPOptions()
                    if rng.next() % 2 == 0 { options.timestamp = (UInt32(truncatingIfNeeded: rng.next() % 2000), UInt32(truncatingIfNeeded: rng.next() % 2000)) }
                    if rng.next() % 3 == 0 {
                        for _ in 0..<Int(rng.next() % 4) {
                            let left = near(c.sendUnacknowledged.raw)
                            options.appendSACK(SACKBlock(left: left, right: left &+ UInt32(rng.next() % 5000)))
                        }
                    }
                    if rng.next() % 20 == 0 { options.maximumSegmentSize = UInt16(truncatingIfNeeded: rng.next()); options.windowScale = UInt8(rng.next() % 20) }
                    let segment = Fixture.segment(flags, seq: near(c.receiveNext.raw), ack: near(c.sendUnacknowledged.raw),
                                                  window: UInt16(truncatingIfNeeded: rng.next()), options: options)
                    let length = rng.next() % 3 == 0 ? 0 : Int(rng.next() % 3000)
                    let queuedBefore = c.sendQueued
                    let capacity = c.configuration.receiveBufferSize - c.unread
                    let result = c.handle(segment, payloadLength: length, now: now)
                    if let d = result.drop { drops[d, default: 0] += 1 }
                    if let store = result.store {
                        #expect(store.range.lowerBound >= 0 && store.range.upperBound <= length, "\(name) run \(run) step \(step): store outside the payload")
                        #expect(store.offset >= 0 && store.offset + store.range.count <= capacity, "\(name): store outside the buffer")
                    }
                    #expect(result.acknowledged >= 0 && result.acknowledged <= queuedBefore)
                    #expect(c.sendUnacknowledged <= c.sendNext && c.sendNext <= c.sendMaximum, "\(name): send pointers out of order")
                    statesReached.insert(c.state)
                    if step % 7 == 0 {
                        var count = 0
                        while c.nextSegment(now: now) != nil { count += 1; if count > 5000 { Issue.record("\(name): output never stops"); break } }
                        c.consumed(c.unread)
                    }
                    if step % 50 == 0 {
                        now = now + .milliseconds(rng.next() % 3000)
                        c.fireTimers(now: now)
                    }
                    if c.state == .closed {
                        #expect(c.hasNoTimers, "\(name): closed with a timer armed")
                        break
                    }
                }
            }
        }
        for reason in [TCPDrop.outOfWindow, .paws, .challengeAck, .unacceptableAck, .noAck] {
            #expect((drops[reason] ?? 0) > 0, "never dropped for \(reason)")
        }
        #expect(statesReached.contains(.closed))
    }
}
