/// A UDP header (RFC 768).
public struct UDPHeader: Equatable, Sendable {
    public static let length = 8
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// Header plus payload, in bytes.
    public var datagramLength: Int

    public init(sourcePort: UInt16, destinationPort: UInt16, datagramLength: Int) {
        self.sourcePort = sourcePort; self.destinationPort = destinationPort; self.datagramLength = datagramLength
    }

    /// Parses the datagram in `bytes` (the IP payload) and checks the checksum against the
    /// pseudo-header unless the sender sent none (zero) or the link vouched for it.
    public init(parsing bytes: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address,
                verifyChecksum: Bool = true) throws(WireError) {
        try self.init(parsing: bytes, addresses: .v4(source: source, destination: destination), verifyChecksum: verifyChecksum)
    }

    /// Parses the datagram in `bytes`, checking its checksum against the pseudo-header of
    /// `addresses`, of either family. Zero means "no checksum" over IPv4 only.
    public init(parsing bytes: UnsafeRawBufferPointer, addresses: IPAddressPair, verifyChecksum: Bool = true) throws(WireError) {
        guard bytes.count >= Self.length else { throw .udpTruncated }
        let length = Int(bytes.be16(4))
        guard length >= Self.length, length <= bytes.count else { throw .udpBadLength }
        if verifyChecksum, bytes.be16(6) == 0, case .v6 = addresses {
            throw .udpZeroChecksumIPv6 // RFC 8200 8.1: over IPv6 the checksum is not optional
        }
        if verifyChecksum && bytes.be16(6) != 0 {
            var sum = InternetChecksum()
            sum.addPseudoHeader(addresses, protocol: IPProtocol.udp, length: length)
            sum.add(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<length]))
            guard sum.isValid else { throw .udpBadChecksum }
        }
        sourcePort = bytes.be16(0)
        destinationPort = bytes.be16(2)
        datagramLength = length
    }

    /// Writes the header into the start of `datagram` (header + payload already in place) and
    /// fills in the checksum; a computed zero is sent as 0xFFFF (RFC 768). With
    /// `partialChecksum` the field holds only the pseudo-header sum, for the link to finish
    /// (over a run of datagrams sent as one, `datagramLength` is the run's, as the kernel's
    /// segmentation expects).
    public func emit(into datagram: UnsafeMutableRawBufferPointer, source: IPv4Address, destination: IPv4Address,
                     partialChecksum: Bool = false) {
        emit(into: datagram, addresses: .v4(source: source, destination: destination), partialChecksum: partialChecksum)
    }

    /// `emit` with the pseudo-header of `addresses`, of either family.
    public func emit(into datagram: UnsafeMutableRawBufferPointer, addresses: IPAddressPair, partialChecksum: Bool = false) {
        datagram.put16(sourcePort, at: 0)
        datagram.put16(destinationPort, at: 2)
        datagram.put16(UInt16(truncatingIfNeeded: datagramLength), at: 4)
        datagram.put16(0, at: 6)
        var sum = InternetChecksum()
        sum.addPseudoHeader(addresses, protocol: IPProtocol.udp, length: datagramLength)
        if partialChecksum {
            datagram.put16(sum.partial, at: 6)
            return
        }
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: datagram[0..<datagramLength]))
        let value = sum.value
        datagram.put16(value == 0 ? 0xFFFF : value, at: 6)
    }
}
