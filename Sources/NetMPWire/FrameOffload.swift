/// What a frame asks of the link beyond carrying it, as the virtio-net header says it to a
/// TAP: finish the transport checksum (the field holds only the pseudo-header sum), and cut
/// a TCP super-segment into segments of `segmentSize` payload bytes (TSO), or a run of
/// equal UDP datagrams sent as one frame into those datagrams (USO). A frame with no
/// request is complete as it is. Offsets count from the frame's first byte.
public struct FrameOffload: Equatable, Sendable {
    /// Where the transport header starts: the checksum covers the bytes from here to the end.
    public var checksumStart = 0
    /// Where the checksum field is inside the transport header; 0: the checksums are complete.
    public var checksumOffset = 0
    /// TCP payload bytes per wire segment; 0: the frame goes out as one segment.
    public var segmentSize = 0
    /// Ethernet, IPv4 and TCP headers: what every wire segment of a super-segment repeats.
    public var headerLength = 0
    /// The segments are UDP datagrams of `segmentSize` payload bytes each (the last may be
    /// shorter), not TCP segments.
    public var datagrams = false
    /// The frame is IPv6 (the kernel's GSO type is TCPV6, and each wire segment has only a
    /// payload length to set), not IPv4.
    public var ipv6 = false

    public init(checksumStart: Int = 0, checksumOffset: Int = 0, segmentSize: Int = 0, headerLength: Int = 0,
                datagrams: Bool = false, ipv6: Bool = false) {
        self.checksumStart = checksumStart; self.checksumOffset = checksumOffset
        self.segmentSize = segmentSize; self.headerLength = headerLength; self.datagrams = datagrams
        self.ipv6 = ipv6
    }

    public static let none = FrameOffload()

    /// A transport's checksum request (offsets from its own header) placed in a whole frame
    /// whose transport header starts at `transportOffset`; none when it asks for nothing.
    /// Segmentation is the sender's to add, where the frame exceeds the MTU.
    public func placed(at transportOffset: Int, ipv6: Bool) -> FrameOffload {
        guard needsChecksum else { return .none }
        return FrameOffload(checksumStart: transportOffset, checksumOffset: checksumOffset,
                            headerLength: transportOffset + headerLength, ipv6: ipv6)
    }
    public var needsChecksum: Bool { checksumOffset != 0 }
    public var segments: Bool { segmentSize > 0 }

    /// How many wire segments `frameLength` bytes become.
    public func wireSegments(frameLength: Int) -> Int {
        guard segmentSize > 0 else { return 1 }
        return max(1, (frameLength - headerLength + segmentSize - 1) / segmentSize)
    }

