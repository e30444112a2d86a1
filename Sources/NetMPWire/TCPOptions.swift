/// One SACK block (RFC 2018): the sequence range [left, right) the receiver holds.
public struct SACKBlock: Equatable, Hashable, Sendable {
    public var left: UInt32
    public var right: UInt32
    public init(left: UInt32, right: UInt32) { self.left = left; self.right = right }
}

/// The TCP options netmp understands, held inline so that parsing a segment allocates
/// nothing. Unknown options are skipped; a known option with the wrong length is an error,
/// because acting on a misread MSS or window scale corrupts the connection.
public struct TCPOptions: Equatable, Sendable {
    enum Kind { static let end: UInt8 = 0, noOperation: UInt8 = 1, maximumSegmentSize: UInt8 = 2,
                windowScale: UInt8 = 3, sackPermitted: UInt8 = 4, sack: UInt8 = 5, timestamps: UInt8 = 8 }
    public static let maximumSACKBlocks = 4

    /// MSS (RFC 9293 3.7.1), only meaningful on SYN.
    public var maximumSegmentSize: UInt16?
    /// Window scale shift (RFC 7323 2), as sent; the engine clamps it to 14.
    public var windowScale: UInt8?
    public var sackPermitted = false
    /// Timestamps (RFC 7323 3): TSval and TSecr.
    public var timestamp: (value: UInt32, echoReply: UInt32)?
    /// SACK blocks (RFC 2018 3), `sackCount` of the four slots in use.
    public private(set) var sackCount = 0
    var sack0 = SACKBlock(left: 0, right: 0), sack1 = SACKBlock(left: 0, right: 0)
    var sack2 = SACKBlock(left: 0, right: 0), sack3 = SACKBlock(left: 0, right: 0)

    public init() {}

    public var sackBlocks: [SACKBlock] { (0..<sackCount).map { sackBlock($0) } }
    public func sackBlock(_ i: Int) -> SACKBlock {
        switch i { case 0: sack0; case 1: sack1; case 2: sack2; default: sack3 }
    }
    /// Appends a block; false when the four slots are full.
    @discardableResult
    public mutating func appendSACK(_ block: SACKBlock) -> Bool {
        switch sackCount {
        case 0: sack0 = block
        case 1: sack1 = block
        case 2: sack2 = block
        case 3: sack3 = block
        default: return false
        }
        sackCount += 1
        return true
    }

    public static func == (a: TCPOptions, b: TCPOptions) -> Bool {
        a.maximumSegmentSize == b.maximumSegmentSize && a.windowScale == b.windowScale
            && a.sackPermitted == b.sackPermitted && a.timestamp?.value == b.timestamp?.value
            && a.timestamp?.echoReply == b.timestamp?.echoReply && a.sackBlocks == b.sackBlocks
    }

    /// Parses the option bytes between the fixed header and the data offset.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(WireError) {
        var i = 0
        while i < bytes.count {
            let kind = bytes[i]
            if kind == Kind.end { break }
            if kind == Kind.noOperation { i += 1; continue }
            guard i + 1 < bytes.count else { throw .tcpBadOption }
            let length = Int(bytes[i + 1])
            guard length >= 2, i + length <= bytes.count else { throw .tcpBadOption }
            switch kind {
            case Kind.maximumSegmentSize:
                guard length == 4 else { throw .tcpBadOption }
                maximumSegmentSize = bytes.be16(i + 2)
            case Kind.windowScale:
                guard length == 3 else { throw .tcpBadOption }
                windowScale = bytes[i + 2]
            case Kind.sackPermitted:
                guard length == 2 else { throw .tcpBadOption }
                sackPermitted = true
            case Kind.sack:
                let blocks = (length - 2) / 8
                guard (length - 2) % 8 == 0, blocks >= 1, blocks <= Self.maximumSACKBlocks else { throw .tcpBadOption }
                sackCount = 0
                for b in 0..<blocks {
                    appendSACK(SACKBlock(left: bytes.be32(i + 2 + 8 * b), right: bytes.be32(i + 6 + 8 * b)))
                }
            case Kind.timestamps:
                guard length == 10 else { throw .tcpBadOption }
                timestamp = (bytes.be32(i + 2), bytes.be32(i + 6))
            default:
                break // RFC 9293 3.1: an unknown option is skipped by its length.
            }
            i += length
        }
    }

    /// Bytes `emit` writes, padded to a multiple of 4.
    public var encodedLength: Int {
        var n = 0
        if maximumSegmentSize != nil { n += 4 }
        if windowScale != nil { n += 4 }        // NOP + 3
        if timestamp != nil { n += 12 }         // NOP NOP + 10, or SACK-permitted + 10
        else if sackPermitted { n += 4 }        // NOP NOP + 2
        if sackCount > 0 { n += 4 + 8 * sackCount } // NOP NOP + 2 + 8n
        return n
    }

    /// Writes the options in the layout Linux uses (MSS, SACK-permitted folded into the
    /// timestamp's padding, NOP-aligned window scale and SACK); returns the bytes written.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var i = 0
        if let mss = maximumSegmentSize {
            buffer.put8(Kind.maximumSegmentSize, at: i); buffer.put8(4, at: i + 1); buffer.put16(mss, at: i + 2)
            i += 4
        }
        if let ts = timestamp {
            if sackPermitted {
                buffer.put8(Kind.sackPermitted, at: i); buffer.put8(2, at: i + 1)
            } else {
                buffer.put8(Kind.noOperation, at: i); buffer.put8(Kind.noOperation, at: i + 1)
            }
            buffer.put8(Kind.timestamps, at: i + 2); buffer.put8(10, at: i + 3)
            buffer.put32(ts.value, at: i + 4); buffer.put32(ts.echoReply, at: i + 8)
            i += 12
        } else if sackPermitted {
            buffer.put8(Kind.noOperation, at: i); buffer.put8(Kind.noOperation, at: i + 1)
            buffer.put8(Kind.sackPermitted, at: i + 2); buffer.put8(2, at: i + 3)
            i += 4
        }
        if let shift = windowScale {
            buffer.put8(Kind.noOperation, at: i); buffer.put8(Kind.windowScale, at: i + 1)
            buffer.put8(3, at: i + 2); buffer.put8(shift, at: i + 3)
            i += 4
        }
        if sackCount > 0 {
            buffer.put8(Kind.noOperation, at: i); buffer.put8(Kind.noOperation, at: i + 1)
            buffer.put8(Kind.sack, at: i + 2); buffer.put8(UInt8(2 + 8 * sackCount), at: i + 3)
            for b in 0..<sackCount {
                buffer.put32(sackBlock(b).left, at: i + 4 + 8 * b)
                buffer.put32(sackBlock(b).right, at: i + 8 + 8 * b)
            }
            i += 4 + 8 * sackCount
        }
        return i
    }
}
