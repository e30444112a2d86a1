import NetMPStack
import NetMPTestSupport
import NetMPWire

/// Collects what the host transmits.
struct CollectingSink: FrameSink {
    var frames: [[UInt8]] = []
    mutating func transmit(_ frame: UnsafeRawBufferPointer) { frames.append(Array(frame)) }
}


/// The lab's link: netmp at .2, the kernel at .1, a gateway at .254.
enum Lab {
    static let us = IPv4Address(10, 77, 0, 2)
    static let peer = IPv4Address(10, 77, 0, 1)
    static let gateway = IPv4Address(10, 77, 0, 254)
    static let ourMAC = MACAddress(value: 0x0200_0A4D_0002)
    static let peerMAC = MACAddress(value: 0x5222_312C_141B)
    static let gatewayMAC = MACAddress(value: 0x5222_312C_FFFE)

    static func host(gateway: IPv4Address? = Lab.gateway) -> Host {
        Host(configuration: StackConfiguration(tapName: "t", address: us, prefixLength: 24, gateway: gateway, mac: ourMAC))
    }

    static func arp(_ op: ARPPacket.Operation, from mac: MACAddress = peerMAC, ip: IPv4Address = peer,
                    asking target: IPv4Address = us, to destination: MACAddress = .broadcast,
                    targetMAC: MACAddress = .zero) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: 14 + ARPPacket.length)
        frame.withUnsafeMutableBytes { b in
            EthernetHeader(destination: destination, source: mac, etherType: EtherType.arp).emit(into: b)
            _ = ARPPacket(operation: op, senderMAC: mac, senderIP: ip, targetMAC: targetMAC, targetIP: target)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: b[14...]))
        }
        return frame
    }

    /// An IPv4 frame from the peer carrying `payload` (built by `fill` into the payload bytes).
    static func ipv4(proto: UInt8, payloadLength: Int, from: IPv4Address = peer, to: IPv4Address = us,
                     destinationMAC: MACAddress = ourMAC, fill: (UnsafeMutableRawBufferPointer) -> Void) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: 14 + 20 + payloadLength)
        frame.withUnsafeMutableBytes { b in
            EthernetHeader(destination: destinationMAC, source: peerMAC, etherType: EtherType.ipv4).emit(into: b)
            IPv4Header(totalLength: 20 + payloadLength, proto: proto, source: from, destination: to, identification: 7)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: b[14...]))
            fill(UnsafeMutableRawBufferPointer(rebasing: b[34...]))
        }
        return frame
    }

    static func echoRequest(id: UInt16 = 0x1234, sequence: UInt16 = 1, data: [UInt8] = Array(0..<56),
                            to: IPv4Address = us, destinationMAC: MACAddress = ourMAC) -> [UInt8] {
        ipv4(proto: IPProtocol.icmp, payloadLength: 8 + data.count, to: to, destinationMAC: destinationMAC) { out in
            _ = data.withUnsafeBytes { ICMPv4Message.emitEcho(reply: false, identifier: id, sequence: sequence, data: $0, into: out) }
        }
    }

    static func udp(port: UInt16, payload: [UInt8] = Array("hello".utf8)) -> [UInt8] {
        ipv4(proto: IPProtocol.udp, payloadLength: 8 + payload.count) { out in
            for (i, b) in payload.enumerated() { out[8 + i] = b }
            UDPHeader(sourcePort: 40000, destinationPort: port, datagramLength: 8 + payload.count)
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<(8 + payload.count)]), source: peer, destination: us)
        }
    }

    static func tcp(flags: TCPFlags, sequence: UInt32 = 1000, ack: UInt32 = 0, port: UInt16 = 5201, payload: Int = 0) -> [UInt8] {
        let header = TCPSegmentHeader(sourcePort: 40001, destinationPort: port, sequenceNumber: sequence,
                                      acknowledgmentNumber: ack, flags: flags, window: 65535)
        return ipv4(proto: IPProtocol.tcp, payloadLength: 20 + payload) { out in
            header.emit(into: out, segmentLength: 20 + payload, source: peer, destination: us)
        }
    }

    /// Recomputes the IPv4 header checksum of a frame after a test changed the header.
    static func fixIPChecksum(_ frame: inout [UInt8]) {
        let ihl = Int(frame[14] & 0x0F) * 4
        frame[24] = 0; frame[25] = 0
        let sum = frame[14..<(14 + ihl)].withUnsafeBytes(InternetChecksum.of)
        frame[24] = UInt8(sum >> 8); frame[25] = UInt8(sum & 0xFF)
    }
}

extension Host {
    func feed(_ frame: [UInt8], now: Instant = .zero) -> [[UInt8]] {
        var sink = CollectingSink()
        frame.withUnsafeBytes { receive(frame: $0, now: now, sink: &sink) }
        return sink.frames
    }
}

/// A transmitted frame taken apart, for assertions.
struct Sent {
    let ethernet: EthernetHeader
    let bytes: [UInt8]
    init(_ frame: [UInt8]) throws {
        bytes = frame
        let view = try frame.withUnsafeBytes { try EthernetFrameView(validating: $0) }
        ethernet = EthernetHeader(destination: view.destination, source: view.source, etherType: view.etherType)
    }
    var payload: [UInt8] { Array(bytes[14...]) }
    func arp() throws -> ARPPacket { try payload.withUnsafeBytes { try ARPPacket(parsing: $0) } }
    func ip() throws -> IPv4Header { try payload.withUnsafeBytes { try IPv4Header(parsing: $0) } }
    func ipPayload() throws -> [UInt8] {
        let h = try ip()
        return Array(payload[h.headerLength..<h.totalLength])
    }
    func icmp() throws -> ICMPv4Message { try ipPayload().withUnsafeBytes { try ICMPv4Message(parsing: $0) } }
    func tcp() throws -> TCPSegmentHeader {
        let h = try ip()
        return try ipPayload().withUnsafeBytes { try TCPSegmentHeader(parsing: $0, source: h.source, destination: h.destination) }
    }
}
