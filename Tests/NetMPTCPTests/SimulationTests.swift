import NetMPTestSupport
import NetMPTCP
import NetMPWire
import Testing

/// Two netmp engines over a simulated wire that drops, reorders, duplicates and delays:
/// every byte arrives intact and in order, every connection ends CLOSED, no timer is left.
@Suite struct SimulationTests {
    func check(_ sim: Simulation, _ label: String) {
        let (client, server) = (sim.endpoints[0], sim.endpoints[1])
        #expect(client.failed == nil && server.failed == nil, "\(label): failed \(String(describing: client.failed)) \(String(describing: server.failed))")
        #expect(!client.corrupt && !server.corrupt, "\(label): corrupted data")
        #expect(client.received == server.toSend, "\(label): client got \(client.received) of \(server.toSend)")
        #expect(server.received == client.toSend, "\(label): server got \(server.received) of \(client.toSend)")
        #expect(client.connection?.state == .closed && server.connection?.state == .closed,
                "\(label): states \(String(describing: client.connection?.state)) \(String(describing: server.connection?.state))")
        #expect(client.connection?.hasNoTimers == true && server.connection?.hasNoTimers == true, "\(label): timers left armed")
        #expect(client.peerClosed && server.peerClosed, "\(label): a FIN was not delivered")
        #expect(sim.oversized == 0, "\(label): \(sim.oversized) segments larger than the MSS allows")
    }

    @Test func cleanWire_bothDirections() {
        var config = TCPConfiguration()
        config.receiveBufferSize = 256 << 10
        let sim = Simulation(seed: 1, impairment: Impairment(), clientBytes: 3_000_000, serverBytes: 2_000_000, client: config, server: config)
        sim.run(for: .seconds(600))
        check(sim, "clean")
        #expect(sim.resetsSent == 0)
    }

    /// One seed's run: its impairment, sizes, buffers and options all drawn from the seed.
    func randomRun(seed: UInt64, tracing: Bool = false) -> Simulation {
        var rng = SeededGenerator(state: seed &* 7919)
        var impairment = Impairment()
        impairment.drop = Double(rng.next() % 80) / 1000         // up to 8%
        impairment.duplicate = Double(rng.next() % 50) / 1000    // up to 5%
        impairment.reorder = Double(rng.next() % 100) / 1000     // up to 10%
        impairment.delay = .milliseconds(1 + rng.next() % 30)
        impairment.reorderDelay = .milliseconds(1 + rng.next() % 20)
        if rng.next() % 3 == 0 { impairment.rate = 1_000_000 + Int(rng.next() % 50_000_000) }
        func configuration() -> TCPConfiguration {
            var c = TCPConfiguration()
            c.receiveBufferSize = [2_048, 8_192, 65_535, 200_000, 1 << 20][Int(rng.next() % 5)]
            c.sendBufferSize = [1_000, 16_384, 300_000][Int(rng.next() % 3)]
            c.timestamps = rng.next() % 4 != 0
            c.selectiveAcknowledgments = rng.next() % 4 != 0
            c.congestionControl = [.cubic, .newReno, .bbr][Int(rng.next() % 3)]
            c.noDelay = rng.next() % 2 == 0
            c.maximumSegmentSize = [536, 1460, 1460, 8960][Int(rng.next() % 4)]
            return c
        }
        let sizes = [0, 1, 1000, 30_000, 150_000]
        var client = configuration(), server = configuration()
        // Half the runs send through a link with segmentation offload (super-segments cut on
        // the wire, or in a quarter of runs handed over whole as GRO would).
        let offload = rng.next() % 2 == 0
        if offload { client.segmentationLimit = TCPConfiguration.superSegmentLimit; server.segmentationLimit = client.segmentationLimit }
        let whole = rng.next() % 2 == 0
        let sim = Simulation(seed: seed, impairment: impairment,
                             clientBytes: sizes[Int(rng.next() % 5)] + Int(rng.next() % 3000),
                             serverBytes: sizes[Int(rng.next() % 5)] + Int(rng.next() % 3000),
                             client: client, server: server)
        sim.superSegmentsArriveWhole = offload && whole
        sim.tracing = tracing
        sim.run(for: .seconds(3600))
        return sim
    }

    /// Thousands of seeds, each with its own impairment, sizes, buffers and options.
    @Test func randomizedImpairments_thousandsOfSeeds() {
        let seeds = UInt64(1)...5000
        var failed: [UInt64] = []
        for seed in seeds {
            let sim = randomRun(seed: seed)
            let ok = sim.oversized == 0 && sim.endpoints.allSatisfy { $0.failed == nil && !$0.corrupt && $0.connection?.state == .closed
                && $0.connection?.hasNoTimers == true && $0.peerClosed }
                && sim.endpoints[0].received == sim.endpoints[1].toSend && sim.endpoints[1].received == sim.endpoints[0].toSend
            if !ok { failed.append(seed) }
        }
        if let first = failed.first {
            let sim = randomRun(seed: first, tracing: true)
            check(sim, "seed \(first) (last segments:\n\(sim.trace.joined(separator: "\n")))")
        }
        #expect(failed.isEmpty, "\(failed.count) of \(seeds.count) seeds failed: \(failed.prefix(20))")
    }

    /// A long transfer through 1% loss: recovery keeps the data flowing and intact.
    @Test func onePercentLoss_largeTransfer() {
        var config = TCPConfiguration()
        config.receiveBufferSize = 1 << 20
        var impairment = Impairment()
        impairment.drop = 0.01
        impairment.delay = .milliseconds(5)
        impairment.rate = 100_000_000
        let sim = Simulation(seed: 99, impairment: impairment, clientBytes: 8_000_000, serverBytes: 100_000, client: config, server: config)
        sim.run(for: .seconds(600))
        check(sim, "1% loss")
    }

    /// Through 1% random loss on a 100 Mbit/s, 10 ms path, every byte arrives with each
    /// algorithm; BBR, which does not read random loss as congestion, finishes in well
    /// under CUBIC's virtual time (CUBIC halves toward a window of a few segments).
    @Test func onePercentLoss_bbrKeepsThePathFull_cubicDoesNot() {
        var finish: [CongestionAlgorithm: Interval] = [:]
        for algorithm in [CongestionAlgorithm.cubic, .bbr] {
            var config = TCPConfiguration()
            config.receiveBufferSize = 2 << 20
            config.congestionControl = algorithm
            var impairment = Impairment()
            impairment.drop = 0.01
            impairment.delay = .milliseconds(5)
            impairment.rate = 12_500_000
            let sim = Simulation(seed: 97, impairment: impairment, clientBytes: 20_000_000, serverBytes: 1000, client: config, server: config)
            let start = sim.now
            sim.run(for: .seconds(600))
            check(sim, "1% loss, \(algorithm)")
            finish[algorithm] = sim.now - start
        }
        let bbr = finish[.bbr]!, cubic = finish[.cubic]!
        // 20 MB at 12.5 MB/s is 1.6 s at the least.
        #expect(bbr.nanoseconds < cubic.nanoseconds * 2 / 3, "BBR \(bbr.nanoseconds / 1_000_000) ms, CUBIC \(cubic.nanoseconds / 1_000_000) ms")
        #expect(bbr.nanoseconds < 4_000_000_000, "BBR took \(bbr.nanoseconds / 1_000_000) ms for 1.6 s of data")
    }

    /// The same through a link that segments (TSO): super-segments go out, cut on the wire
    /// or handed over whole, and loss recovery (retransmissions of several MSS) still
    /// delivers every byte.
    @Test func onePercentLoss_segmentationOffload_cutOrWhole() {
        for whole in [false, true] {
            var config = TCPConfiguration()
            config.receiveBufferSize = 1 << 20
            config.segmentationLimit = TCPConfiguration.superSegmentLimit
            var impairment = Impairment()
            impairment.drop = 0.01
            impairment.delay = .milliseconds(5)
            impairment.rate = 100_000_000
            let sim = Simulation(seed: 98, impairment: impairment, clientBytes: 8_000_000, serverBytes: 100_000, client: config, server: config)
            sim.superSegmentsArriveWhole = whole
            sim.run(for: .seconds(600))
            check(sim, "1% loss, TSO, \(whole ? "whole" : "cut")")
            #expect(sim.superSegments > 10, "\(sim.superSegments) super-segments")
        }
    }
}
