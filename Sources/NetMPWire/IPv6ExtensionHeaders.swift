/// The walk over an IPv6 packet's extension headers (RFC 8200 4) to its upper layer. A
/// host processes hop-by-hop and destination options, a routing header with no segments
/// left and a fragment header; everything else ends the chain as the upper layer, known or
/// not. The walk is bounded as Linux bounds it (headers, options and padding per header),
/// so a packet built to make a receiver loop is dropped by name.
public struct IPv6ExtensionHeaders: Equatable, Sendable {
    /// The limits: Linux's max_hbh_opts_number and max_dst_opts_number are 8, and it takes
    /// no run of padding longer than 7 bytes (RFC 4942 2.1.9.5).
    public static let maximumHeaders = 8
    public static let maximumOptions = 8
    public static let maximumPadding = 7

    public struct Fragment: Equatable, Sendable {
        /// Offset of this fragment's data in the original packet, in bytes.
        public var offset: Int
        public var moreFragments: Bool
        public var identification: UInt32
        /// Where the fragment header starts (the unfragmentable part ends there), where the
        /// next-header field that names it is, and what the fragment header names: what
        /// reassembly needs to put the packet back together (RFC 8200 4.5).
        public var headerOffset: Int
        public var namingField: Int
        public var nextHeader: UInt8
        public init(offset: Int, moreFragments: Bool, identification: UInt32, headerOffset: Int = 40, namingField: Int = 6,
                    nextHeader: UInt8 = 0) {
            self.offset = offset; self.moreFragments = moreFragments; self.identification = identification
            self.headerOffset = headerOffset; self.namingField = namingField; self.nextHeader = nextHeader
        }
        /// The fragment's data: from the end of the fragment header to the packet's end.
        public var dataOffset: Int { headerOffset + 8 }
    }

    /// What RFC 8200 answers with an ICMPv6 parameter problem: the code (0 erroneous header
    /// field, 1 unrecognised next header, 2 unrecognised option) and the offset of the
    /// offending byte from the start of the IPv6 header.
    public struct Problem: Equatable, Sendable {
        public var code: UInt8
        public var pointer: Int
        /// Option types whose high bits are 11 are answered only when the packet was not
        /// sent to a multicast address.
        public var unlessMulticast: Bool
        public init(code: UInt8, pointer: Int, unlessMulticast: Bool) {
            self.code = code; self.pointer = pointer; self.unlessMulticast = unlessMulticast
        }
    }

    /// The upper-layer protocol: TCP, UDP, ICMPv6, no-next-header, or one netmp does not know.
    public var upperLayer: UInt8
    /// Where the upper-layer header starts, counted from the start of the IPv6 header.
    public var upperLayerOffset: Int
    /// Where the next-header field that named `upperLayer` is (a parameter problem's pointer).
    public var nextHeaderFieldOffset: Int
    /// The fragment header, when the packet is a fragment; an atomic fragment (offset 0, no
    /// more fragments) is a whole packet (RFC 6946) and leaves this nil. For a fragment
    /// past the first, the upper layer is not here and `upperLayer` is what it would be.
    public var fragment: Fragment?
    /// Something the receiver must refuse with a parameter problem; the walk stopped there.
    public var problem: Problem?

    /// Walks `packet` (the IPv6 header and exactly its payload).
    public init(walking packet: UnsafeRawBufferPointer) throws(WireError) {
        guard packet.count >= IPv6Header.length else { throw .ipv6Truncated }
        var next = packet[6]
        var field = 6
        var offset = IPv6Header.length
        var headers = 0
        fragment = nil
        problem = nil
        walk: while true {
            switch next {
            case IPv6NextHeader.hopByHop, IPv6NextHeader.destinationOptions, IPv6NextHeader.routing:
                guard next != IPv6NextHeader.hopByHop || offset == IPv6Header.length else { throw .ipv6HopByHopNotFirst }
                headers += 1
                guard headers <= Self.maximumHeaders else { throw .ipv6ExtensionChainTooLong }
                guard offset + 8 <= packet.count else { throw .ipv6ExtensionTruncated }
                let length = (Int(packet[offset + 1]) + 1) * 8
                guard offset + length <= packet.count else { throw .ipv6ExtensionTruncated }
                if next == IPv6NextHeader.routing {
                    // A host forwards nothing: a routing header with segments left names a
                    // hop netmp cannot be (RFC 8200 4.4 points at the routing type).
                    if packet[offset + 3] != 0 {
                        problem = Problem(code: 0, pointer: offset + 2, unlessMulticast: false); break walk
                    }
                } else if let found = try Self.options(packet, from: offset + 2, to: offset + length) {
                    problem = found; break walk
                }
                field = offset
                next = packet[offset]
                offset += length
            case IPv6NextHeader.fragment:
                headers += 1
                guard headers <= Self.maximumHeaders else { throw .ipv6ExtensionChainTooLong }
                guard offset + 8 <= packet.count else { throw .ipv6ExtensionTruncated }
                let word = packet.be16(offset + 2)
                let piece = Fragment(offset: Int(word >> 3) * 8, moreFragments: word & 1 == 1,
                                     identification: packet.be32(offset + 4), headerOffset: offset, namingField: field,
                                     nextHeader: packet[offset])
                if piece.offset != 0 || piece.moreFragments { fragment = piece }
                field = offset
                next = packet[offset]
                offset += 8
                // Past the first fragment, what follows is the middle of the upper layer.
                if piece.offset != 0 { break walk }
            default:
                break walk
            }
        }
        upperLayer = next
        upperLayerOffset = offset
        nextHeaderFieldOffset = field
    }

    /// Checks the type-length-value options between `start` and `end` (RFC 8200 4.2);
    /// returns the problem an unknown option's action asks to report.
    static func options(_ packet: UnsafeRawBufferPointer, from start: Int, to end: Int) throws(WireError) -> Problem? {
        var at = start
        var padding = 0
        var options = 0
        while at < end {
            let type = packet[at]
            if type == 0 { // Pad1
                padding += 1
                guard padding <= maximumPadding else { throw .ipv6BadPadding }
                at += 1
                continue
            }
            guard at + 2 <= end else { throw .ipv6BadOption }
            let length = Int(packet[at + 1])
            guard at + 2 + length <= end else { throw .ipv6BadOption }
            if type == 1 { // PadN: its bytes are zero, or they carry something hidden
                padding += 2 + length
                guard padding <= maximumPadding else { throw .ipv6BadPadding }
                for i in 0..<length where packet[at + 2 + i] != 0 { throw .ipv6BadPadding }
                at += 2 + length
                continue
            }
            padding = 0
            options += 1
            guard options <= maximumOptions else { throw .ipv6TooManyOptions }
            // Router alert (5) is for routers; every other option is unknown to a host and
            // handled as its type's two high bits say.
            if type != 5 {
                switch type >> 6 {
                case 0: break
                case 1: throw .ipv6UnrecognizedOption
                default: return Problem(code: 2, pointer: at, unlessMulticast: type >> 6 == 3)
                }
            }
            at += 2 + length
        }
        return nil
    }
}
