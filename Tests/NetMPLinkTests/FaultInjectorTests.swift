import NetMPLink
import NetMPWire
import Testing

@Suite struct FaultInjectorTests {
    @Test func parse_everyKey_andRejectsBadOnes() throws {
        let plan = try FaultPlan.parse("drop=0.01,dup=0.02,reorder=0.05,reorder-delay=7ms,delay=25ms,corrupt=0.001,seed=9,dir=out").get()
        #expect(plan.drop == 0.01 && plan.duplicate == 0.02 && plan.reorder == 0.05 && plan.corrupt == 0.001)
        #expect(plan.reorderDelay == .milliseconds(7) && plan.delay == .milliseconds(25) && plan.seed == 9)
        #expect(!plan.inbound && plan.outbound && plan.isActive)
        for bad in ["drop=2", "dup=x", "delay=10", "colour=blue", "dir=up", "drop"] {
            #expect(throws: FaultPlanError.self) { try FaultPlan.parse(bad).get() }
        }
        #expect(!FaultPlan().isActive)
    }

    /// Seeded: the same plan does the same thing; the rates come out near what was asked.
    @Test func rates_matchThePlan_andAreReproducible() {
        var plan = FaultPlan()
        plan.drop = 0.1; plan.duplicate = 0.05; plan.corrupt = 0.02; plan.seed = 3
        func run() -> (Int, Int, Int, Int) {
            var injector = FaultInjector(plan: plan)
            var passed = 0
            let frame = [UInt8](repeating: 0xAB, count: 100)
            for _ in 0..<100_000 { passed += frame.withUnsafeBytes { injector.admit($0, .inbound, now: .zero).count } }
            return (passed, injector.dropped, injector.duplicated, injector.corrupted)
        }
        let first = run()
        #expect(first == run())
        #expect((9_000...11_000).contains(first.1))
        #expect((4_000...5_000).contains(first.2))
        #expect(first.3 > 1_500)
    }

    /// Delayed and reordered frames come back from `release` when due, in due order.
    @Test func delay_and_reorder_releasedWhenDue() {
        var plan = FaultPlan()
        plan.delay = .milliseconds(5); plan.reorder = 1; plan.reorderDelay = .milliseconds(10)
        var injector = FaultInjector(plan: plan)
        let frame: [UInt8] = Array(repeating: 1, count: 60)
        #expect(frame.withUnsafeBytes { injector.admit($0, .outbound, now: .zero) }.isEmpty)
        #expect(injector.nextRelease == Instant.zero + .milliseconds(15))
        #expect(injector.release(now: Instant.zero + .milliseconds(14)).isEmpty)
        let due = injector.release(now: Instant.zero + .milliseconds(15))
        #expect(due.count == 1 && due[0].direction == .outbound && due[0].frame == frame)
    }
}
