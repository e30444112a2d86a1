import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// The TAP steering program, run here by a small interpreter of the eBPF instructions it
/// uses, against `FlowSteering`: for TCP every frame gets its owner core, whichever
/// direction and whatever IPv4 options; UDP flows spread by the same hash; fragments and
/// other protocols by their addresses; anything else queue 0. (Its loading by the kernel's
/// verifier and the kernel's use of it are StackServiceProgramTests'.)
@Suite struct SteeringProgramTests {
    /// Runs `program` on `frame` as the kernel does for a socket filter: legacy packet loads
    /// read big-endian and end the program with 0 past the frame.
    static func run(_ program: [UInt64], on frame: [UInt8]) -> UInt64 {
        var r = [UInt64](repeating: 0, count: 11)
        var pc = 0
        func load(_ at: Int, _ size: Int) -> UInt64? {
            guard at >= 0, at + size <= frame.count else { return nil }
            return frame[at..<(at + size)].reduce(0) { $0 << 8 | UInt64($1) }
        }
        var steps = 0
        while pc < program.count {
            steps += 1
            precondition(steps < 100_000, "the program loops")
            let i = program[pc]
            let code = UInt8(i & 0xFF), dst = Int(i >> 8 & 0xF), src = Int(i >> 12 & 0xF)
            let off = Int(Int16(bitPattern: UInt16(i >> 16 & 0xFFFF)))
            let imm = Int64(Int32(bitPattern: UInt32(i >> 32)))
            pc += 1
            switch code & 0x07 {
            case 0x00: // LD: ABS (0x20) or IND (0x40)
                let size = [0x00: 4, 0x08: 2, 0x10: 1][Int(code & 0x18)]!
                let at = Int(imm) + (code & 0xE0 == 0x40 ? Int(Int32(truncatingIfNeeded: r[src])) : 0)
                guard let value = load(at, size) else { return 0 }
                r[0] = value
            case 0x04, 0x07: // ALU (32-bit, zero-extended) and ALU64
                let wide = code & 0x07 == 0x07
                let operand = code & 0x08 != 0 ? r[src] : UInt64(bitPattern: imm)
                let a = wide ? r[dst] : r[dst] & 0xFFFF_FFFF, b = wide ? operand : operand & 0xFFFF_FFFF
                var v: UInt64
                switch code & 0xF0 {
                case 0x40: v = a | b
                case 0x50: v = a & b
                case 0x60: v = a << (b & (wide ? 63 : 31))
                case 0x70: v = a >> (b & (wide ? 63 : 31))
                case 0x90: v = b == 0 ? a : a % b
                case 0xA0: v = a ^ b
                case 0xB0: v = b
                default: Issue.record("ALU operation \(code) not interpreted"); return .max
                }
                r[dst] = wide ? v : v & 0xFFFF_FFFF
            case 0x05: // JMP
                let b = code & 0x08 != 0 ? r[src] : UInt64(bitPattern: imm)
                switch code & 0xF0 {
                case 0x00: pc += off
                case 0x10: if r[dst] == b { pc += off }
                case 0x40: if r[dst] & b != 0 { pc += off }
                case 0x90: return r[0]
                default: Issue.record("jump \(code) not interpreted"); return .max
                }
            default: Issue.record("instruction class \(code) not interpreted"); return .max
            }
        }
        Issue.record("the program ran off its end")
        return .max
    }