    /// Does in software what the request asks of the link, for links that cannot (a test's
    /// frame collector, the fault injector, which must see wire frames): calls `emit` with
    /// each finished frame. `frame` is Ethernet + IPv4 or IPv6 (no extension headers) + transport; it is changed in place
    /// when only the checksum is owed. `scratch` holds one wire frame
    /// (`headerLength + segmentSize` bytes) for a super-segment.
    /// `selecting`, for a super-segment: only the wire segments whose index it accepts.
    public func complete(_ frame: UnsafeMutableRawBufferPointer, scratch: UnsafeMutableRawBufferPointer,
                         selecting: ((Int) -> Bool)? = nil, emit: (UnsafeRawBufferPointer) -> Void) {
        guard segments else {
            if needsChecksum { Self.finishChecksum(frame, start: checksumStart, offset: checksumOffset) }
            emit(UnsafeRawBufferPointer(frame))
            return
        }
        let view = UnsafeRawBufferPointer(frame)
        let addresses: IPAddressPair = ipv6
            ? .v6(source: IPv6Address.read(from: view, at: checksumStart - 32), destination: IPv6Address.read(from: view, at: checksumStart - 16))
            : .v4(source: IPv4Address(view.be32(checksumStart - 8)), destination: IPv4Address(view.be32(checksumStart - 4)))
        if datagrams {
            // UDP, as the kernel's __udp_gso_segment cuts it: each datagram its own UDP length
            // and a whole checksum.
            cut(frame, scratch: scratch, selecting: selecting) { out, _, _, _ in
                let datagram = UnsafeMutableRawBufferPointer(rebasing: out[checksumStart...])
                let view = UnsafeRawBufferPointer(datagram)
                UDPHeader(sourcePort: view.be16(0), destinationPort: view.be16(2), datagramLength: datagram.count)
                    .emit(into: datagram, addresses: addresses)
                emit(UnsafeRawBufferPointer(out))
            }
            return
        }
        // TCP, as the kernel's tcp_gso_segment cuts it: each segment its own sequence number;
        // FIN and PSH only on the last, CWR only on the first.
        let firstSequence = UnsafeRawBufferPointer(frame).be32(checksumStart + 4)
        let flags = frame[checksumStart + 13]
        cut(frame, scratch: scratch, selecting: selecting) { out, offset, index, last in
            out.put32(firstSequence &+ UInt32(truncatingIfNeeded: offset), at: checksumStart + 4)
            var segmentFlags = flags
            if !last { segmentFlags &= ~(TCPFlags.fin.rawValue | TCPFlags.psh.rawValue) }
            if index > 0 { segmentFlags &= ~TCPFlags.cwr.rawValue }
            out[checksumStart + 13] = segmentFlags
            var sum = InternetChecksum()
            sum.addPseudoHeader(addresses, protocol: IPProtocol.tcp, length: out.count - checksumStart)
            out.put16(0, at: checksumStart + 16)
            sum.add(bytes: UnsafeRawBufferPointer(rebasing: out[checksumStart...]))
            out.put16(sum.value, at: checksumStart + 16)
            emit(UnsafeRawBufferPointer(out))
        }
    }

    /// Cuts the payload into wire segments in `scratch`, one at a time: each repeats the
    /// headers (Ethernet, IPv4 and transport) with its slice of the payload, its own IPv4
    /// length and identification (counting up from the frame's, as the kernel's segmentation
    /// does) and IPv4 checksum; `finish` completes its transport header and passes it on.
    func cut(_ frame: UnsafeMutableRawBufferPointer, scratch: UnsafeMutableRawBufferPointer, selecting: ((Int) -> Bool)?,
             finish: (_ segment: UnsafeMutableRawBufferPointer, _ offset: Int, _ index: Int, _ last: Bool) -> Void) {
        let ip = checksumStart - (ipv6 ? IPv6Header.length : IPv4Header.minimumLength)
        let payloadLength = frame.count - headerLength
        let firstIdentification = ipv6 ? 0 : UnsafeRawBufferPointer(frame).be16(ip + 4)
        var offset = 0, index = 0
        while offset < payloadLength {
            let count = min(segmentSize, payloadLength - offset)
            if let selecting, !selecting(index) {
                offset += count
                index += 1
                continue
            }
            let out = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<(headerLength + count)])
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[0..<headerLength]))
            UnsafeMutableRawBufferPointer(rebasing: out[headerLength...])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[(headerLength + offset)..<(headerLength + offset + count)]))
            if ipv6 {
                out.put16(UInt16(out.count - ip - IPv6Header.length), at: ip + 4) // no identification, no checksum
            } else {
                out.put16(UInt16(out.count - ip), at: ip + 2)
                out.put16(firstIdentification &+ UInt16(truncatingIfNeeded: index), at: ip + 4)
                out.put16(0, at: ip + 10)
                out.put16(InternetChecksum.of(UnsafeRawBufferPointer(rebasing: out[ip..<checksumStart])), at: ip + 10)
            }
            finish(out, offset, index, offset + count == payloadLength)
            offset += count
            index += 1
        }
    }

    /// Completes a partial transport checksum: the field holds the pseudo-header sum, so the
    /// sum over the transport bytes with it in place is the whole sum.
    public static func finishChecksum(_ frame: UnsafeMutableRawBufferPointer, start: Int, offset: Int) {
        var sum = InternetChecksum()
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: frame[start...]))
        // A computed zero goes out as all ones: the same sum, and UDP's zero means "none".
        frame.put16(sum.value == 0 ? 0xFFFF : sum.value, at: start + offset)
    }
}
