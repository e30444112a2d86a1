/// Which frames a capture keeps: the part of the pcap-filter language (tcpdump's) people
/// type most. Primitives: `ip`, `ip6`, `arp`, `tcp`, `udp`, `icmp`, `icmp6`;
/// `[src|dst] host ADDR` (either family; an IPv4 host also matches ARP's addresses);
/// `[src|dst] net ADDR/LEN`; `[src|dst] port N` and `[src|dst] portrange N-M` (TCP or UDP,
/// a packet's first fragment). `tcp port 80` reads as `tcp and port 80`. Combined with
/// `and`/`&&`, `or`/`||`, `not`/`!` and parentheses; an empty filter keeps everything.
/// Matching reads the frame once and allocates nothing.
public struct CaptureFilter: Sendable, Equatable, CustomStringConvertible {
    public enum Direction: Sendable { case either, source, destination }

    indirect enum Node: Sendable {
        case all
        case etherType(UInt16)
        case transport(UInt8, v4: Bool, v6: Bool)
        case net(IPAddress, prefix: Int, Direction)
        case ports(ClosedRange<UInt16>, Direction)
        case not(Node)
        case and(Node, Node)
        case or(Node, Node)
    }

    let root: Node
    public let description: String
    /// Two filters parsed from the same text are the same filter.
    public static func == (a: CaptureFilter, b: CaptureFilter) -> Bool { a.description == b.description }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Parses `text`; the error says which word it could not take and why.
    public init(_ text: String) throws(ParseError) {
        var parser = Parser(tokens: Self.tokens(text))
        root = parser.atEnd ? .all : try parser.expression()
        guard parser.atEnd else { throw ParseError(description: "unexpected '\(parser.tokens[parser.next])'") }
        description = text
    }

    /// Whether `frame` (an Ethernet frame, as on the wire) passes.
    public func matches(_ frame: UnsafeRawBufferPointer) -> Bool {
        if case .all = root { return true }
        return Self.evaluate(root, FrameSummary(frame))
    }

    static func evaluate(_ node: Node, _ frame: FrameSummary) -> Bool {
        switch node {
        case .all: return true
        case .etherType(let type): return frame.etherType == type
        case .transport(let proto, let v4, let v6):
            return frame.transport == proto && ((v4 && frame.etherType == EtherType.ipv4) || (v6 && frame.etherType == EtherType.ipv6))
        case .net(let address, let prefix, let direction):
            let source = frame.source.map { Self.within($0, address, prefix) } ?? false
            let destination = frame.destination.map { Self.within($0, address, prefix) } ?? false
            switch direction {
            case .either: return source || destination
            case .source: return source
            case .destination: return destination
            }
        case .ports(let range, let direction):
            guard let sourcePort = frame.sourcePort, let destinationPort = frame.destinationPort else { return false }
            switch direction {
            case .either: return range.contains(sourcePort) || range.contains(destinationPort)
            case .source: return range.contains(sourcePort)
            case .destination: return range.contains(destinationPort)
            }
        case .not(let inner): return !evaluate(inner, frame)
        case .and(let a, let b): return evaluate(a, frame) && evaluate(b, frame)
        case .or(let a, let b): return evaluate(a, frame) || evaluate(b, frame)
        }
    }

    /// `address` within `network`/`prefix` (bits of the 128-bit form: an IPv4 network's
    /// prefix is counted past the mapped form's 96 bits, so families never mix).
    static func within(_ address: IPAddress, _ network: IPAddress, _ prefix: Int) -> Bool {
        let bits = network.isIPv4 ? 96 + prefix : prefix
        let a = address.bits, n = network.bits
        func masked(_ word: UInt64, _ keep: Int) -> UInt64 { keep <= 0 ? 0 : keep >= 64 ? word : word & ~(UInt64.max >> UInt64(keep)) }
        return masked(a.high, bits) == masked(n.high, bits) && masked(a.low, bits - 64) == masked(n.low, bits - 64)
    }

