/// The TAP's choice of queue made netmp's own (TUNSETSTEERINGEBPF): an eBPF socket-filter
/// program that gives each frame the index of the core `FlowSteering` names for it, so a
/// TCP segment arrives on its owner's queue and is not forwarded between cores.
///
/// Without it the tun driver remembers, per flow, the queue userspace last wrote the flow
/// on, and otherwise picks one by its own hash (seeded at boot, so netmp cannot compute
/// it). Its table holds 4096 flows for 3 seconds: a server taking thousands of short
/// connections a second fills it at once, and then every connection's first segments land
/// on a core chosen by that hash, half of them the wrong one on two cores (35% of the
/// frames of a connections-per-second load were forwarded).
///
/// The program reads fixed offsets (legacy packet loads, which end the program with 0 past
/// the frame) and computes the symmetric Toeplitz hash over the input `FlowSteering` uses:
/// local (destination) address, remote (source) address, local port, remote port, for TCP
/// and UDP; addresses alone for IP fragments (so a datagram's fragments meet on one core)
/// and other IP protocols. Toeplitz is linear, so the hash is the XOR of one 32-bit key
/// window per input bit that is set: one test and one XOR per bit, unrolled, with the
/// windows as constants. The result is the hash modulo the core count (tun takes the
/// result modulo its queues, which are the cores' in attach order). Everything else (ARP,
/// neighbour discovery) goes to queue 0 and is copied to every core as before.
public struct SteeringProgram: Sendable {
    /// `struct bpf_insn` each, as the kernel reads them on a little-endian machine.
    public let instructions: [UInt64]

    public init(cores: Int, toeplitz: Toeplitz = .symmetric) {
        precondition(cores >= 1)
        var a = Assembler(toeplitz: toeplitz)
        a.emit(.mov64(.r6, .r1))            // the context, which packet loads take from r6
        a.emit(.mov32(.r7, 0))              // the hash
        a.emit(.loadAbsolute(.half, 12))    // the EtherType
        a.jump(.equal, 0x0800, to: "ipv4")
        a.jump(.equal, 0x86DD, to: "ipv6")
        a.emit(.mov32(.r0, 0))
        a.emit(.exit)

        a.label("ipv4")
        a.emit(.loadAbsolute(.byte, 14))    // version and header length
        a.emit(.mov32(.r9, .r0))
        a.emit(.and32(.r9, 0x0F))
        a.emit(.leftShift32(.r9, 2))        // the header's length in bytes: where ports are
        a.emit(.loadAbsolute(.half, 14 + 6))
        a.jump(.anyBitSet, 0x3FFF, to: "ipv4-addresses") // a fragment
        a.emit(.loadAbsolute(.byte, 14 + 9))
        a.jump(.equal, 6, to: "ipv4-ports")
        a.jump(.equal, 17, to: "ipv4-ports")
        a.jump(to: "ipv4-addresses")
        a.label("ipv4-ports")
        a.emit(.loadIndirect(.word, .r9, 14)) // source port << 16 | destination port
        a.mixPorts(atByte: 8)
        a.label("ipv4-addresses")
        a.mixWord(at: 14 + 16, atByte: 0)   // the local (destination) address
        a.mixWord(at: 14 + 12, atByte: 4)   // the remote (source) address
        a.jump(to: "finish")

        a.label("ipv6")
        a.emit(.loadAbsolute(.byte, 14 + 6)) // the next header: TCP or UDP with no extension
        a.jump(.equal, 6, to: "ipv6-ports")  // header in between, as FlowSteering reads it
        a.jump(.equal, 17, to: "ipv6-ports")
        a.jump(to: "ipv6-addresses")
        a.label("ipv6-ports")
        a.emit(.loadAbsolute(.word, 14 + 40))
        a.mixPorts(atByte: 32)
        a.label("ipv6-addresses")
        for word in 0..<4 {
            a.mixWord(at: Int32(14 + 24 + 4 * word), atByte: 4 * word)      // local (destination)
            a.mixWord(at: Int32(14 + 8 + 4 * word), atByte: 16 + 4 * word)  // remote (source)
        }

        a.label("finish")
        a.emit(.mov32(.r0, .r7))
        a.emit(.modulo32(.r0, Int32(cores)))
        a.emit(.exit)
        instructions = a.assembled()
    }
}

/// The few eBPF instructions the program needs (include/uapi/linux/bpf.h), encoded.
enum BPFInstruction {
    enum Register: UInt8 { case r0 = 0, r1, r2, r3, r4, r5, r6, r7, r8, r9 }
    enum Size: UInt8 { case word = 0x00, half = 0x08, byte = 0x10 }
    enum Condition: UInt8 { case equal = 0x10, anyBitSet = 0x40 }

    case loadAbsolute(Size, Int32)            // r0 = the frame's bytes at the offset, big-endian
    case loadIndirect(Size, Register, Int32)  // ... at register + offset
    case mov64(Register, Register)
    case mov32(Register, Register)
    case mov32Immediate(Register, Int32)
    case and32(Register, Int32)
    case or32(Register, Register)
    case xor32(Register, Int32)
    case leftShift32(Register, Int32)
    case rightShift32(Register, Int32)
    case modulo32(Register, Int32)
    case jump(Condition?, Register, Int32, Int16) // if register <condition> immediate (nil: always), skip that many
    case exit

