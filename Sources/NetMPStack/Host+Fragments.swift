import NetMPTCP
import NetMPWire

/// Fragments of either family (RFC 791, RFC 8200 4.5). Arriving ones are put back together
/// by `FragmentReassembly` and the whole packet is then received as if it had come whole
/// (its checksums summed in software: the link vouched for no fragment). A packet larger
/// than the MTU that the link cannot cut (a UDP datagram, an ICMP message; never TCP,
/// which finds the path's MTU instead) leaves in fragments cut from the host's scratch
/// buffer in place, each one's headers written over the end of the one sent before it.
extension Host {
    // MARK: Reassembly

    func reassembleIPv4(_ datagram: UnsafeRawBufferPointer, header: IPv4Header, now: Instant, sink: inout some FrameSink) {
        let key = FragmentReassembly.Key(source: IPAddress(header.source), destination: IPAddress(header.destination),
                                         identification: UInt32(header.identification), proto: header.proto)
        let outcome = reassembly.add(key, ipv6: false, header: UnsafeRawBufferPointer(rebasing: datagram[0..<header.headerLength]),
                                     offset: header.fragmentOffset, moreFragments: header.moreFragments,
                                     data: UnsafeRawBufferPointer(rebasing: datagram[header.headerLength...]),
                                     limit: Int(UInt16.max) - header.headerLength, now: now)
        counters.drops.count(.fragmentEvicted, UInt64(reassembly.takeEvictions()))
        guard let whole = take(outcome) else { return }
        // The first fragment's header, now the whole datagram's: its length, no fragment
        // fields, its checksum again.
        let packet = whole.packet
        packet.put16(UInt16(packet.count), at: 2)
        packet.put16(0, at: 6)
        packet.put16(0, at: 10)
        packet.put16(InternetChecksum.of(UnsafeRawBufferPointer(rebasing: packet[0..<whole.headerLength])), at: 10)
        receiveWhole(whole) { receiveIPv4(UnsafeRawBufferPointer(packet), now: now, sink: &sink) }
    }

    /// RFC 8200 4.5: a fragment other than the last must hold a multiple of 8 bytes, and
    /// none may reach past the 64 KiB a packet holds; each is answered with a parameter
    /// problem pointing at the field at fault. The unfragmentable part is kept as the whole
    /// packet will have it: the next-header field that named the fragment header names
    /// what followed it (the first fragment's, which is the one kept).
    func reassembleIPv6(_ packet: UnsafeRawBufferPointer, header: IPv6Header, fragment: IPv6ExtensionHeaders.Fragment,
                        now: Instant, sink: inout some FrameSink) {
        let data = UnsafeRawBufferPointer(rebasing: packet[fragment.dataOffset...])
        let unfragmentable = fragment.headerOffset
        let problem: (pointer: Int, reason: PolicyDrop)? =
            fragment.moreFragments && data.count % 8 != 0 ? (4, .fragmentBadLength)
            : unfragmentable - IPv6Header.length + fragment.offset + data.count > Int(UInt16.max) ? (fragment.headerOffset + 2, .fragmentTooLarge)
            : nil
        if let problem {
            counters.drops.count(problem.reason)
            sendICMPv6Error(type: ICMPv6Message.Kind.parameterProblem, code: ICMPv6Message.ProblemCode.erroneousField,
                            parameter: UInt32(problem.pointer), for: packet, header: header, now: now, sink: &sink)
            return
        }
        guard unfragmentable <= FragmentReassembly.maximumHeader else { counters.drops.count(.fragmentTooLarge); return }
        let kept = UnsafeMutableRawBufferPointer(rebasing: fragmentHeader[0..<unfragmentable])
        kept.copyMemory(from: UnsafeRawBufferPointer(rebasing: packet[0..<unfragmentable]))
        kept[fragment.namingField] = fragment.nextHeader
        let key = FragmentReassembly.Key(source: IPAddress(header.source), destination: IPAddress(header.destination),
                                         identification: fragment.identification, proto: 0)
        let outcome = reassembly.add(key, ipv6: true, header: UnsafeRawBufferPointer(kept), offset: fragment.offset,
                                     moreFragments: fragment.moreFragments, data: data,
                                     limit: Int(UInt16.max) - (unfragmentable - IPv6Header.length), now: now)
        counters.drops.count(.fragmentEvicted, UInt64(reassembly.takeEvictions()))
        guard let whole = take(outcome) else { return }
        whole.packet.put16(UInt16(whole.packet.count - IPv6Header.length), at: 4)
        receiveWhole(whole) { receiveIPv6(UnsafeRawBufferPointer(whole.packet), now: now, sink: &sink) }
    }

    /// The whole packet an outcome gave, after counting a drop it gave instead.
    func take(_ outcome: FragmentReassembly.Outcome) -> FragmentReassembly.Whole? {
        switch outcome {
        case .incomplete: return nil
        case .dropped(let reason): counters.drops.count(reason); return nil
        case .whole(let whole): counters.reassembled &+= 1; return whole
        }
    }

    /// Receives a reassembled packet: its checksums are summed (no link vouched for it), a
    /// fragment inside it or a TCP segment in it is not delivered; its buffer goes back after.
    func receiveWhole(_ whole: FragmentReassembly.Whole, _ receive: () -> Void) {
        let trusted = checksumsTrusted
        checksumsTrusted = false
        reassembling = true
        receive()
        reassembling = false
        checksumsTrusted = trusted
        reassembly.recycle(whole)
    }

