import NetMPTCP
import NetMPWire

/// Which core handles a frame. Every TCP connection belongs to the core its 4-tuple hashes
/// to (the symmetric Toeplitz hash, so both directions agree); a frame that arrived on
/// another core's queue goes to the owner by message. ARP and IPv6 neighbour discovery go
/// to every core, since each keeps its own neighbour cache; everything else (ICMP echo, UDP, what is not for us) is
/// handled where it arrived.
///
/// The hash is table-driven: Toeplitz is linear in its input, so the hash of 12 bytes is
/// the XOR of 12 looked-up values, with no allocation and no loop over bits per frame.
public struct FlowSteering: Sendable {
    public enum Target: Equatable, Sendable {
        case arrivalCore
        case owner(Int)
        case everyCore
    }

    public let cores: Int
    /// Per input byte position and value, its share of the hash: 12 positions for IPv4's
    /// input, 36 for IPv6's (the hash of a byte depends on its position only).
    let table: [UInt32]

    public init(cores: Int, toeplitz: Toeplitz = .symmetric) {
        precondition(cores >= 1)
        self.cores = cores
        var table = [UInt32](repeating: 0, count: 36 * 256)
        var input = [UInt8](repeating: 0, count: 36)
        for position in 0..<36 {
            for value in 1..<256 {
                input[position] = UInt8(value)
                table[position * 256 + value] = toeplitz.hash(input)
            }
            input[position] = 0
        }
        self.table = table
    }

    /// The hash of the RSS input (source address, destination address, source port,
    /// destination port); the same as `Toeplitz.hash(source:destination:)`.
    public func hash(source: Endpoint, destination: Endpoint) -> UInt32 {
        table.withUnsafeBufferPointer { t in
            var h: UInt32 = 0
            func mix(_ word: UInt32, bytes: Int, at position: Int) {
                for i in 0..<bytes {
                    let byte = Int((word >> UInt32(8 * (bytes - 1 - i))) & 0xFF)
                    h ^= t[(position + i) * 256 + byte]
                }
            }
            if let s = source.address.v4, let d = destination.address.v4 {
                mix(s.value, bytes: 4, at: 0)
                mix(d.value, bytes: 4, at: 4)
                mix(UInt32(source.port), bytes: 2, at: 8)
                mix(UInt32(destination.port), bytes: 2, at: 10)
                return h
            }
            let s = source.address.bits, d = destination.address.bits
            func mix(half: UInt64, at position: Int) {
                mix(UInt32(truncatingIfNeeded: half >> 32), bytes: 4, at: position)
                mix(UInt32(truncatingIfNeeded: half), bytes: 4, at: position + 4)
            }
            mix(half: s.high, at: 0); mix(half: s.low, at: 8); mix(half: d.high, at: 16); mix(half: d.low, at: 24)
            mix(UInt32(source.port), bytes: 2, at: 32)
            mix(UInt32(destination.port), bytes: 2, at: 34)
            return h
        }
    }

    /// The core that owns a connection.
    public func owner(of tuple: FourTuple) -> Int {
        cores == 1 ? 0 : Int(hash(source: tuple.local, destination: tuple.remote) % UInt32(cores))
    }