    static func mov32(_ register: Register, _ value: Int32) -> BPFInstruction { .mov32Immediate(register, value) }

    static func encode(_ code: UInt8, _ destination: Register = .r0, _ source: Register = .r0,
                       offset: Int16 = 0, immediate: Int32 = 0) -> UInt64 {
        UInt64(code) | UInt64(source.rawValue << 4 | destination.rawValue) << 8
            | UInt64(UInt16(bitPattern: offset)) << 16 | UInt64(UInt32(bitPattern: immediate)) << 32
    }

    var encoded: UInt64 {
        // Classes: LD 0x00, ALU (32-bit) 0x04, JMP 0x05, ALU64 0x07; BPF_X (register source) 0x08.
        switch self {
        case .loadAbsolute(let size, let offset): Self.encode(0x20 | size.rawValue, immediate: offset)
        case .loadIndirect(let size, let source, let offset): Self.encode(0x40 | size.rawValue, .r0, source, immediate: offset)
        case .mov64(let d, let s): Self.encode(0x07 | 0xB0 | 0x08, d, s)
        case .mov32(let d, let s): Self.encode(0x04 | 0xB0 | 0x08, d, s)
        case .mov32Immediate(let d, let value): Self.encode(0x04 | 0xB0, d, immediate: value)
        case .and32(let d, let value): Self.encode(0x04 | 0x50, d, immediate: value)
        case .or32(let d, let s): Self.encode(0x04 | 0x40 | 0x08, d, s)
        case .xor32(let d, let value): Self.encode(0x04 | 0xA0, d, immediate: value)
        case .leftShift32(let d, let bits): Self.encode(0x04 | 0x60, d, immediate: bits)
        case .rightShift32(let d, let bits): Self.encode(0x04 | 0x70, d, immediate: bits)
        case .modulo32(let d, let value): Self.encode(0x04 | 0x90, d, immediate: value)
        case .jump(let condition, let register, let value, let skip):
            Self.encode(0x05 | (condition?.rawValue ?? 0), register, offset: skip, immediate: value)
        case .exit: Self.encode(0x05 | 0x90)
        }
    }
}

/// Straight-line code with forward jumps to labels, resolved at the end.
private struct Assembler {
    let toeplitz: Toeplitz
    var code: [BPFInstruction] = []
    var labels: [String: Int] = [:]
    var pending: [(at: Int, label: String)] = []

    init(toeplitz: Toeplitz) { self.toeplitz = toeplitz }

    mutating func emit(_ instruction: BPFInstruction) { code.append(instruction) }
    mutating func label(_ name: String) { labels[name] = code.count }

    /// If r0 <condition> `value` (nil: always), go to `label`.
    mutating func jump(_ condition: BPFInstruction.Condition? = nil, _ value: Int32 = 0, to label: String) {
        pending.append((code.count, label))
        code.append(.jump(condition, .r0, value, 0))
    }

    /// r7 ^= the key window of every set bit of r8, whose 32 bits are input bytes
    /// `byte`...`byte + 3`.
    mutating func mixR8(atByte byte: Int) {
        for bit in 0..<32 {
            let window = toeplitz.window(atBit: 8 * byte + bit)
            guard window != 0 else { continue }
            // if r8 has the bit, skip the jump over the XOR
            code.append(.jump(.anyBitSet, .r8, Int32(bitPattern: UInt32(1) << UInt32(31 - bit)), 1))
            code.append(.jump(nil, .r0, 0, 1))
            code.append(.xor32(.r7, Int32(bitPattern: window)))
        }
    }

    /// Mixes the frame's 32 bits at `offset` in as input bytes `byte`...`byte + 3`.
    mutating func mixWord(at offset: Int32, atByte byte: Int) {
        emit(.loadAbsolute(.word, offset))
        emit(.mov32(.r8, .r0))
        mixR8(atByte: byte)
    }

    /// Mixes r0's ports (source << 16 | destination, as on the wire) in as the input's
    /// local (destination) port and then remote (source) port, at input byte `byte`.
    mutating func mixPorts(atByte byte: Int) {
        emit(.mov32(.r8, .r0))
        emit(.leftShift32(.r8, 16))
        emit(.rightShift32(.r0, 16))
        emit(.or32(.r8, .r0))
        mixR8(atByte: byte)
    }

    func assembled() -> [UInt64] {
        var code = self.code
        for (at, label) in pending {
            guard case .jump(let condition, let register, let value, _) = code[at], let target = labels[label] else {
                preconditionFailure("steering program: no label \(label)")
            }
            code[at] = .jump(condition, register, value, Int16(target - at - 1))
        }
        return code.map(\.encoded)
    }
}

extension Toeplitz {
    /// The 32 bits of the key starting at bit `bit`: what an input bit at that position
    /// adds to the hash.
    func window(atBit bit: Int) -> UInt32 {
        var window: UInt32 = 0
        for i in 0..<32 {
            let at = bit + i
            let byte = at / 8 < key.count ? key[at / 8] : 0
            window = window << 1 | UInt32(byte >> UInt8(7 - at % 8) & 1)
        }
        return window
    }
}
