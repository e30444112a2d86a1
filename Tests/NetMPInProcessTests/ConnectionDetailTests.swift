import Foundation
import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPStackProcess
import NetMPTCP
import NetMPWire
import Testing

/// What `netmp stat --connections` shows of each connection, as ss -tin does: read from
/// the stats page of a stack that just moved data.
struct ConnectionDetailTests {
    /// Listening and UDP sockets are listed too (as `ss -lu` shows them): a dual-stack
    /// listener once with both families and its backlog, a v4 one, a bound UDP socket with
    /// its address and an unbound one; a closed listener leaves the list.
    @Test func listenersAndUDPSockets_areListed() throws {
        let pair = try StackPair(cores: 2, ipv6: true)
        defer { pair.stop() }
        let dual = StreamSocket(client: pair.b.primary, family: .ipv6)
        try dual.bind(Endpoint(IPv6Address.any, 7320))
        try dual.listen(backlog: 33)
        let four = try pair.listenOnB(port: 7321)
        let bound = DatagramSocket(stack: pair.b)
        try bound.bind(Endpoint(StackPair.addressB, 7322))
        let any = DatagramSocket(stack: pair.b)
        try any.bind(Endpoint(IPv4Address.any, 7323))
        func listed() -> [StatsPage.SocketRow] {
            var rows: [StatsPage.SocketRow] = []
            for _ in 0..<100 {
                rows = pair.b.statsSnapshot()?.sockets ?? []
                if rows.count >= 4 { break }
                usleep(50_000)
            }
            return rows
        }
        let rows = listed()
        #expect(rows.contains(StatsPage.SocketRow(udp: false, port: 7320, families: .both, client: 0, backlog: 33)), "\(rows)")
        #expect(rows.contains { !$0.udp && $0.port == 7321 && $0.families == .ipv4 }, "\(rows)")
        #expect(rows.contains(StatsPage.SocketRow(udp: true, port: 7322, families: .ipv4, client: 0, bound: IPAddress(StackPair.addressB))), "\(rows)")
        #expect(rows.contains(StatsPage.SocketRow(udp: true, port: 7323, families: .ipv4, client: 0)), "\(rows)")
        #expect(rows.count == 4, "\(rows)")
        let snapshot = try #require(pair.b.statsSnapshot())
        #expect(snapshot.text.contains("listen  *:7320") && snapshot.text.contains("udp     \(StackPair.addressB):7322"), "\(snapshot.text)")
        #expect(snapshot.json.contains("{\"kind\":\"listen\",\"local\":\"*:7320\",\"port\":7320,\"backlog\":33,\"client\":0,\"holders\":[]}"), "\(snapshot.json)")
        dual.close()
        var after: [StatsPage.SocketRow] = []
        for _ in 0..<100 {
            after = pair.b.statsSnapshot()?.sockets ?? []
            if after.count == 3 { break }
            usleep(50_000)
        }
        #expect(after.count == 3 && !after.contains { $0.port == 7320 }, "\(after)")
        four.close(); bound.close(); any.close()
    }

