import Foundation
import NetMPStackProcess
import Synchronization
import Testing

/// Runs `body` on a new thread; the returned closure joins it.
func spawn(_ body: @escaping @Sendable () -> Void) -> () -> Void {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread { body(); done.signal() }
    thread.start()
    return { done.wait() }
}

@Suite struct MessagePortTests {
    @Test func singleThread_fifo_fullAndEmpty() {
        let port = MessagePort<Int>(capacity: 4)
        #expect(port.receive() == nil)
        for i in 0..<4 { #expect(port.send(i)) }
        #expect(!port.send(99))
        #expect(port.drain { _ in } == 4)
        for i in 4..<20 { #expect(port.send(i)); #expect(port.receive() == i) }
    }

    /// Many senders, one owner that sleeps whenever the port is empty: every message arrives
    /// once, each sender's in order, and nobody hangs (a lost wakeup would).
    @Test func manySenders_oneSleepingOwner_everyMessageOnceInOrder() {
        struct Message: Sendable { var sender: Int; var number: Int }
        let port = MessagePort<Message>(capacity: 1024)
        let senders = 4, perSender = 200_000
        let joins = (0..<senders).map { id in
            spawn {
                for n in 0..<perSender {
                    while !port.send(Message(sender: id, number: n)) { sched_yield() }
                    if n % 1000 == 0 { usleep(50) } // let the owner go to sleep now and then
                }
            }
        }
        var next = [Int](repeating: 0, count: senders)
        var received = 0
        var disorder = 0
        while received < senders * perSender {
            let n = port.drain { m in
                if m.number != next[m.sender] { disorder += 1 }
                next[m.sender] = m.number + 1
            }
            received += n
            if n == 0 { port.wait() }
        }
        joins.forEach { $0() }
        #expect(received == senders * perSender && disorder == 0)
        #expect(port.receive() == nil)
    }

    /// Ping-pong between two threads through two ports, each side sleeping between messages:
    /// the wakeup path on every message, 50,000 times.
    @Test func pingPong_everyMessageWakesTheOwner() {
        let ping = MessagePort<Int>(capacity: 8), pong = MessagePort<Int>(capacity: 8)
        let rounds = 50_000
        let join = spawn {
            var seen = 0
            while seen < rounds {
                guard let n = ping.receive() else { ping.wait(); continue }
                seen += 1
                _ = pong.send(n)
            }
        }
        for i in 0..<rounds {
            _ = ping.send(i)
            var reply: Int? = nil
            while reply == nil { reply = pong.receive(); if reply == nil { pong.wait() } }
            #expect(reply == i)
        }
        join()
    }
}
