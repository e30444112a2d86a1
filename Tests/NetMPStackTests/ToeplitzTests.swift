import NetMPStack
import NetMPTCP
import NetMPTestSupport
import NetMPWire
import Testing

@Suite struct ToeplitzTests {
    /// Microsoft's RSS verification suite: key 6d5a56da..., 66.9.149.187:2794 ->
    /// 161.142.100.80:1766 hashes to 0x51ccc178 with ports and 0x323e8fc2 without.
    @Test func microsoftVerificationVector() {
        let key: [UInt8] = [0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
                            0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
                            0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa]
        let rss = Toeplitz(key: key)
        let source = Endpoint(IPv4Address(66, 9, 149, 187), 2794), destination = Endpoint(IPv4Address(161, 142, 100, 80), 1766)
        #expect(rss.hash(source: source, destination: destination) == 0x51CC_C178)
        #expect(rss.hash([66, 9, 149, 187, 161, 142, 100, 80]) == 0x323E_8FC2)
    }

    /// The 0x6d5a key makes the hash symmetric, so both directions of a flow meet on one core.
    @Test func symmetricKey_sameOwnerBothDirections_spreadsOverCores() {
        var rng = SeededGenerator(state: 11)
        var perCore = [0, 0, 0, 0]
        for _ in 0..<10_000 {
            let a = Endpoint(IPv4Address(UInt32(truncatingIfNeeded: rng.next())), UInt16(truncatingIfNeeded: rng.next()))
            let b = Endpoint(IPv4Address(UInt32(truncatingIfNeeded: rng.next())), UInt16(truncatingIfNeeded: rng.next()))
            let forward = Toeplitz.symmetric.owner(of: FourTuple(local: a, remote: b), cores: 4)
            #expect(forward == Toeplitz.symmetric.owner(of: FourTuple(local: b, remote: a), cores: 4))
            perCore[forward] += 1
        }
        #expect(perCore.allSatisfy { (2_000...3_000).contains($0) }, "\(perCore)")
    }
}
