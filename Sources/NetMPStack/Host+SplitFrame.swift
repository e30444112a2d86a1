import NetMPWire

/// A frame the link read in two places (ProtocolLoop's landing): its headers in the
/// receive buffer, and what follows them in a receive ring's free space, where a TCP
/// segment's payload is already where its connection stores it. Only the common segment
/// is taken so; anything else is joined and received whole, where every rule applies.
extension Host {
    /// Takes the frame whose headers are `head` (up to where a TCP payload begins) and whose
    /// remaining bytes are `payload`, if it is a TCP segment that `receive(frame:)` would hand
    /// to TCP unchanged: unicast to our MAC and address, one IPv4 header without options or
    /// an IPv6 header with no extension header after it, not a fragment, lengths adding up
    /// to the two parts exactly, checksums vouched for by the link (the payload is never
    /// read here). Returns false, having done nothing, for any other frame.
    public func receiveSplit(head: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, marks: ArrivalMarks,
                             now: Instant, sink: inout some FrameSink) -> Bool {
        guard marks.checksumsTrusted, let ethernet = try? EthernetFrameView(validating: head),
              ethernet.vlanIdentifier == nil, ethernet.destination == mac else { return false }
        let network = ethernet.payload
        let segmentBytes: UnsafeRawBufferPointer
        let source: IPAddress, destination: IPAddress, addresses: IPAddressPair
        switch ethernet.etherType {
        case EtherType.ipv4:
            guard let header = try? IPv4Header(parsing: network, allowTruncatedPayload: true),
                  header.headerLength == IPv4Header.minimumLength, header.totalLength == network.count + payload.count,
                  header.proto == IPProtocol.tcp, !header.isFragment, header.destination == address,
                  isUnicastSource(header.source), !reassembling else { return false }
            segmentBytes = UnsafeRawBufferPointer(rebasing: network[IPv4Header.minimumLength...])
            source = IPAddress(header.source); destination = IPAddress(header.destination)
            addresses = .v4(source: header.source, destination: header.destination)
        case EtherType.ipv6:
            guard let header = try? IPv6Header(parsing: network, allowTruncatedPayload: true),
                  IPv6Header.length + header.payloadLength == network.count + payload.count,
                  header.nextHeader == IPProtocol.tcp, ipv6.isPreferred(header.destination),
                  !header.source.isMulticast, !reassembling else { return false }
            segmentBytes = UnsafeRawBufferPointer(rebasing: network[IPv6Header.length...])
            source = IPAddress(header.source); destination = IPAddress(header.destination)
            addresses = .v6(source: header.source, destination: header.destination)
        default:
            return false
        }
        guard let segment = try? TCPSegmentHeader(parsing: segmentBytes, addresses: addresses, verifyChecksum: false),
              segment.headerLength == segmentBytes.count else { return false }
        arrival(length: head.count + payload.count, marks: marks, now: now)
        defer { checksumsTrusted = false }
        receiveTCP(segment, payload: payload, source: source, destination: destination, now: now, sink: &sink)
        return true
    }
}
