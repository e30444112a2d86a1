import Foundation
import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// The per-core runtime against the Linux kernel over a multiqueue TAP: with NETMP_CORES=2,
/// eight connections to a kernel peer are spread over both cores, each is shown on the core
/// its 4-tuple hashes to, and every byte of every stream checks out both ways.
@Suite(.serialized, .enabled(if: labUnavailableReason(commands: ["ip", "python3"]) == nil,
                             Comment(rawValue: labUnavailableReason(commands: ["ip", "python3"]) ?? "")))
struct RuntimeInteropTests {
    static let bytes = 32 << 20
    static let connections = 8

    struct Connection: Decodable {
        var outcome: String, local_port: Int?, core: Int?, sent: Int?, sent_crc: UInt32?, received: Int?, received_crc: UInt32?
    }
    struct Peer: Decodable { var sent: Int, sent_crc: UInt32, received: Int, received_crc: UInt32, peer_port: Int }
    struct Summary: Decodable {
        struct Stats: Decodable {
            struct Core: Decodable { var core: Int, frames_in: UInt64, forwarded: UInt64, messages: UInt64, connections: UInt64 }
            struct Row: Decodable { var local: String, remote: String, state: String, core: Int }
            var cores: [Core], connections: [Row]
        }
        var seconds: Double, stats: Stats
    }

    @Test func twoCores_eightConnections_spreadOwnedAndChecked() throws {
        let lab = try LabNamespace()
        let peerOut = NSTemporaryDirectory() + "/\(lab.name)-peer.out"
        let server = try Shell.start(["ip", "netns", "exec", lab.name, "python3", TCPInteropTests.peer, "server", "5003",
                                      "\(Self.bytes)", "31", "120", "\(Self.connections)"],
                                     stderrTo: NSTemporaryDirectory() + "/\(lab.name)-peer.err", stdoutTo: peerOut)
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        waitFor("listening", in: NSTemporaryDirectory() + "/\(lab.name)-peer.err")
        let driver = lab.run([TCPInteropTests.driver, "--tap", lab.tap, "--addr", "10.77.0.2/24", "--cores", "2",
                              "--connect", "10.77.0.1:5003", "--connections", "\(Self.connections)",
                              "--send", "\(Self.bytes)", "--seed", "31"], timeout: 150)
        #expect(driver.status == 0, "driver: \(driver.stdout.suffix(2000)) \(driver.stderr)")
        server.waitUntilExit()
        let lines = driver.stdout.split(separator: "\n").filter { $0.hasPrefix("{") }
        let decoder = JSONDecoder()
        let ours = try lines.filter { $0.hasPrefix("{\"connection\"") }.map { try decoder.decode(Connection.self, from: Data($0.utf8)) }
        let summaryLine = try #require(lines.last { $0.hasPrefix("{\"seconds\"") })
        let summary = try decoder.decode(Summary.self, from: Data(summaryLine.utf8))
        let peers = try String(contentsOfFile: peerOut, encoding: .utf8).split(separator: "\n")
            .map { try decoder.decode(Peer.self, from: Data($0.utf8)) }
        #expect(ours.count == Self.connections && peers.count == Self.connections)
        for connection in ours {
            #expect(connection.outcome == "ok")
            let peer = try #require(peers.first { $0.peer_port == connection.local_port }, "no kernel side for \(connection)")
            #expect(connection.sent == Self.bytes && peer.received == Self.bytes && peer.received_crc == connection.sent_crc,
                    "netmp -> kernel on port \(peer.peer_port)")
            #expect(connection.received == Self.bytes && peer.sent_crc == connection.received_crc,
                    "kernel -> netmp on port \(peer.peer_port)")
        }
        // Ownership: both cores own some, each connection on its hash owner, as the driver
        // and `netmp stat --json` report it.
        let steering = FlowSteering(cores: 2)
        // The rows are published while the connections wind down: one whose peer closed
        // first may already be gone (CLOSED after LAST-ACK), so every row is checked, and
        // the driver's own record of each connection's owner covers all eight.
        let rows = summary.stats.connections
        #expect(!rows.isEmpty && rows.count <= Self.connections)
        for connection in ours {
            let port = try #require(connection.local_port.flatMap { UInt16(exactly: $0) })
            let tuple = FourTuple(local: Endpoint(IPv4Address(10, 77, 0, 2), port), remote: Endpoint(IPv4Address(10, 77, 0, 1), 5003))
            #expect(connection.core == steering.owner(of: tuple), "port \(port) owned by core \(String(describing: connection.core))")
        }
        #expect(Set(ours.compactMap(\.core)) == [0, 1], "owners \(ours.map(\.core))")
        for row in rows {
            let local = row.local.split(separator: ":"), remote = row.remote.split(separator: ":")
            let tuple = FourTuple(local: Endpoint(IPv4Address(local[0])!, UInt16(local[1])!),
                                  remote: Endpoint(IPv4Address(remote[0])!, UInt16(remote[1])!))
            #expect(row.core == steering.owner(of: tuple), "\(row.local)-\(row.remote) on core \(row.core)")
        }
        // Both cores worked. (Their connection counts may be 0 by now: a connection whose
        // peer closed first is gone once its FIN is acknowledged, which with offloads
        // happens well within the driver's wait.)
        #expect(summary.stats.cores.allSatisfy { $0.frames_in > 0 && $0.messages > 0 })
        let forwarded = summary.stats.cores.reduce(0) { $0 + $1.forwarded }
        let arrived = summary.stats.cores.reduce(0) { $0 + $1.frames_in }
        let mbit = Double(Self.bytes * Self.connections) * 8 / 1e6 / summary.seconds
        print("2 cores, 8 connections, 32 MiB each way each: \(String(format: "%.2f", summary.seconds)) s, "
              + "\(String(format: "%.0f", mbit)) Mbit/s each way in all; frames forwarded to their owner: "
              + "\(forwarded) of \(arrived) (\(String(format: "%.3f", Double(forwarded) * 100 / Double(max(arrived, 1))))%)")
        // The tun driver learns each flow's queue from what the owner transmits: after the
        // handshake nearly nothing should need forwarding.
        #expect(forwarded * 100 < arrived, "more than 1% of frames arrived on the wrong core")
    }
}
