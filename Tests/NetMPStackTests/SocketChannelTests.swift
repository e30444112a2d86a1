import Foundation
import NetMPStack
import Testing

/// The channel's write shutdown waits for writes under way, but not forever: a write that
/// never ends was abandoned by a signal handler that jumped away (longjmp), and close() or
/// the exit after it must still go on.
@Suite struct SocketChannelTests {
    @Test func shutWriting_waitsForAWriteUnderWay() {
        let channel = SocketChannel(sendCapacity: 4096, receiveCapacity: 4096)
        #expect(channel.beginWrite())
        Thread.detachNewThread { usleep(50_000); channel.endWrite() }
        let started = Date()
        #expect(channel.shutWriting())
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 0.04, "shutWriting returned after \(waited) s, before the write ended")
        #expect(!channel.beginWrite(), "writing is shut")
    }

    @Test func shutWriting_givesUpOnAWriteThatNeverEnds() {
        let channel = SocketChannel(sendCapacity: 4096, receiveCapacity: 4096)
        #expect(channel.beginWrite()) // and never endWrite(), as after a longjmp out of send()
        let started = Date()
        #expect(channel.shutWriting())
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(!channel.shutWriting(), "shut once")
    }
}
