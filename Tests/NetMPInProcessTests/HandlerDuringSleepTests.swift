import CNetMPLinux
import NetMPChannel
import NetMPSystem
import Synchronization
import Testing

/// What the shim's signal trampoline does around a handler that runs while its thread sleeps
/// on a wait word (netmp_handler_begins and netmp_handler_ends, CNetMPLinux): the handler may
/// jump out (siglongjmp) past the sleep's own step out of the word's count of sleepers, so
/// the trampoline steps out before it and back in after one that returns. Driven here by
/// hand, without a signal: a jump is a handler whose end never comes.
@Suite struct HandlerDuringSleepTests {
    let owned = OwnedWaitWord()
    var count: UnsafeMutablePointer<UInt32> { UnsafeMutableRawPointer(owned.word.waiters).assumingMemoryBound(to: UInt32.self) }
    var word: UnsafeMutablePointer<UInt32> { UnsafeMutableRawPointer(owned.word.word).assumingMemoryBound(to: UInt32.self) }
    var sleepers: UInt32 { owned.word.waiters.pointee.load(ordering: .sequentiallyConsistent) }
    var generation: UInt32 { owned.word.word.pointee.load(ordering: .sequentiallyConsistent) }

    @Test func handlerThatJumpsOut_leavesTheCountAsItWas() {
        netmp_sleep_announce(count, word)
        #expect(sleepers == 1)
        _ = netmp_handler_begins() // the handler siglongjmps: neither its end nor the withdraw runs
        #expect(sleepers == 0)
        // The thread's next sleep joins and leaves as usual; nothing of the old one is left.
        netmp_sleep_announce(count, word)
        #expect(sleepers == 1)
        netmp_sleep_withdraw()
        #expect(sleepers == 0)
        netmp_sleep_withdraw() // a withdraw with no sleep noted changes nothing
        #expect(sleepers == 0)
    }

    @Test func handlerThatReturns_putsTheSleeperBack_andMovesTheWord() {
        let before = generation
        netmp_sleep_announce(count, word)
        let taken = netmp_handler_begins()
        #expect(sleepers == 0)
        #expect(netmp_handler_begins().count == nil) // a second signal inside the handler: nothing noted
        netmp_handler_ends(taken)
        // Counted again, and the word moved: a futex wait the kernel restarts after the
        // handler finds it changed and returns at once, to look again.
        #expect(sleepers == 1 && generation == before &+ 1)
        netmp_sleep_withdraw()
        #expect(sleepers == 0)
    }

    @Test func handlerOutsideASleep_touchesNothing() {
        let before = generation
        let taken = netmp_handler_begins()
        #expect(taken.count == nil)
        netmp_handler_ends(taken)
        #expect(sleepers == 0 && generation == before)
    }
}