    static let mac: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]

    static func ipv4(_ source: IPv4Address, _ destination: IPv4Address, proto: UInt8, ports: (UInt16, UInt16),
                     options: Int = 0, fragment: UInt16 = 0) -> [UInt8] {
        var frame = mac + [0x08, 0x00]
        let header = 20 + options
        frame += [0x40 | UInt8(header / 4), 0, 0, 60, 0, 1, UInt8(fragment >> 8), UInt8(fragment & 0xFF), 64, proto, 0, 0]
        for word in [source.value, destination.value] { frame += (0..<4).map { UInt8(truncatingIfNeeded: word >> (24 - 8 * $0)) } }
        frame += [UInt8](repeating: 1, count: options) // NOPs
        frame += [UInt8(ports.0 >> 8), UInt8(ports.0 & 0xFF), UInt8(ports.1 >> 8), UInt8(ports.1 & 0xFF)]
        return frame + [UInt8](repeating: 0, count: 16)
    }

    static func ipv6(_ source: IPv6Address, _ destination: IPv6Address, next: UInt8, ports: (UInt16, UInt16)) -> [UInt8] {
        var frame = mac + [0x86, 0xDD, 0x60, 0, 0, 0, 0, 20, next, 64]
        for address in [source, destination] {
            for half in [address.high, address.low] { frame += (0..<8).map { UInt8(truncatingIfNeeded: half >> (56 - 8 * $0)) } }
        }
        frame += [UInt8(ports.0 >> 8), UInt8(ports.0 & 0xFF), UInt8(ports.1 >> 8), UInt8(ports.1 & 0xFF)]
        return frame + [UInt8](repeating: 0, count: 16)
    }

    @Test(arguments: [2, 3, 4, 8])
    func tcpAndUDP_theOwnerFlowSteeringNames(cores: Int) {
        let program = SteeringProgram(cores: cores).instructions
        let steering = FlowSteering(cores: cores)
        var generator = SystemRandomNumberGenerator()
        var seen = Set<UInt64>()
        for n in 0..<300 {
            let us = IPv4Address(10, 77, 0, 2), peer = IPv4Address(UInt32.random(in: 0...UInt32.max, using: &generator))
            let local = UInt16.random(in: 1...65535), remote = UInt16.random(in: 1...65535)
            let owner = UInt64(steering.owner(of: FourTuple(local: Endpoint(us, local), remote: Endpoint(peer, remote))))
            // Arriving (peer to us) with and without IPv4 options, TCP and UDP alike.
            for proto: UInt8 in [6, 17] {
                let frame = Self.ipv4(peer, us, proto: proto, ports: (remote, local), options: 4 * (n % 3))
                #expect(Self.run(program, on: frame) == owner, "\(peer):\(remote) -> \(local), protocol \(proto)")
            }
            seen.insert(owner)
            let us6 = IPv6Address(high: 0xFD77 << 48, low: 2)
            let peer6 = IPv6Address(high: UInt64.random(in: 0...UInt64.max, using: &generator), low: UInt64.random(in: 0...UInt64.max, using: &generator))
            let owner6 = UInt64(steering.owner(of: FourTuple(local: Endpoint(us6, local), remote: Endpoint(peer6, remote))))
            #expect(Self.run(program, on: Self.ipv6(peer6, us6, next: 6, ports: (remote, local))) == owner6)
        }
        #expect(seen.count == cores, "every core owns some of 300 flows")
    }

    @Test func fragmentsAndOtherProtocols_byAddresses_restOnQueueZero() {
        let program = SteeringProgram(cores: 4).instructions
        let toeplitz = Toeplitz.symmetric
        let us = IPv4Address(10, 77, 0, 2), peer = IPv4Address(10, 77, 0, 1)
        let byAddresses = UInt64(toeplitz.hash([10, 77, 0, 2, 10, 77, 0, 1] + [UInt8](repeating: 0, count: 4)) % 4)
        // A first fragment (more fragments), a later one and ICMP all meet where the
        // addresses alone say, whatever the bytes where ports would be.
        for (proto, fragment) in [(UInt8(17), UInt16(0x2000)), (17, 0x00B9), (1, 0)] {
            let frame = Self.ipv4(peer, us, proto: proto, ports: (0xABCD, 0x1234), fragment: fragment)
            #expect(Self.run(program, on: frame) == byAddresses, "protocol \(proto), fragment word \(fragment)")
        }
        var arp = Self.mac + [0x08, 0x06]
        arp += [UInt8](repeating: 0, count: 28)
        #expect(Self.run(program, on: arp) == 0)
        // Cut short: the kernel ends the program with 0 at the first load past the frame.
        let short = Array(Self.ipv4(peer, us, proto: 6, ports: (1, 2)).prefix(30))
        #expect(Self.run(program, on: short) == 0)
    }

    @Test func oneCore_everythingOnQueueZero() {
        let program = SteeringProgram(cores: 1).instructions
        let frame = Self.ipv4(IPv4Address(10, 77, 0, 1), IPv4Address(10, 77, 0, 2), proto: 6, ports: (40000, 80))
        #expect(Self.run(program, on: frame) == 0)
        #expect(program.count < 4096, "within the verifier's limit for any caller")
    }
}
