/// An ARP packet for Ethernet and IPv4 (RFC 826), the only combination netmp speaks.
public struct ARPPacket: Equatable, Sendable {
    public static let length = 28
    public enum Operation: UInt16, Sendable { case request = 1, reply = 2 }
    enum Offset {
        static let hardwareType = 0, protocolType = 2, hardwareLength = 4, protocolLength = 5
        static let operation = 6, senderMAC = 8, senderIP = 14, targetMAC = 18, targetIP = 24
    }

    public var operation: Operation
    public var senderMAC: MACAddress
    public var senderIP: IPv4Address
    public var targetMAC: MACAddress
    public var targetIP: IPv4Address

    public init(operation: Operation, senderMAC: MACAddress, senderIP: IPv4Address,
                targetMAC: MACAddress, targetIP: IPv4Address) {
        self.operation = operation; self.senderMAC = senderMAC; self.senderIP = senderIP
        self.targetMAC = targetMAC; self.targetIP = targetIP
    }

    /// Parses an ARP payload; trailing Ethernet padding is ignored.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Self.length else { throw .arpTruncated }
        guard bytes.be16(Offset.hardwareType) == 1, bytes[Offset.hardwareLength] == 6 else {
            throw .arpUnsupportedHardware
        }
        guard bytes.be16(Offset.protocolType) == EtherType.ipv4, bytes[Offset.protocolLength] == 4 else {
            throw .arpUnsupportedProtocol
        }
        guard let op = Operation(rawValue: bytes.be16(Offset.operation)) else { throw .arpBadOperation }
        operation = op
        senderMAC = .read(from: bytes, at: Offset.senderMAC)
        senderIP = IPv4Address(bytes.be32(Offset.senderIP))
        targetMAC = .read(from: bytes, at: Offset.targetMAC)
        targetIP = IPv4Address(bytes.be32(Offset.targetIP))
    }

    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        buffer.put16(1, at: Offset.hardwareType)
        buffer.put16(EtherType.ipv4, at: Offset.protocolType)
        buffer.put8(6, at: Offset.hardwareLength)
        buffer.put8(4, at: Offset.protocolLength)
        buffer.put16(operation.rawValue, at: Offset.operation)
        senderMAC.write(to: buffer, at: Offset.senderMAC)
        buffer.put32(senderIP.value, at: Offset.senderIP)
        targetMAC.write(to: buffer, at: Offset.targetMAC)
        buffer.put32(targetIP.value, at: Offset.targetIP)
        return Self.length
    }
}
