import NetMPTestSupport
import NetMPWire

/// Bytes from a tcpdump -xx style hex string (whitespace ignored).
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { $0.isHexDigit }
    precondition(digits.count % 2 == 0)
    var out: [UInt8] = []
    var i = digits.startIndex
    while i < digits.endIndex {
        let j = digits.index(i, offsetBy: 2)
        out.append(UInt8(digits[i..<j], radix: 16)!)
        i = j
    }
    return out
}


/// Frames captured with `tcpdump -xx` between two Linux 6.18 network namespaces over a veth
/// (checksum offload off, so every checksum is the one Linux computed in software).
enum Captured {
    static let arpRequest = hex("""
        ffff ffff ffff 5222 312c 141b 0806 0001 0800 0604 0001 5222 312c 141b 0a58 0001
        0000 0000 0000 0a58 0002
        """)
    static let arpReply = hex("""
        5222 312c 141b a229 5818 e1eb 0806 0001 0800 0604 0002 a229 5818 e1eb 0a58 0002
        5222 312c 141b 0a58 0001
        """)
    static let echoRequest = hex("""
        a229 5818 e1eb 5222 312c 141b 0800 4500 0034 63ee 4000 4001 c228 0a58 0001 0a58
        0002 0800 7c75 0dec 0001 4d15 0a6b 0000 0000 bdcc 0c00 0000 0000 1011 1213 1415
        1617
        """)
    static let echoReply = hex("""
        5222 312c 141b a229 5818 e1eb 0800 4500 0034 b0ab 0000 4001 b56b 0a58 0002 0a58
        0001 0000 8475 0dec 0001 4d15 0a6b 0000 0000 bdcc 0c00 0000 0000 1011 1213 1415
        1617
        """)
    /// SYN with MSS 1460, SACK-permitted, timestamps, window scale 10.
    static let tcpSYN = hex("""
        a229 5818 e1eb 5222 312c 141b 0800 4500 003c 7ba2 4000 4006 aa67 0a58 0001 0a58
        0002 90c2 1389 1017 9d88 0000 0000 a002 faf0 cf3e 0000 0204 05b4 0402 080a ceda
        4855 0000 0000 0103 030a
        """)
    static let tcpSYNACK = hex("""
        5222 312c 141b a229 5818 e1eb 0800 4500 003c 0000 4000 4006 260a 0a58 0002 0a58
        0001 1389 90c2 9102 d9b7 1017 9d89 a012 fe88 063f 0000 0204 05b4 0402 080a 2272
        382a ceda 4855 0103 030a
        """)
    /// PSH/ACK carrying "hello\n", with timestamps.
    static let tcpData = hex("""
        a229 5818 e1eb 5222 312c 141b 0800 4500 003a 7ba4 4000 4006 aa67 0a58 0001 0a58
        0002 90c2 1389 1017 9d89 9102 d9b8 8018 003f ef6d 0000 0101 080a ceda 4855 2272
        382a 6865 6c6c 6f0a
        """)
    /// Linux's RST/ACK answering a SYN to a closed port.
    static let tcpRST = hex("""
        5222 312c 141b a229 5818 e1eb 0800 4500 0028 0000 4000 4006 261e 0a58 0002 0a58
        0001 176f c7ec 0000 0000 3041 4d62 5014 0000 3e1f 0000
        """)
    static let udp = hex("""
        a229 5818 e1eb 5222 312c 141b 0800 4500 0024 76a5 4000 4011 af71 0a58 0001 0a58
        0002 de3e 138a 0010 510b 7564 7064 6174 610a
        """)
    /// ICMP port unreachable quoting the UDP datagram 10.88.0.1:41454 -> 10.88.0.2:5998.
    static let portUnreachable = hex("""
        5222 312c 141b a229 5818 e1eb 0800 45c0 003a b788 0000 4001 adc8 0a58 0002 0a58
        0001 0303 11cb 0000 0000 4500 001e d05f 4000 4011 55bd 0a58 0001 0a58 0002 a1ee
        176e 000a b9c0 780a
        """)
    static let hostA = IPv4Address(10, 88, 0, 1)
    static let hostB = IPv4Address(10, 88, 0, 2)
    static let macA = MACAddress(value: 0x5222_312c_141b)
    static let macB = MACAddress(value: 0xa229_5818_e1eb)
}

/// The IP payload of a captured untagged Ethernet frame.
func ipPayload(_ frame: [UInt8]) -> [UInt8] {
    let ihl = Int(frame[14] & 0x0F) * 4
    let total = Int(frame[16]) << 8 | Int(frame[17])
    return Array(frame[(14 + ihl)..<(14 + total)])
}
