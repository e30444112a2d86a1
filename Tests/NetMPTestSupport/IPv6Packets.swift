import NetMPWire

/// An IPv6 packet for tests: the fixed header, `extensions` (each a next-header value and
/// its bytes, whose first byte, the next header, is set here), then `payload` of protocol
/// `upper`.
public func ipv6Packet(_ extensions: [(type: UInt8, bytes: [UInt8])] = [], upper: UInt8 = IPv6NextHeader.noNextHeader,
                       payload: [UInt8] = [], source: IPv6Address = IPv6Address("fd77::1")!,
                       destination: IPv6Address = IPv6Address("fd77::2")!, hopLimit: UInt8 = 64) -> [UInt8] {
    var body: [UInt8] = []
    for (i, ext) in extensions.enumerated() {
        var bytes = ext.bytes
        bytes[0] = i + 1 < extensions.count ? extensions[i + 1].type : upper
        body += bytes
    }
    body += payload
    var packet = [UInt8](repeating: 0, count: 40 + body.count)
    _ = packet.withUnsafeMutableBytes { b in
        IPv6Header(payloadLength: body.count, nextHeader: extensions.first?.type ?? upper, source: source,
                   destination: destination, hopLimit: hopLimit).emit(into: b)
    }
    packet.replaceSubrange(40..., with: body)
    return packet
}

/// An options header (hop-by-hop or destination) holding `options`, padded to 8 bytes.
public func optionsHeader(_ options: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0] + options
    let pad = (8 - bytes.count % 8) % 8
    if pad == 1 { bytes += [0] } else if pad > 1 { bytes += [1, UInt8(pad - 2)] + [UInt8](repeating: 0, count: pad - 2) }
    bytes[1] = UInt8(bytes.count / 8 - 1)
    return bytes
}
