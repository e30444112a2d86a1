import Glibc
import NetMPStack
import NetMPTCP
import NetMPWire

/// setsockopt and getsockopt for netmp sockets, with Linux's levels, names, value layouts
/// and errnos: the C boundary of OptionTable, where OptionFailure becomes an errno.

/// An option's integer as Linux reads it at `level`: IPPROTO_IP's is an int, or from fewer
/// bytes one unsigned byte (do_ip_setsockopt); every other level's an int. Nil when the
/// value is too short (EINVAL).
func optionInteger(_ level: Int32, _ value: UnsafeRawPointer?, _ length: UInt32) -> Int32? {
    guard let value else { return nil }
    if length >= 4 { return value.loadUnaligned(as: Int32.self) }
    return level == OptionName.ipprotoIP && length >= 1 ? Int32(value.load(as: UInt8.self)) : nil
}

@_cdecl("netmp_setsockopt")
public func netmpSetSockOpt(_ handle: UnsafeMutableRawPointer, _ level: Int32, _ name: Int32,
                            _ value: UnsafeRawPointer?, _ length: UInt32) -> Int32 {
    // An int read from nowhere faults (copy_from_sockptr), at the levels that read one
    // (the list is looked at only for a NULL value: setsockopt is on nginx's per-request path).
    if value == nil && length >= 4 && [OptionName.solSocket, OptionName.ipprotoIP, OptionName.ipprotoTCP, OptionName.ipprotoUDP,
                                       OptionName.ipprotoIPv6].contains(level) { return -EFAULT }
    let name = OptionName.canonical(level, name)
    let result = setOption(socket(handle), level, name, value, length)
    // Kept as the program passed it, for a hand-off to the kernel (Onload's mirroring):
    // a socket that moves to the kernel for a loopback destination keeps its options.
    if result == 0, let value { socket(handle).remember(level, name, UnsafeRawBufferPointer(start: value, count: Int(min(length, 256)))) }
    return result
}

@_cdecl("netmp_set_option_at")
public func netmpSetOptionAt(_ handle: UnsafeMutableRawPointer, _ index: Int32, _ level: UnsafeMutablePointer<Int32>,
                             _ name: UnsafeMutablePointer<Int32>, _ value: UnsafeMutableRawPointer,
                             _ length: UnsafeMutablePointer<UInt32>) -> Int32 {
    guard let option = socket(handle).setOption(at: Int(index)) else { return 0 }
    level.pointee = option.level
    name.pointee = option.name
    let n = min(Int(length.pointee), option.value.count)
    option.value.withUnsafeBytes { value.copyMemory(from: $0.baseAddress!, byteCount: n) }
    length.pointee = UInt32(n)
    return 1
}

func setOption(_ shim: ShimSocket, _ level: Int32, _ name: Int32, _ value: UnsafeRawPointer?, _ length: UInt32) -> Int32 {
    // What recvmsg returns beside a datagram (Ancillary): accepted on every socket, as Linux's are.
    if Ancillary.isOption(level, name, ipv6: shim.isIPv6) { return shim.setAncillary(level, name, value, length) }
    if MulticastOptionName.isOption(level, name, ipv6: shim.isIPv6) { return setMulticastOption(shim, level, name, value, length) }
    do throws(OptionFailure) {
        try setTableOption(shim, level, name, value, length)
        return 0
    } catch { return -error.errno }
}

/// setsockopt of an option of the table: the level's own check of the length first, as
/// Linux makes it before it looks at the name (sk_setsockopt, udp_lib_setsockopt,
/// do_tcp_setsockopt but for TCP_CONGESTION and TCP_ULP), then the row's layout and range.
func setTableOption(_ shim: ShimSocket, _ level: Int32, _ name: Int32, _ value: UnsafeRawPointer?,
                    _ length: UInt32) throws(OptionFailure) {
    let isStream: Bool = if case .stream = shim.kind { true } else { false }
    let intFirst = level == OptionName.solSocket || (level == OptionName.ipprotoUDP && !isStream)
        || (level == OptionName.ipprotoTCP && isStream && name != OptionName.congestion && name != OptionName.upperLayer)
    if intFirst && length < 4 { throw .invalid }
    guard let row = OptionTable.row(level, name, for: shim), let set = row.set else { throw .notAnOption }
    let given = try OptionValue(reading: value, length, as: row.layout)
    if case .integer(let v) = given, let range = row.range, !range.contains(v) { throw .invalid }
    try set(shim, given)
}

