/// The pcapng capture file format (draft-ietf-opsawg-pcapng), as much of it as a capture
/// of Ethernet frames needs: a section header, one interface description per interface
/// (netmp: per core), and an enhanced packet block per frame with its direction. Blocks are
/// written in the host's byte order, as the format allows (the section header's magic says
/// which); every block is a multiple of four bytes long. Pure values: writing fills a
/// buffer, reading walks one.
public enum PcapNG {
    public enum BlockType {
        public static let section: UInt32 = 0x0A0D_0D0A
        public static let interface: UInt32 = 0x0000_0001
        public static let enhancedPacket: UInt32 = 0x0000_0006
    }
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D
    /// LINKTYPE_ETHERNET.
    public static let linkTypeEthernet: UInt16 = 1

    public enum Direction: UInt32, Sendable {
        case inbound = 1, outbound = 2
    }

    /// Bytes a section header naming `application` takes.
    public static func sectionHeaderLength(application: String) -> Int {
        28 + optionLength(application.utf8.count) + 4
    }

    /// The section header: byte order, version 1.0, unknown section length, and the
    /// application that wrote it (shb_userappl). Returns the bytes written.
    public static func writeSectionHeader(application: String, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let length = sectionHeaderLength(application: application)
        precondition(buffer.count >= length)
        var at = 0
        put(BlockType.section, &at, buffer)
        put(UInt32(length), &at, buffer)
        put(byteOrderMagic, &at, buffer)
        put(UInt16(1), &at, buffer)
        put(UInt16(0), &at, buffer)
        put(UInt64.max, &at, buffer) // section length: not given
        putOption(4, Array(application.utf8), &at, buffer)
        putOption(0, [], &at, buffer)
        put(UInt32(length), &at, buffer)
        return at
    }

    /// Bytes an interface description named `name` takes.
    public static func interfaceLength(name: String) -> Int {
        16 + optionLength(name.utf8.count) + optionLength(1) + 4 + 4
    }

    /// An Ethernet interface with `snapLength`, named `name` (if_name), with nanosecond
    /// timestamps (if_tsresol 9). Interfaces are numbered in the order written, from 0.
    public static func writeInterface(name: String, snapLength: UInt32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let length = interfaceLength(name: name)
        precondition(buffer.count >= length)
        var at = 0
        put(BlockType.interface, &at, buffer)
        put(UInt32(length), &at, buffer)
        put(linkTypeEthernet, &at, buffer)
        put(UInt16(0), &at, buffer)
        put(snapLength, &at, buffer)
        putOption(2, Array(name.utf8), &at, buffer)
        putOption(9, [9], &at, buffer)
        putOption(0, [], &at, buffer)
        put(UInt32(length), &at, buffer)
        return at
    }

    /// Bytes an enhanced packet block of `captured` bytes takes (with its flags option).
    @inline(__always)
    public static func packetLength(captured: Int) -> Int {
        28 + padded(captured) + 8 + 4 + 4
    }

