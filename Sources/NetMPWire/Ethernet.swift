/// Ethernet II EtherType values netmp acts on.
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    public static let ipv6: UInt16 = 0x86DD
    public static let vlan: UInt16 = 0x8100      // IEEE 802.1Q
    public static let serviceVLAN: UInt16 = 0x88A8 // IEEE 802.1ad (QinQ outer tag)
}

/// A checked view of an Ethernet II frame. 802.1Q/802.1ad tags (up to two) are parsed and
/// reported in `vlanIdentifier`, so the stack can drop tagged frames by name.
public struct EthernetFrameView {
    public static let headerLength = 14
    enum Offset { static let destination = 0, source = 6, etherType = 12 }

    public let bytes: UnsafeRawBufferPointer
    public let destination: MACAddress
    public let source: MACAddress
    /// The EtherType after any VLAN tags.
    public let etherType: UInt16
    /// The VLAN ID of the innermost tag, nil for an untagged frame.
    public let vlanIdentifier: UInt16?
    /// Where the payload starts (14, 18 or 22).
    public let payloadOffset: Int

    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Self.headerLength else { throw .ethernetTruncated }
        self.bytes = bytes
        destination = MACAddress.read(from: bytes, at: Offset.destination)
        source = MACAddress.read(from: bytes, at: Offset.source)
        var type = bytes.be16(Offset.etherType)
        var offset = Self.headerLength
        var vlan: UInt16? = nil
        var tags = 0
        while type == EtherType.vlan || type == EtherType.serviceVLAN {
            tags += 1
            guard tags <= 2, bytes.count >= offset + 4 else { throw .vlanTruncated }
            vlan = bytes.be16(offset) & 0x0FFF
            type = bytes.be16(offset + 2)
            offset += 4
        }
        etherType = type
        vlanIdentifier = vlan
        payloadOffset = offset
    }

    public var payload: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[payloadOffset...]) }
}

/// An untagged Ethernet II header to emit.
public struct EthernetHeader: Equatable, Sendable {
    public var destination: MACAddress
    public var source: MACAddress
    public var etherType: UInt16
    public init(destination: MACAddress, source: MACAddress, etherType: UInt16) {
        self.destination = destination; self.source = source; self.etherType = etherType
    }

    /// Writes the 14-byte header at the start of `buffer`; returns its length.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        destination.write(to: buffer, at: EthernetFrameView.Offset.destination)
        source.write(to: buffer, at: EthernetFrameView.Offset.source)
        buffer.put16(etherType, at: EthernetFrameView.Offset.etherType)
        return EthernetFrameView.headerLength
    }
}
