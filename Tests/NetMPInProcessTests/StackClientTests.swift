import Glibc
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire
import Testing

/// Several clients on one stack, each with a region of its own, as the stack process will
/// serve one per attached program (docs/STACK-SERVICE.md, step 3): every core drains every
/// client's request ring, and what one client's sockets do stays in its region.
@Suite struct StackClientTests {
    /// Two clients of stack A connect to B, and a listener of the second client accepts
    /// from B, streams moving every way at once; then every slot of the second client's
    /// region comes back and the cores stop serving it.
    @Test func twoClients_ownRegions_streamsBothWays_slotsComeBack() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let second = try pair.a.attachClient()
        #expect(second.id != pair.a.primary.id && second.region !== pair.a.primary.region)
        try streamEveryWay(pair, second)

        // With the second client's sockets closed and let go, every one of its slots comes
        // back once the connections have ended; then the cores stop serving it.
        var waited = 0
        while second.sockets.slotsTaken > 0 && waited < 300 { usleep(10_000); waited += 1 }
        #expect(second.sockets.slotsTaken == 0)
        pair.a.detach(second)
    }

    func streamEveryWay(_ pair: StackPair, _ second: StackClient) throws {
        let server = try pair.listenOnB(port: 7100), serverForSecond = try pair.listenOnB(port: 7102)
        let listener = StreamSocket(client: second)
        try listener.bind(Endpoint(IPv4Address(0), 7101))
        try listener.listen()

        let fromPrimary = try pair.connectFromA(port: 7100)
        let fromSecond = StreamSocket(client: second)
        try fromSecond.connect(to: Endpoint(StackPair.addressB, 7102))
        let toSecond = StreamSocket(stack: pair.b)
        try toSecond.connect(to: Endpoint(StackPair.addressA, 7101))
        let acceptedBySecond = try listener.accept()
        let onB = [try server.accept(), try serverForSecond.accept()]
        #expect(acceptedBySecond.client === second)

        let size = 3 << 20
        let senders = [fromPrimary, fromSecond, toSecond].enumerated().map { index, socket in
            spawnBounded {
                #expect((try? socket.sendStream(seed: index, count: size)) == size)
                try? socket.shutdown(.write)
            }
        }
        // Every stream arrives whole: the primary's (seed 0) and the second client's (seed 1)
        // on B, and B's (seed 2) at the second client's listener.
        for (seed, socket) in [(0, onB[0]), (1, onB[1]), (2, acceptedBySecond)] {
            let (count, mismatch) = try socket.receiveStream(seed: seed)
            #expect(count == size && mismatch == nil)
        }
        for join in senders { #expect(join(30)) }
        for socket in [fromSecond, acceptedBySecond, listener, server, serverForSecond] + onB + [fromPrimary, toSecond] { socket.close() }
    }

    /// Ports are the stack's, whichever client binds: a port one client holds is in use
    /// for another, free again once the first closes, and UDP's ports are apart from TCP's.
    @Test func portsAreTheStacks_acrossClients() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let second = try pair.a.attachClient()
        let first = StreamSocket(stack: pair.a)
        try first.bind(Endpoint(IPv4Address(0), 7200))
        let clash = StreamSocket(client: second)
        #expect(throws: SocketError(EADDRINUSE)) { try clash.bind(Endpoint(IPv4Address(0), 7200)) }
        let udp = DatagramSocket(client: second)
        try udp.bind(Endpoint(IPv4Address(0), 7200)) // another namespace
        first.close()
        try clash.bind(Endpoint(IPv4Address(0), 7200)) // at once: close waited for the release
        #expect(clash.localAddress.port == 7200)
        let ephemeral = StreamSocket(client: second)
        try ephemeral.listen()
        #expect(ephemeral.localAddress.port != 0 && ephemeral.localAddress.port != 7200)
        for socket in [clash, ephemeral] { socket.close() }
        udp.close()
    }

    /// A socket that connects again after a failed connect keeps its first slot's
    /// doorbell; the owner core's view holds that slot too while it rings it, and every
    /// hold comes back once the sockets are gone and the connection has ended.
    @Test func connectAgain_keepsTheFirstDoorbell_everyHoldComesBack() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let second = try pair.a.attachClient()
        let listener = try pair.listenOnB(port: 7300)
        try reconnectAndTalk(second, listener: listener)
        listener.close()
        var waited = 0
        while second.sockets.slotsTaken > 0 && waited < 300 { usleep(10_000); waited += 1 }
        #expect(second.sockets.slotsTaken == 0)
    }

    func reconnectAndTalk(_ client: StackClient, listener: StreamSocket) throws {
        let socket = StreamSocket(client: client)
        #expect(throws: SocketError(ECONNREFUSED)) { try socket.connect(to: Endpoint(StackPair.addressB, 7301)) }
        #expect(socket.mayConnectAgain)
        let again = socket.attemptAgain()
        #expect(again.channel.doorbell === socket.channel.doorbell)
        #expect(again.channel.lease?.slot != socket.channel.doorbell.slot)
        try again.connect(to: Endpoint(StackPair.addressB, 7300))
        let server = try listener.accept()
        #expect(try again.sendStream(seed: 5, count: 100_000) == 100_000)
        try again.shutdown(.write)
        let (count, mismatch) = try server.receiveStream(seed: 5)
        #expect(count == 100_000 && mismatch == nil)
        again.close()
        server.close()
    }
}