    /// Where an arriving Ethernet frame must be handled. Reads only fixed offsets, with
    /// bounds checks: a malformed frame stays on its arrival core, whose host counts it.
    public func target(of frame: UnsafeRawBufferPointer, localAddress: IPv4Address) -> Target {
        guard cores > 1, frame.count >= 14 else { return .arrivalCore }
        let etherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
        if etherType == EtherType.arp { return .everyCore }
        // Neighbour discovery (ICMPv6 133-137 right after the fixed header) is IPv6's ARP:
        // every core keeps its own neighbour cache and follows address detection.
        if etherType == EtherType.ipv6 {
            guard frame.count >= 14 + 44, frame[14] >> 4 == 6 else { return .arrivalCore }
            switch frame[14 + 6] {
            case IPv6NextHeader.icmpv6:
                let type = frame[14 + 40]
                if (ICMPv6Message.Kind.routerSolicitation...ICMPv6Message.Kind.neighbourAdvertisement).contains(type) {
                    return .everyCore
                }
                // Unreachable, packet too big and time exceeded quoting a TCP segment of ours
                // (no extension headers): the connection's owner.
                let quote = 14 + 48
                guard (1...3).contains(type), frame.count >= quote + 44, frame[quote] >> 4 == 6,
                      frame[quote + 6] == IPProtocol.tcp else { return .arrivalCore }
                let view = UnsafeRawBufferPointer(rebasing: frame[quote...])
                let source = IPv6Address.read(from: view, at: 8), destination = IPv6Address.read(from: view, at: 24)
                let ports = (source: view.bigEndian16(at: 40), destination: view.bigEndian16(at: 42))
                return .owner(owner(of: FourTuple(local: Endpoint(source, ports.source),
                                                  remote: Endpoint(destination, ports.destination))))
            case IPProtocol.tcp:
                // A segment with no extension headers (what TCP peers send): its owner.
                let view = UnsafeRawBufferPointer(rebasing: frame[14...])
                let source = IPv6Address.read(from: view, at: 8), destination = IPv6Address.read(from: view, at: 24)
                let ports = (source: view.bigEndian16(at: 40), destination: view.bigEndian16(at: 42))
                return .owner(owner(of: FourTuple(local: Endpoint(destination, ports.destination),
                                                  remote: Endpoint(source, ports.source))))
            default:
                return .arrivalCore
            }
        }
        guard etherType == EtherType.ipv4, let ip = IPv4Fields(frame, at: 14) else { return .arrivalCore }
        guard ip.destination == localAddress, !ip.isFragment else { return .arrivalCore }
        switch ip.proto {
        case IPProtocol.tcp:
            guard let ports = ip.ports(frame) else { return .arrivalCore }
            return .owner(owner(of: FourTuple(local: Endpoint(ip.destination, ports.destination),
                                              remote: Endpoint(ip.source, ports.source))))
        case IPProtocol.icmp:
            // Destination unreachable (3) and time exceeded (11) quote our segment: they
            // concern the connection that sent it.
            let icmp = ip.payloadOffset
            guard icmp + 8 <= frame.count, frame[icmp] == 3 || frame[icmp] == 11,
                  let quoted = IPv4Fields(frame, at: icmp + 8), quoted.proto == IPProtocol.tcp,
                  quoted.source == localAddress, let ports = quoted.ports(frame) else { return .arrivalCore }
            return .owner(owner(of: FourTuple(local: Endpoint(quoted.source, ports.source),
                                              remote: Endpoint(quoted.destination, ports.destination))))
        default:
            return .arrivalCore
        }
    }
}

/// The few IPv4 header fields steering needs, read in place.
struct IPv4Fields {
    let offset: Int
    let headerLength: Int
    let proto: UInt8
    let source: IPv4Address
    let destination: IPv4Address
    let isFragment: Bool

    init?(_ frame: UnsafeRawBufferPointer, at offset: Int) {
        guard offset + 20 <= frame.count, frame[offset] >> 4 == 4 else { return nil }
        headerLength = Int(frame[offset] & 0x0F) * 4
        guard headerLength >= 20 else { return nil }
        self.offset = offset
        proto = frame[offset + 9]
        let fragment = UInt16(frame[offset + 6]) << 8 | UInt16(frame[offset + 7])
        isFragment = fragment & 0x3FFF != 0
        func word(_ at: Int) -> UInt32 {
            UInt32(frame[at]) << 24 | UInt32(frame[at + 1]) << 16 | UInt32(frame[at + 2]) << 8 | UInt32(frame[at + 3])
        }
        source = IPv4Address(word(offset + 12))
        destination = IPv4Address(word(offset + 16))
    }

    var payloadOffset: Int { offset + headerLength }

    /// The transport's source and destination ports, if the frame holds them.
    func ports(_ frame: UnsafeRawBufferPointer) -> (source: UInt16, destination: UInt16)? {
        let at = payloadOffset
        guard at + 4 <= frame.count else { return nil }
        return (UInt16(frame[at]) << 8 | UInt16(frame[at + 1]), UInt16(frame[at + 2]) << 8 | UInt16(frame[at + 3]))
    }
}

extension UnsafeRawBufferPointer {
    /// The 16-bit field at `offset`, in network order (a port).
    fileprivate func bigEndian16(at offset: Int) -> UInt16 { UInt16(self[offset]) << 8 | UInt16(self[offset + 1]) }
}
