import NetMPWire

/// Where the host puts frames it sends. The runtime's sink writes to a TAP queue; tests
/// collect frames in an array.
public protocol FrameSink {
    mutating func transmit(_ frame: UnsafeRawBufferPointer)
    /// A frame with an offload request (a partial checksum, a TCP super-segment). Only a
    /// host whose `offloads` say the link can sends these; a sink that cannot has the
    /// default, which finishes the frame in software.
    mutating func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload)
    /// A frame with an offload request whose payload was left where it lies (`payload`, a
    /// socket's send ring): its last `payload.count` bytes are room kept for it, not yet
    /// written. A sink that writes with a gather list takes the payload from there; the
    /// default copies it into place first.
    mutating func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload, payload: PayloadSpans)
}

extension FrameSink {
    public mutating func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload) {
        transmitCompletingInSoftware(frame, offload: offload)
    }

    public mutating func transmit(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload, payload: PayloadSpans) {
        payload.place(atEndOf: frame)
        transmit(frame, offload: offload)
    }

    /// Finishes what `offload` asks in software and transmits the wire frames (tests, and
    /// the fault injector, which must see what the wire would carry).
    public mutating func transmitCompletingInSoftware(_ frame: UnsafeMutableRawBufferPointer, offload: FrameOffload) {
        guard offload != .none else { transmit(UnsafeRawBufferPointer(frame)); return }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: offload.headerLength + offload.segmentSize,
                                                             alignment: 16)
        defer { scratch.deallocate() }
        offload.complete(frame, scratch: scratch) { transmit($0) }
    }
}

/// What the link does for the host (the TAP's TUNSETOFFLOAD flags it accepted): finish
/// transport checksums, and cut TCP super-segments of up to 64 KiB into wire segments.
public struct LinkOffloads: Equatable, Sendable {
    public var checksum = false
    public var tcpSegmentation = false
    /// Runs of equal UDP datagrams may go as one frame (GSO_UDP_L4). A TAP takes these from
    /// userspace whatever its TUNSETOFFLOAD flags (they only govern what it hands us), on
    /// kernels since 6.2; an older one refuses the write, and the sink turns this off.
    public var udpSegmentation = false
    /// TCP super-segments over IPv6 (TUN_F_TSO6), which a kernel may grant apart from IPv4's.
    public var tcpSegmentation6 = false
    public init(checksum: Bool = false, tcpSegmentation: Bool = false, udpSegmentation: Bool = false,
                tcpSegmentation6: Bool? = nil) {
        self.checksum = checksum; self.tcpSegmentation = tcpSegmentation && checksum
        self.udpSegmentation = udpSegmentation && checksum
        self.tcpSegmentation6 = (tcpSegmentation6 ?? tcpSegmentation) && checksum
    }
    public static let none = LinkOffloads()
}

/// What the link said of an arriving frame (the virtio-net header): the kernel verified or
/// will vouch for its checksums, and a coalesced super-frame stands for several wire segments.
public struct ArrivalMarks: Equatable, Sendable {
    public var checksumsTrusted = false
    public var wireSegments = 1
    public init(checksumsTrusted: Bool = false, wireSegments: Int = 1) {
        self.checksumsTrusted = checksumsTrusted; self.wireSegments = wireSegments
    }
    public static let none = ArrivalMarks()
}
