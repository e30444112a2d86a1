// Big-endian field access over raw bytes. Every wire view reads through these, so a
// field read is one unaligned load and one byte swap; buffers are never swapped in place.
// The stores are public: the stack patches a few fields in place (a reassembled packet's
// lengths, a fragment header).

extension UnsafeRawBufferPointer {
    func be8(_ offset: Int) -> UInt8 { self[offset] }
    func be16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    func be32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    func put8(_ value: UInt8, at offset: Int) { self[offset] = value }
    public func put16(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }
    public func put32(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }
}
