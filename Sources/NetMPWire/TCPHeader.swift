/// TCP control bits (RFC 9293 3.1, RFC 3168 for ECE and CWR).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// A TCP segment header with its options (RFC 9293 3.1).
public struct TCPSegmentHeader: Equatable, Sendable {
    public static let minimumLength = 20
    /// Where the checksum field is, for checksum offload.
    public static let checksumOffset = 16
    enum Offset { static let sourcePort = 0, destinationPort = 2, sequence = 4, acknowledgment = 8
                  static let dataOffset = 12, flags = 13, window = 14, checksum = 16, urgent = 18 }

    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// SEG.SEQ
    public var sequenceNumber: UInt32
    /// SEG.ACK
    public var acknowledgmentNumber: UInt32
    public var flags: TCPFlags
    /// SEG.WND, unscaled as on the wire.
    public var window: UInt16
    /// SEG.UP
    public var urgentPointer: UInt16 = 0
    public var options = TCPOptions()
    /// Header length in bytes, options included; set by parse, derived by emit.
    public private(set) var headerLength = 20

    public init(sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32,
                acknowledgmentNumber: UInt32, flags: TCPFlags, window: UInt16, options: TCPOptions = TCPOptions()) {
        self.sourcePort = sourcePort; self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber; self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags; self.window = window; self.options = options
        headerLength = Self.minimumLength + options.encodedLength
    }

    /// Parses the segment in `bytes` (the whole IP payload) and checks its checksum against
    /// the pseudo-header unless the link vouched for it.
    public init(parsing bytes: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address,
                verifyChecksum: Bool = true) throws(WireError) {
        try self.init(parsing: bytes, addresses: .v4(source: source, destination: destination), verifyChecksum: verifyChecksum)
    }

    /// Parses the segment in `bytes`, checking its checksum against the pseudo-header of
    /// `addresses`, of either family.
    public init(parsing bytes: UnsafeRawBufferPointer, addresses: IPAddressPair, verifyChecksum: Bool = true) throws(WireError) {
        guard bytes.count >= Self.minimumLength else { throw .tcpTruncated }
        let offset = Int(bytes[Offset.dataOffset] >> 4) * 4
        guard offset >= Self.minimumLength, offset <= bytes.count else { throw .tcpBadDataOffset }
        if verifyChecksum {
            var sum = InternetChecksum()
            sum.addPseudoHeader(addresses, protocol: IPProtocol.tcp, length: bytes.count)
            sum.add(bytes: bytes)
            guard sum.isValid else { throw .tcpBadChecksum }
        }
        sourcePort = bytes.be16(Offset.sourcePort)
        destinationPort = bytes.be16(Offset.destinationPort)
        sequenceNumber = bytes.be32(Offset.sequence)
        acknowledgmentNumber = bytes.be32(Offset.acknowledgment)
        flags = TCPFlags(rawValue: bytes[Offset.flags])
        window = bytes.be16(Offset.window)
        urgentPointer = bytes.be16(Offset.urgent)
        options = try TCPOptions(parsing: UnsafeRawBufferPointer(rebasing: bytes[Self.minimumLength..<offset]))
        headerLength = offset
    }

    /// Writes header and options at the start of `segment` (payload already after them) and
    /// the checksum over `segmentLength` bytes; with `partialChecksum`, only the pseudo-header
    /// sum, which the link completes (checksum offload: no pass over the payload here).
    /// Returns the header length.
    @discardableResult
    public func emit(into segment: UnsafeMutableRawBufferPointer, segmentLength: Int,
                     source: IPv4Address, destination: IPv4Address, partialChecksum: Bool = false) -> Int {
        emit(into: segment, segmentLength: segmentLength, addresses: .v4(source: source, destination: destination),
             partialChecksum: partialChecksum)
    }

    /// `emit` with the pseudo-header of `addresses`, of either family.
    @discardableResult
    public func emit(into segment: UnsafeMutableRawBufferPointer, segmentLength: Int, addresses: IPAddressPair,
                     partialChecksum: Bool = false) -> Int {
        let length = Self.minimumLength + options.encodedLength
        segment.put16(sourcePort, at: Offset.sourcePort)
        segment.put16(destinationPort, at: Offset.destinationPort)
        segment.put32(sequenceNumber, at: Offset.sequence)
        segment.put32(acknowledgmentNumber, at: Offset.acknowledgment)
        segment.put8(UInt8(length / 4) << 4, at: Offset.dataOffset)
        segment.put8(flags.rawValue, at: Offset.flags)
        segment.put16(window, at: Offset.window)
        segment.put16(0, at: Offset.checksum)
        segment.put16(urgentPointer, at: Offset.urgent)
        options.emit(into: UnsafeMutableRawBufferPointer(rebasing: segment[Self.minimumLength...]))
        var sum = InternetChecksum()
        sum.addPseudoHeader(addresses, protocol: IPProtocol.tcp, length: segmentLength)
        if partialChecksum {
            segment.put16(sum.partial, at: Offset.checksum)
            return length
        }
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: segment[0..<segmentLength]))
        segment.put16(sum.value, at: Offset.checksum)
        return length
    }
}
