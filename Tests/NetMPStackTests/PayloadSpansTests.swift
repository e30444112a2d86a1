import NetMPStack
import NetMPWire
import Testing

/// A send ring's bytes handed to the link where they lie (`SendRing.spans`): the same bytes
/// `copy` gives, in one piece or, where the ring wraps, two; and put into a frame whole where
/// one must be.
@Suite struct PayloadSpansTests {
    func bytes(_ spans: PayloadSpans) -> [UInt8] { Array(spans.first) + Array(spans.second) }

    @Test func sendRing_spans_matchCopy_oneSpanThenTwoWhereTheRingWraps() {
        let ring = SendRing(capacity: 4096)
        let first = (0..<3000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(first.withUnsafeBytes { ring.write($0) } == 3000)
        let start = ring.spans(from: 100, count: 2000)
        #expect(start.second.isEmpty && bytes(start) == Array(first[100..<2100]))
        ring.release(2500) // acknowledged: the next write wraps
        let second = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        #expect(second.withUnsafeBytes { ring.write($0) } == 3000)
        let held = Array(first[2500...]) + second
        let wrapped = ring.spans(from: 0, count: held.count)
        #expect(!wrapped.second.isEmpty && wrapped.first.count == 4096 - 2500)
        #expect(bytes(wrapped) == held && wrapped.count == held.count)
        var copied = [UInt8](repeating: 0, count: held.count)
        copied.withUnsafeMutableBytes { ring.copy(from: 0, count: held.count, into: $0) }
        #expect(copied == bytes(wrapped))
        // From inside the second piece: one span again.
        let late = ring.spans(from: 1000, count: 500)
        #expect(late.second.isEmpty && bytes(late) == Array(held[1000..<1500]))
    }

    @Test func place_fillsTheFramesTail_emptyFirstGivesWayToSecond() {
        let a: [UInt8] = [1, 2, 3], b: [UInt8] = [4, 5]
        a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                var frame = [UInt8](repeating: 0xEE, count: 8)
                let spans = PayloadSpans(a, b)
                frame.withUnsafeMutableBytes { spans.place(atEndOf: $0) }
                #expect(frame == [0xEE, 0xEE, 0xEE, 1, 2, 3, 4, 5])
                let shifted = PayloadSpans(UnsafeRawBufferPointer(rebasing: a[0..<0]), b)
                #expect(Array(shifted.first) == [4, 5] && shifted.second.isEmpty && shifted.count == 2)
            }
        }
        #expect(PayloadSpans.none.isEmpty)
    }
}