    // MARK: The frame, read once

    /// What the primitives look at: the EtherType after VLAN tags, the network addresses
    /// (ARP's sender and target for ARP), and the transport protocol and ports.
    struct FrameSummary {
        var etherType: UInt16 = 0
        var source: IPAddress? = nil
        var destination: IPAddress? = nil
        var transport: UInt8? = nil
        var sourcePort: UInt16? = nil
        var destinationPort: UInt16? = nil

        init(_ frame: UnsafeRawBufferPointer) {
            guard frame.count >= 14 else { return }
            var type = frame.be16(12)
            var at = 14
            var tags = 0
            while (type == EtherType.vlan || type == EtherType.serviceVLAN) && tags < 2 && frame.count >= at + 4 {
                type = frame.be16(at + 2)
                at += 4
                tags += 1
            }
            etherType = type
            let packet = UnsafeRawBufferPointer(rebasing: frame[at...])
            switch type {
            case EtherType.ipv4:
                guard packet.count >= 20, packet[0] >> 4 == 4 else { return }
                let headerLength = Int(packet[0] & 0x0F) * 4
                source = IPAddress(IPv4Address(packet.be32(12)))
                destination = IPAddress(IPv4Address(packet.be32(16)))
                transport = packet[9]
                let firstFragment = packet.be16(6) & 0x1FFF == 0
                if firstFragment { readPorts(packet, at: headerLength) }
            case EtherType.ipv6:
                guard packet.count >= 40, packet[0] >> 4 == 6 else { return }
                source = IPAddress(IPv6Address.read(from: packet, at: 8))
                destination = IPAddress(IPv6Address.read(from: packet, at: 24))
                var next = packet[6]
                var offset = 40
                var firstFragment = true
                // Extension headers, as many as a receiver walks (IPv6ExtensionHeaders).
                for _ in 0..<IPv6ExtensionHeaders.maximumHeaders {
                    switch next {
                    case IPv6NextHeader.hopByHop, IPv6NextHeader.destinationOptions, IPv6NextHeader.routing:
                        guard packet.count >= offset + 8 else { return }
                        next = packet[offset]
                        offset += (Int(packet[offset + 1]) + 1) * 8
                        continue
                    case IPv6NextHeader.fragment:
                        guard packet.count >= offset + 8 else { return }
                        next = packet[offset]
                        firstFragment = packet.be16(offset + 2) & 0xFFF8 == 0
                        offset += 8
                        continue
                    default: break
                    }
                    break
                }
                transport = next
                if firstFragment { readPorts(packet, at: offset) }
            case EtherType.arp:
                // IPv4 over Ethernet: sender and target protocol addresses.
                guard packet.count >= 28, packet.be16(2) == EtherType.ipv4, packet[5] == 4 else { return }
                source = IPAddress(IPv4Address(packet.be32(14)))
                destination = IPAddress(IPv4Address(packet.be32(24)))
            default: return
            }
        }

        mutating func readPorts(_ packet: UnsafeRawBufferPointer, at offset: Int) {
            guard transport == IPProtocol.tcp || transport == IPProtocol.udp, packet.count >= offset + 4 else { return }
            sourcePort = packet.be16(offset)
            destinationPort = packet.be16(offset + 2)
        }
    }

    // MARK: Parsing