    @Test func transfer_showsItsTCPDetail_inTheTableAndTheJSON() throws {
        let pair = try StackPair(cores: 2)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7310)
        defer { listener.close() }
        let client = try pair.connectFromA(port: 7310)
        defer { client.close() }
        let server = try listener.accept()
        defer { server.close() }
        let count = 8 << 20
        let join = spawnBounded {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            var total = 0
            while total < count, let n = try? buffer.withUnsafeMutableBytes({ try server.receive(into: $0) }), n > 0 { total += n }
        }
        #expect(try client.sendStream(seed: 5, count: count) == count)
        #expect(join(30))
        // Listed ten times a second: wait for a listing after the last ACK.
        var row: StatsSnapshot.ConnectionStats?
        var snapshot: StatsSnapshot?
        for _ in 0..<100 {
            usleep(50_000)
            snapshot = pair.a.statsSnapshot()
            row = snapshot?.connections.first { $0.remote.port == 7310 }
            if let row, row.bytesAcked >= UInt64(count) { break }
        }
        let r = try #require(row)
        #expect(r.state == "ESTABLISHED")
        #expect(r.bytesAcked == UInt64(count) && r.bytesReceived == 0)
        #expect(r.congestionControl == pair.a.tcpConfiguration.congestionControl.rawValue)
        #expect(r.windowScales != nil) // both stacks offer window scaling
        #expect(r.rttNanoseconds > 0 && r.rtoNanoseconds >= 200_000_000) // Linux's minimum RTO, 200 ms
        #expect(r.cwnd >= r.mss && r.mss > 0 && r.ssthresh > 0)
        // As TCP_INFO counts them (a loaded machine can make the socket pair drop a frame).
        #expect(r.retransmitted == UInt64(client.info().totalRetransmissions))
        // The receiver's row: what it received, nothing acknowledged of its own.
        // B lists on its own schedule: wait for a listing after the last byte arrived.
        var bRow: StatsSnapshot.ConnectionStats?
        for _ in 0..<100 {
            bRow = pair.b.statsSnapshot()?.connections.first { $0.local.port == 7310 }
            if let bRow, bRow.bytesReceived >= UInt64(count) { break }
            usleep(50_000)
        }
        let b = try #require(bRow)
        #expect(b.bytesReceived == UInt64(count) && b.bytesAcked == 0)

        let text = try #require(snapshot).connectionsText
        #expect(text.contains("\(r.local)") && text.contains(" bytes_acked:\(count) ") && text.contains(" \(r.congestionControl) "),
                "\(text)")
        let json = try #require(snapshot).connectionsJSON
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let rows = try #require(object["connections"] as? [[String: Any]])
        let listed = try #require(rows.first { ($0["remote"] as? String) == "\(r.remote)" })
        #expect(listed["bytes_acked"] as? Int == count)
        #expect(listed["congestion_control"] as? String == r.congestionControl)
        #expect((listed["wscale"] as? [Int])?.count == 2)
        for key in ["rttvar_us", "rto_us", "retransmitted", "delivery_rate", "bytes_received"] {
            #expect(listed[key] is Int, "\(key) missing from \(listed)")
        }
        // Still infinite without a loss (Linux's TCP_INFINITE_SSTHRESH): null, as ss leaves it out.
        #expect(r.ssthresh >= UInt64(Int32.max) ? listed["ssthresh"] is NSNull : listed["ssthresh"] is Int)
    }

    /// The delivery rate is what was acknowledged over the listing interval: while a
    /// stream flows it is the stream's rate, in bytes per second.
    @Test func deliveryRate_whileDataFlows_isNonzero() throws {
        let pair = try StackPair(cores: 1)
        defer { pair.stop() }
        let listener = try pair.listenOnB(port: 7311)
        defer { listener.close() }
        let client = try pair.connectFromA(port: 7311)
        defer { client.close() }
        let server = try listener.accept()
        defer { server.close() }
        let reader = spawnBounded { _ = try? server.receiveStream(seed: 6) }
        // Writes for 2.5 s, then ends the stream.
        let writer = spawnBounded {
            let deadline = Date().addingTimeInterval(2.5)
            var sent = 0
            while Date() < deadline, let n = try? client.sendStream(seed: 6, count: 1 << 20), n > 0 { sent += n }
            try? client.shutdown(.write)
        }
        var rates: [UInt64] = []
        for _ in 0..<20 {
            usleep(100_000)
            if let row = pair.a.statsSnapshot()?.connections.first(where: { $0.remote.port == 7311 }) { rates.append(row.deliveryRate) }
        }
        #expect(rates.contains { $0 > 100_000 }, "delivery rates seen: \(rates)") // MB/s on a socket pair, even under TSan
        #expect(writer(30) && reader(30))
    }
}