    /// Abandons the packets not complete in time. The sender of one whose first fragment
    /// came is told (ICMP time exceeded, fragment reassembly: RFC 792, RFC 8200 4.5).
    func expireFragments(now: Instant, sink: inout some FrameSink) {
        guard reassembly.packetsWaiting > 0 else { return }
        let expired = reassembly.expire(now: now) { key, isIPv6, first in
            if isIPv6 {
                let header = IPv6Header(payloadLength: first.count - IPv6Header.length, nextHeader: first[6],
                                        source: key.source.bits, destination: key.destination.bits)
                guard ipv6.isPreferred(header.destination) else { return }
                sendICMPv6Error(type: ICMPv6Message.Kind.timeExceeded, code: 1, for: first, header: header, now: now, sink: &sink)
            } else if key.destination == IPAddress(address), let header = try? IPv4Header(parsing: first) {
                sendICMPError(type: ICMPv4Message.Kind.timeExceeded, code: 1, for: first, header: header, now: now, sink: &sink)
            }
        }
        counters.drops.count(.fragmentTimeout, UInt64(expired))
    }

    // MARK: Fragmentation

    /// The most an IP payload of `family` may hold without fragments on this link.
    public func unfragmentedPayload(ipv6: Bool) -> Int {
        ipv6 ? (routers6.mtu ?? configuration.mtu) - IPv6Header.length : configuration.mtu - IPv4Header.minimumLength
    }

    /// Sends an IPv4 payload of `payloadLength` bytes, larger than the MTU, in fragments of
    /// at most the MTU (their data a multiple of 8 bytes), all with the next identification.
    func sendFragmentsIPv4(to destination: IPv4Address, nextHop: IPv4Address, broadcast: Bool, proto: UInt8, payloadLength: Int,
                           typeOfService: UInt8, timeToLive: UInt8, loop: Bool, now: Instant, sink: inout some FrameSink,
                           fill: (UnsafeMutableRawBufferPointer) -> Void) -> Result<Void, SendError> {
        let headers = EthernetFrameView.headerLength + IPv4Header.minimumLength
        guard IPv4Header.minimumLength + payloadLength <= Int(UInt16.max), headers + payloadLength <= scratch.count else {
            counters.drops.count(.frameTooLarge); return .failure(.tooLarge)
        }
        fill(UnsafeMutableRawBufferPointer(rebasing: scratch[headers..<(headers + payloadLength)]))
        let each = (configuration.mtu - IPv4Header.minimumLength) & ~7
        let identification = nextIdentification
        nextIdentification &+= 1
        var offset = 0
        while offset < payloadLength {
            let count = min(each, payloadLength - offset)
            // This fragment's headers go just in front of its data, over the end of the last one's.
            let frame = UnsafeMutableRawBufferPointer(rebasing: scratch[offset..<(headers + offset + count)])
            var ip = IPv4Header(totalLength: IPv4Header.minimumLength + count, proto: proto, source: address,
                                destination: destination, timeToLive: timeToLive,
                                identification: identification, dontFragment: false)
            ip.typeOfService = typeOfService
            ip.fragmentOffset = offset
            ip.moreFragments = offset + count < payloadLength
            _ = ip.emit(into: UnsafeMutableRawBufferPointer(rebasing: frame[EthernetFrameView.headerLength...]))
            counters.fragmentsOut &+= 1
            if case .failure(let error) = deliverIPv4(frame, nextHop: nextHop, broadcast: broadcast, offload: .none, loop: loop,
                                                      now: now, sink: &sink) {
                return .failure(error)
            }
            offset += count
        }
        return .success(())
    }

    /// Sends an IPv6 payload of `payloadLength` bytes (what follows the fixed header),
    /// larger than the path's MTU, in fragments: each the fixed header, a fragment header
    /// naming `nextHeader`, and its data (a multiple of 8 bytes but for the last).
    func sendFragmentsIPv6(to destination: IPv6Address, from source: IPv6Address, nextHop: IPv6Address, nextHeader: UInt8,
                           payloadLength: Int, hopLimit: UInt8, trafficClass: UInt8, loop: Bool, now: Instant, sink: inout some FrameSink,
                           fill: (UnsafeMutableRawBufferPointer) -> Void) -> Result<Void, SendError> {
        let headers = EthernetFrameView.headerLength + IPv6Header.length + 8
        guard payloadLength <= Int(UInt16.max) - 8, headers + payloadLength <= scratch.count else {
            counters.drops.count(.frameTooLarge); return .failure(.tooLarge)
        }
        fill(UnsafeMutableRawBufferPointer(rebasing: scratch[headers..<(headers + payloadLength)]))
        let each = ((routers6.mtu ?? configuration.mtu) - IPv6Header.length - 8) & ~7
        let identification = nextFragmentIdentification
        nextFragmentIdentification &+= 1
        var offset = 0
        while offset < payloadLength {
            let count = min(each, payloadLength - offset)
            let frame = UnsafeMutableRawBufferPointer(rebasing: scratch[offset..<(headers + offset + count)])
            let ip = UnsafeMutableRawBufferPointer(rebasing: frame[EthernetFrameView.headerLength...])
            var header = IPv6Header(payloadLength: 8 + count, nextHeader: IPv6NextHeader.fragment, source: source,
                                    destination: destination, hopLimit: hopLimit)
            header.trafficClass = trafficClass
            header.emit(into: ip)
            ip[IPv6Header.length] = nextHeader
            ip[IPv6Header.length + 1] = 0
            ip.put16(UInt16(offset) | (offset + count < payloadLength ? 1 : 0), at: IPv6Header.length + 2)
            ip.put32(identification, at: IPv6Header.length + 4)
            counters.fragmentsOut &+= 1
            if case .failure(let error) = deliverIPv6(frame, destination: destination, nextHop: nextHop, source: source,
                                                      offload: .none, loop: loop, now: now, sink: &sink) {
                return .failure(error)
            }
            offset += count
        }
        return .success(())
    }
}