    /// An enhanced packet block: `frame` cut to `snapLength`, its length on the wire, the
    /// time in nanoseconds since the epoch, and the direction (epb_flags).
    @inline(__always)
    public static func writePacket(_ frame: UnsafeRawBufferPointer, interface: UInt32, nanoseconds: UInt64,
                                   direction: Direction, snapLength: Int, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let captured = min(frame.count, snapLength)
        let length = packetLength(captured: captured)
        precondition(buffer.count >= length)
        var at = 0
        put(BlockType.enhancedPacket, &at, buffer)
        put(UInt32(length), &at, buffer)
        put(interface, &at, buffer)
        put(UInt32(truncatingIfNeeded: nanoseconds >> 32), &at, buffer)
        put(UInt32(truncatingIfNeeded: nanoseconds), &at, buffer)
        put(UInt32(captured), &at, buffer)
        put(UInt32(frame.count), &at, buffer)
        if captured > 0 {
            UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + captured])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[0..<captured]))
        }
        at += captured
        while at % 4 != 0 { buffer[at] = 0; at += 1 }
        put(UInt16(2), &at, buffer) // epb_flags
        put(UInt16(4), &at, buffer)
        put(direction.rawValue, &at, buffer)
        put(UInt32(0), &at, buffer) // opt_endofopt
        put(UInt32(length), &at, buffer)
        return at
    }

    // MARK: Reading

    /// A file that is not pcapng as written here: where its first bad block starts.
    public struct FormatError: Error, Equatable, Sendable {
        public var offset: Int
        public init(offset: Int) { self.offset = offset }
    }

    /// One block as read: its type and its body (between the length words).
    public struct Block: Sendable {
        public var type: UInt32
        public var body: [UInt8]
    }

    /// An enhanced packet block's contents.
    public struct Packet: Equatable, Sendable {
        public var interface: UInt32
        public var nanoseconds: UInt64
        public var originalLength: Int
        public var data: [UInt8]
        public var direction: Direction?
        public init(interface: UInt32, nanoseconds: UInt64, originalLength: Int, data: [UInt8], direction: Direction?) {
            self.interface = interface; self.nanoseconds = nanoseconds; self.originalLength = originalLength
            self.data = data; self.direction = direction
        }
    }

    /// The blocks of a file in this host's byte order, checked: each length is a multiple
    /// of four, at least 12, within the file and repeated at the block's end; the file
    /// starts with a section header whose magic is this byte order's.
    public static func blocks(in bytes: UnsafeRawBufferPointer) throws(FormatError) -> [Block] {
        var blocks: [Block] = []
        var at = 0
        while at < bytes.count {
            guard bytes.count - at >= 12 else { throw FormatError(offset: at) }
            let type = bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)
            let length = Int(bytes.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
            guard length >= 12, length % 4 == 0, length <= bytes.count - at,
                  bytes.loadUnaligned(fromByteOffset: at + length - 4, as: UInt32.self) == UInt32(length) else {
                throw FormatError(offset: at)
            }
            if blocks.isEmpty {
                guard type == BlockType.section, length >= 28,
                      bytes.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self) == byteOrderMagic else { throw FormatError(offset: at) }
            }
            blocks.append(Block(type: type, body: Array(bytes[at + 8..<at + length - 4])))
            at += length
        }
        return blocks
    }

    /// The packet an enhanced packet block holds (nil for another block or one too short).
    public static func packet(_ block: Block) -> Packet? {
        guard block.type == BlockType.enhancedPacket, block.body.count >= 20 else { return nil }
        return block.body.withUnsafeBytes { body -> Packet? in
            let word = { (i: Int) in body.loadUnaligned(fromByteOffset: i, as: UInt32.self) }
            let captured = Int(word(12))
            guard 20 + padded(captured) <= body.count else { return nil }
            var direction: Direction? = nil
            var at = 20 + padded(captured)
            while at + 4 <= body.count {
                let code = body.loadUnaligned(fromByteOffset: at, as: UInt16.self)
                let length = Int(body.loadUnaligned(fromByteOffset: at + 2, as: UInt16.self))
                if code == 0 { break }
                if code == 2, length == 4, at + 8 <= body.count { direction = Direction(rawValue: word(at + 4) & 3) }
                at += 4 + padded(length)
            }
            return Packet(interface: word(0), nanoseconds: UInt64(word(4)) << 32 | UInt64(word(8)),
                          originalLength: Int(word(16)), data: Array(body[20..<20 + captured]), direction: direction)
        }
    }

    // MARK: Helpers

    @inline(__always) static func padded(_ n: Int) -> Int { (n + 3) & ~3 }
    static func optionLength(_ valueLength: Int) -> Int { 4 + padded(valueLength) }

    @inline(__always)
    static func put<T: FixedWidthInteger>(_ value: T, _ at: inout Int, _ buffer: UnsafeMutableRawBufferPointer) {
        buffer.storeBytes(of: value, toByteOffset: at, as: T.self)
        at += MemoryLayout<T>.size
    }

    static func putOption(_ code: UInt16, _ value: [UInt8], _ at: inout Int, _ buffer: UnsafeMutableRawBufferPointer) {
        put(code, &at, buffer)
        put(UInt16(value.count), &at, buffer)
        for byte in value { buffer[at] = byte; at += 1 }
        while at % 4 != 0 { buffer[at] = 0; at += 1 }
    }
}
