import NetMPTestSupport
import NetMPStack
import NetMPWire
import Testing

/// The host's whole input path under a million mutated frames: it may drop, answer or count,
/// never crash; its neighbour cache stays bounded; and it still answers ping afterwards.
@Suite struct HostFuzzTests {
    @Test func millionMutatedFrames_hostSurvivesAndStillAnswers() throws {
        let host = Lab.host()
        var rng = SeededGenerator(state: 0x5EED)
        let seeds = [Lab.arp(.request), Lab.arp(.reply, to: Lab.ourMAC, targetMAC: Lab.ourMAC), Lab.echoRequest(),
                     Lab.udp(port: 53), Lab.tcp(flags: .syn), Lab.tcp(flags: [.ack, .psh], payload: 40),
                     Lab.ipv4(proto: IPProtocol.icmp, payloadLength: 36, from: Lab.gateway) { out in
                         let original = Lab.tcp(flags: .syn)
                         _ = Array(original[14..<42]).withUnsafeBytes {
                             ICMPv4Message.emitError(type: 3, code: 1, original: $0, into: out)
                         }
                     }]
        var buffer = [UInt8](repeating: 0, count: 256)
        var sink = CountingSink()
        var errors = 0
        host.icmpErrorHandler = { _ in errors += 1 }
        for i in 0..<1_000_000 {
            let seed = seeds[Int(rng.next() % UInt64(seeds.count))]
            var count = seed.count
            for j in 0..<count { buffer[j] = seed[j] }
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                switch rng.next() % 4 {
                case 0: buffer[Int(rng.next() % UInt64(count))] ^= UInt8(1) << (rng.next() % 8)
                case 1: buffer[Int(rng.next() % UInt64(count))] = UInt8(truncatingIfNeeded: rng.next())
                case 2: count = max(1, Int(rng.next() % UInt64(count + 1)))
                default: buffer[[12, 13, 14, 16, 17, 23, 46, 47][Int(rng.next() % 8)] % count] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            let now = Instant(nanoseconds: UInt64(i) * 10_000) // 10 s over the run: timers fire
            buffer.withUnsafeBytes { host.receive(frame: UnsafeRawBufferPointer(rebasing: $0[0..<count]), now: now, sink: &sink) }
            if i % 1000 == 0 { host.tick(now: now, sink: &sink) }
        }
        #expect(host.counters.framesIn == 1_000_000)
        #expect(host.counters.drops.total > 100_000)
        #expect(sink.frames > 10_000)
        #expect(host.arp.count <= ARPCache.Timing().capacity)
        let now = Instant(nanoseconds: 20_000_000_000)
        var collect = CollectingSink()
        Lab.arp(.request).withUnsafeBytes { host.receive(frame: $0, now: now, sink: &collect) }
        Lab.echoRequest(id: 7, sequence: 9).withUnsafeBytes { host.receive(frame: $0, now: now, sink: &collect) }
        #expect(try Sent(collect.frames.last!).icmp() == .echoReply(identifier: 7, sequence: 9))
    }
}

struct CountingSink: FrameSink {
    var frames = 0
    mutating func transmit(_ frame: UnsafeRawBufferPointer) {
        precondition(frame.count >= 14 && frame.count <= 1514, "the host emitted an impossible frame")
        frames += 1
    }
}
