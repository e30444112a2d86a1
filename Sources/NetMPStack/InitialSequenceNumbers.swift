import NetMPTCP
import NetMPWire

/// RFC 6528 initial sequence numbers: ISN = M + F(4-tuple, secret), where M ticks every
/// 4 microseconds and F is SipHash-2-4 keyed with a per-process secret, so that a blind
/// attacker cannot predict another connection's ISN.
public struct InitialSequenceNumbers: Sendable {
    let key0: UInt64, key1: UInt64
    public init(secret: (UInt64, UInt64)) { key0 = secret.0; key1 = secret.1 }

    public func next(for tuple: FourTuple, now: Instant) -> SequenceNumber {
        let local = tuple.local.address.bits, remote = tuple.remote.address.bits
        let ports = UInt64(tuple.local.port) << 16 | UInt64(tuple.remote.port)
        let f = sipHash24(local.high, local.low, remote.high, remote.low, ports)
        return SequenceNumber(UInt32(truncatingIfNeeded: now.nanoseconds / 4_000) &+ UInt32(truncatingIfNeeded: f))
    }

    /// The TCP timestamp clock's offset for connections between two addresses (RFC 7323
    /// 5.4): secret, but the same for every connection of the pair, so the clock a peer sees
    /// only moves forward from one connection to the next, as Linux's secure_tcp_ts_off.
    public func timestampOffset(local: IPAddress, remote: IPAddress) -> UInt32 {
        UInt32(truncatingIfNeeded: sipHash24(local.bits.high, local.bits.low, remote.bits.high, remote.bits.low,
                                             0x7473_6f66_6673_6574))
    }

    /// Where the search for a connection's ephemeral port starts (RFC 6056 3.3.4, as Linux's
    /// inet_sk_port_offset): a keyed hash of the addresses and the remote port, so that
    /// ports to one peer are not predictable from ports to another, and connections to
    /// different peers rarely share a port.
    public func ephemeralPortOffset(local: IPAddress, remote: Endpoint) -> UInt64 {
        sipHash24(local.bits.high, local.bits.low, remote.address.bits.high, remote.address.bits.low,
                  0x7072_7400_0000_0000 | UInt64(remote.port))
    }

    /// SipHash-2-4 (Aumasson and Bernstein) of five 64-bit words: a 4-tuple of either
    /// family, both addresses in their 16-byte form.
    func sipHash24(_ m0: UInt64, _ m1: UInt64, _ m2: UInt64, _ m3: UInt64, _ m4: UInt64) -> UInt64 {
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ key0
        var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ key1
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ key0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ key1
        func round() {
            v0 &+= v1; v1 = v1.rotatedLeft(13); v1 ^= v0; v0 = v0.rotatedLeft(32)
            v2 &+= v3; v3 = v3.rotatedLeft(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotatedLeft(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotatedLeft(17); v1 ^= v2; v2 = v2.rotatedLeft(32)
        }
        func absorb(_ m: UInt64) { v3 ^= m; round(); round(); v0 ^= m }
        absorb(m0); absorb(m1); absorb(m2); absorb(m3); absorb(m4)
        absorb(UInt64(40) << 56)
        v2 ^= 0xFF
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    func rotatedLeft(_ n: UInt64) -> UInt64 { self << n | self >> (64 - n) }
}