extension OptionValue {
    /// A value as setsockopt reads it for `layout` (also what a kept option's getter reads
    /// back from the bytes the program passed).
    init(reading value: UnsafeRawPointer?, _ length: UInt32, as layout: OptionLayout) throws(OptionFailure) {
        switch layout {
        case .integer, .integerOrByte:
            guard let v = optionInteger(layout == .integerOrByte ? OptionName.ipprotoIP : OptionName.solSocket, value, length)
            else { throw .invalid }
            self = .integer(v)
        case .timeval:
            guard let value, length >= UInt32(MemoryLayout<timeval>.size) else { throw .invalid }
            let tv = value.loadUnaligned(as: timeval.self)
            guard tv.tv_usec >= 0, tv.tv_usec < 1_000_000 else { throw .outOfDomain }
            self = .nanoseconds(max(0, tv.tv_sec * 1_000_000_000 + tv.tv_usec * 1000))
        case .linger:
            guard let value, length >= 8 else { throw .invalid }
            let on = value.loadUnaligned(as: Int32.self), seconds = value.loadUnaligned(fromByteOffset: 4, as: Int32.self)
            self = .linger(seconds: on != 0 ? Int(max(0, seconds)) : nil)
        case .text:
            guard let value, length > 0 else { throw .invalid }
            let bytes = UnsafeRawBufferPointer(start: value, count: Int(min(length, 16)))
            self = .text(String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self))
        case .bytes:
            throw .notAnOption
        }
    }
}

@_cdecl("netmp_getsockopt")
public func netmpGetSockOpt(_ handle: UnsafeMutableRawPointer, _ level: Int32, _ name: Int32,
                            _ value: UnsafeMutableRawPointer?, _ length: UnsafeMutablePointer<UInt32>?) -> Int32 {
    guard let value, let length else { return -EFAULT }
    let shim = socket(handle)
    let name = OptionName.canonical(level, name)
    // A level neither the socket nor its protocols have: tcp_getsockopt and udp_getsockopt
    // pass it to IPv4's ip_getsockopt (EOPNOTSUPP) or IPv6's ipv6_getsockopt (ENOPROTOOPT).
    let own: Int32 = if case .stream = shim.kind { OptionName.ipprotoTCP } else { OptionName.ipprotoUDP }
    guard [OptionName.solSocket, OptionName.ipprotoIP, own].contains(level) || (shim.isIPv6 && level == OptionName.ipprotoIPv6) else {
        return shim.isIPv6 ? -ENOPROTOOPT : -EOPNOTSUPP
    }
    func put(_ v: Int32) -> Int32 {
        let n = min(Int(length.pointee), 4)
        withUnsafeBytes(of: v) { value.copyMemory(from: $0.baseAddress!, byteCount: n) }
        length.pointee = UInt32(n)
        return 0
    }
    func put(bytes: UnsafeRawBufferPointer) -> Int32 {
        let n = min(Int(length.pointee), bytes.count)
        value.copyMemory(from: bytes.baseAddress!, byteCount: n)
        length.pointee = UInt32(n)
        return 0
    }
    if Ancillary.isOption(level, name, ipv6: shim.isIPv6) {
        return put(Ancillary.value(shim.ancillary.load(ordering: .relaxed), level, name))
    }
    if MulticastOptionName.isOption(level, name, ipv6: shim.isIPv6) {
        guard let (v, isAddress) = multicastOption(shim, level, name) else { return -ENOPROTOOPT }
        // IPv4's integers asked for with fewer than 4 bytes come as one byte (Linux's copyval).
        if !isAddress, level == OptionName.ipprotoIP, (1..<4).contains(length.pointee), (0...255).contains(v) {
            value.storeBytes(of: UInt8(v), as: UInt8.self)
            length.pointee = 1
            return 0
        }
        return put(v)
    }
    guard let row = OptionTable.row(level, name, for: shim), let get = row.get else { return -ENOPROTOOPT }
    let answer: OptionValue
    do throws(OptionFailure) { answer = try get(shim) } catch { return -error.errno }
    switch answer {
    case .integer(let v): return put(v)
    case .nanoseconds(let ns):
        var tv = timeval(tv_sec: ns / 1_000_000_000, tv_usec: (ns % 1_000_000_000) / 1000)
        return withUnsafeBytes(of: &tv) { put(bytes: $0) }
    case .linger(let seconds):
        var pair: (Int32, Int32) = (seconds == nil ? 0 : 1, Int32(clamping: seconds ?? 0))
        return withUnsafeBytes(of: &pair) { put(bytes: $0) }
    case .text(let text):
        var name = [UInt8](repeating: 0, count: 16)
        let bytes = Array(text.utf8.prefix(15))
        name.replaceSubrange(0..<bytes.count, with: bytes)
        return name.withUnsafeBytes { put(bytes: $0) }
    case .bytes(let bytes):
        return bytes.withUnsafeBytes { put(bytes: $0) }
    }
}
