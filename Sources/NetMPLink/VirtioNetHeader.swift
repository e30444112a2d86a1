import NetMPWire

/// The virtio-net header a TAP opened with IFF_VNET_HDR puts before every frame
/// (struct virtio_net_hdr, include/uapi/linux/virtio_net.h; little-endian on a TAP whose
/// TUNSETVNETLE is unset, which on x86 is native). It carries checksum and segmentation
/// offload between netmp and the kernel: a 64 KiB TCP super-frame crosses in one write.
public struct VirtioNetHeader: Equatable, Sendable {
    public static let length = 10

    public enum GSOType: UInt8, Sendable { case none = 0, tcpV4 = 1, udp = 3, tcpV6 = 4, udpL4 = 5 }
    /// VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at csumStart+csumOffset is a partial sum.
    public static let needsChecksum: UInt8 = 1
    /// VIRTIO_NET_HDR_F_DATA_VALID: the kernel already verified the checksums.
    public static let dataValid: UInt8 = 2

    public var flags: UInt8 = 0
    public var gsoType: GSOType = .none
    public var headerLength: UInt16 = 0
    public var gsoSize: UInt16 = 0
    public var checksumStart: UInt16 = 0
    public var checksumOffset: UInt16 = 0

    public init() {}
    public static let none = VirtioNetHeader()

    /// The header that asks the kernel for what `offload` requests: TCP over IPv4 or IPv6
    /// for a super-segment, UDP (GSO_UDP_L4) for a run of datagrams.
    public init(_ offload: FrameOffload) {
        if offload.needsChecksum {
            flags = Self.needsChecksum
            checksumStart = UInt16(offload.checksumStart)
            checksumOffset = UInt16(offload.checksumOffset)
        }
        if offload.segments {
            gsoType = offload.datagrams ? .udpL4 : offload.ipv6 ? .tcpV6 : .tcpV4
            gsoSize = UInt16(offload.segmentSize)
            headerLength = UInt16(offload.headerLength)
        }
    }

    public init(parsing bytes: UnsafeRawBufferPointer) throws(LinkError) {
        guard bytes.count >= Self.length else { throw .truncatedVirtioHeader }
        // The ECN bit (0x80) may be set on GSO frames; the type is in the low bits.
        guard let type = GSOType(rawValue: bytes[1] & 0x7F) else { throw .unknownGSOType(bytes[1]) }
        flags = bytes[0]
        gsoType = type
        headerLength = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        gsoSize = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        checksumStart = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        checksumOffset = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
    }

    public func emit(into bytes: UnsafeMutableRawBufferPointer) {
        bytes[0] = flags
        bytes[1] = gsoType.rawValue
        bytes.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        bytes.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        bytes.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        bytes.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
    }

    /// The kernel vouched for the frame's checksums (or will compute them): the stack may
    /// skip verifying them.
    public var checksumsTrusted: Bool { flags & (Self.dataValid | Self.needsChecksum) != 0 }

    /// The wire segments a frame of `frameLength` bytes stands for: a super-frame (GSO) of
    /// many MSS counts as that many.
    public func wireSegments(frameLength: Int) -> Int {
        guard gsoType != .none, gsoSize > 0 else { return 1 }
        // hdr_len is only a hint (wireguard-go recomputes it); a rounding up is enough here.
        let payload = max(0, frameLength - Int(headerLength))
        return max(1, (payload + Int(gsoSize) - 1) / Int(gsoSize))
    }
}