    static func tokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var word = ""
        func flush() { if !word.isEmpty { tokens.append(word); word = "" } }
        var characters = Array(text)[...]
        while let c = characters.popFirst() {
            switch c {
            case " ", "\t", "\n": flush()
            case "(", ")": flush(); tokens.append(String(c))
            case "!" where characters.first != "=": flush(); tokens.append("!")
            case "&" where characters.first == "&", "|" where characters.first == "|":
                flush(); characters.removeFirst(); tokens.append(String([c, c]))
            default: word.append(c)
            }
        }
        flush()
        return tokens
    }

    struct Parser {
        let tokens: [String]
        var next = 0
        var atEnd: Bool { next >= tokens.count }
        var peek: String? { atEnd ? nil : tokens[next].lowercased() }

        mutating func take() throws(ParseError) -> String {
            guard !atEnd else { throw ParseError(description: "the filter ends too soon") }
            next += 1
            return tokens[next - 1]
        }

        mutating func expression() throws(ParseError) -> Node {
            var node = try conjunction()
            while peek == "or" || peek == "||" {
                next += 1
                node = .or(node, try conjunction())
            }
            return node
        }

        mutating func conjunction() throws(ParseError) -> Node {
            var node = try unary()
            while peek == "and" || peek == "&&" {
                next += 1
                node = .and(node, try unary())
            }
            return node
        }

        mutating func unary() throws(ParseError) -> Node {
            switch peek {
            case "not", "!":
                next += 1
                return .not(try unary())
            case "(":
                next += 1
                let inner = try expression()
                guard try take() == ")" else { throw ParseError(description: "expected ')'") }
                return inner
            default:
                return try primitive()
            }
        }

        mutating func primitive() throws(ParseError) -> Node {
            let word = try take().lowercased()
            let proto: Node? = switch word {
            case "ip": .etherType(EtherType.ipv4)
            case "ip6": .etherType(EtherType.ipv6)
            case "arp": .etherType(EtherType.arp)
            case "tcp": .transport(IPProtocol.tcp, v4: true, v6: true)
            case "udp": .transport(IPProtocol.udp, v4: true, v6: true)
            case "icmp": .transport(IPProtocol.icmp, v4: true, v6: false)
            case "icmp6": .transport(IPv6NextHeader.icmpv6, v4: false, v6: true)
            default: nil
            }
            if let proto {
                // `tcp port 80`, `udp src port 53`: the protocol qualifies what follows.
                if let after = peek, ["port", "portrange", "src", "dst"].contains(after) { return .and(proto, try primitive()) }
                return proto
            }
            var direction = Direction.either
            var kind = word
            if word == "src" || word == "dst" {
                direction = word == "src" ? .source : .destination
                kind = try take().lowercased()
            }
            switch kind {
            case "host":
                let text = try take()
                guard let address = Self.address(text) else { throw ParseError(description: "'\(text)' is not an IPv4 or IPv6 address") }
                return .net(address, prefix: address.isIPv4 ? 32 : 128, direction)
            case "net":
                let text = try take()
                let parts = text.split(separator: "/", maxSplits: 1)
                guard parts.count == 2, let address = Self.address(parts[0]), let prefix = Int(parts[1]),
                      prefix >= 0, prefix <= (address.isIPv4 ? 32 : 128) else {
                    throw ParseError(description: "'\(text)' is not a network (ADDRESS/LENGTH)")
                }
                return .net(address, prefix: prefix, direction)
            case "port":
                let text = try take()
                guard let port = UInt16(text) else { throw ParseError(description: "'\(text)' is not a port number") }
                return .ports(port...port, direction)
            case "portrange":
                let text = try take()
                let parts = text.split(separator: "-", maxSplits: 1)
                guard parts.count == 2, let low = UInt16(parts[0]), let high = UInt16(parts[1]), low <= high else {
                    throw ParseError(description: "'\(text)' is not a port range (LOW-HIGH)")
                }
                return .ports(low...high, direction)
            default:
                throw ParseError(description: "'\(kind)' is not a filter primitive (host, net, port, portrange, ip, ip6, arp, tcp, udp, icmp, icmp6)")
            }
        }

        static func address(_ text: some StringProtocol) -> IPAddress? {
            if let v4 = IPv4Address(text) { return IPAddress(v4) }
            if let v6 = IPv6Address(text) { return IPAddress(v6) }
            return nil
        }
    }
}
