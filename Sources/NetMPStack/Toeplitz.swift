import NetMPTCP
import NetMPWire

/// The Toeplitz hash of receive-side scaling (Microsoft's RSS specification), which NICs and
/// DragonFly use to pick a CPU for a flow. With a key made of the 16-bit pattern 0x6d5a
/// repeated, the hash is symmetric: swapping source and destination gives the same value,
/// so a connection maps to the same core whichever direction a segment travels.
public struct Toeplitz: Sendable {
    public let key: [UInt8]

    public init(key: [UInt8]) {
        precondition(key.count >= 16, "the key must cover the input plus 32 bits")
        self.key = key
    }

    /// The symmetric key (40 bytes, as RSS uses).
    public static let symmetric = Toeplitz(key: Array(repeating: [0x6D, 0x5A], count: 20).flatMap { $0 })

    /// The hash of `input` (at most key.count - 4 bytes).
    public func hash(_ input: [UInt8]) -> UInt32 {
        var result: UInt32 = 0
        var window = UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3])
        var nextKeyByte = 4
        for byte in input {
            let incoming = nextKeyByte < key.count ? key[nextKeyByte] : 0
            nextKeyByte += 1
            for bit in 0..<8 {
                if byte & (0x80 >> UInt8(bit)) != 0 { result ^= window }
                window = window << 1 | UInt32((incoming >> UInt8(7 - bit)) & 1)
            }
        }
        return result
    }

    /// The RSS input with ports: source address, destination address, source port,
    /// destination port, all in network order; 12 bytes for IPv4, 36 for IPv6.
    public func hash(source: Endpoint, destination: Endpoint) -> UInt32 {
        var input: [UInt8] = []
        input.reserveCapacity(36)
        for address in [source.address, destination.address] {
            if let v4 = address.v4 {
                let word = v4.value
                input += [UInt8(word >> 24), UInt8(word >> 16 & 0xFF), UInt8(word >> 8 & 0xFF), UInt8(word & 0xFF)]
            } else {
                for half in [address.bits.high, address.bits.low] {
                    input += (0..<8).map { UInt8(truncatingIfNeeded: half >> UInt64(56 - 8 * $0)) }
                }
            }
        }
        for port in [source.port, destination.port] { input += [UInt8(port >> 8), UInt8(port & 0xFF)] }
        return hash(input)
    }

    /// The owning core of a connection among `cores`: the same from either direction.
    public func owner(of tuple: FourTuple, cores: Int) -> Int {
        Int(hash(source: tuple.local, destination: tuple.remote) % UInt32(max(cores, 1)))
    }
}
