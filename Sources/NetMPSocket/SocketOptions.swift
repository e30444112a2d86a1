import Glibc
import NetMPStack
import NetMPTCP
import NetMPWire

/// setsockopt and getsockopt for netmp sockets, with Linux's levels, names, value layouts
/// and errnos. Options netmp acts on change the socket; a few that Linux accepts and
/// netmp has no use for (SO_PRIORITY, a TCP socket's IP_RECVERR) are recorded so that
/// getsockopt reads back what was set (SO_OOBINLINE too, which a stream socket's reads
/// follow); anything else is ENOPROTOOPT.
enum OptionName {
    static let solSocket: Int32 = 1, ipprotoIP: Int32 = 0, ipprotoTCP: Int32 = 6
    // SOL_SOCKET
    static let reuseAddress: Int32 = 2, type: Int32 = 3, error: Int32 = 4, broadcast: Int32 = 6
    static let sendBuffer: Int32 = 7, receiveBuffer: Int32 = 8, keepAlive: Int32 = 9, linger: Int32 = 13
    static let reusePort: Int32 = 15, receiveTimeout: Int32 = 20, sendTimeout: Int32 = 21
    static let acceptConnection: Int32 = 30, proto: Int32 = 38, domain: Int32 = 39
    static let receiveLowWater: Int32 = 18, sendLowWater: Int32 = 19
    static let recordedSocket: Set<Int32> = [2, 10, 12, 15] // REUSEADDR, OOBINLINE, PRIORITY, REUSEPORT
    static let outOfBandInline: Int32 = 10 // read back as recorded; a stream socket's reads follow it
    // IPPROTO_TCP
    static let noDelay: Int32 = 1, maxSegment: Int32 = 2, cork: Int32 = 3, keepIdle: Int32 = 4
    static let keepInterval: Int32 = 5, keepCount: Int32 = 6, info: Int32 = 11, congestion: Int32 = 13
    static let synCount: Int32 = 7, linger2: Int32 = 8, deferAccept: Int32 = 9, quickAck: Int32 = 12
    static let userTimeout: Int32 = 18, notSentLowWater: Int32 = 25
    // IPPROTO_IP: TOS and TTL act (on an IPv6 socket, on its traffic to IPv4 peers, as
    // Linux applies them); RECVERR acts on a UDP socket (IPv6's on an IPv6 one).
    static let tos: Int32 = 1, ttl: Int32 = 2, mtuDiscover: Int32 = 10, mtu: Int32 = 14, bindAddressNoPort: Int32 = 24
    static let receiveErrors: Int32 = 11, receiveErrors6: Int32 = 25
    // IPPROTO_IPV6, for AF_INET6 sockets: V6ONLY, UNICAST_HOPS and TCLASS act.
    static let ipprotoIPv6: Int32 = 41, v6Only: Int32 = 26, unicastHops: Int32 = 16, trafficClass: Int32 = 67
    static let mtuDiscover6: Int32 = 23, mtu6: Int32 = 24
    // IPPROTO_UDP, for UDP sockets: UDP_SEGMENT acts (UDP_CORK, UDP_GRO and the rest are
    // ENOPROTOOPT: netmp neither corks nor coalesces).
    static let ipprotoUDP: Int32 = 17, segment: Int32 = 103
}

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
    func integer() -> Int32? {
        guard let value, length >= 4 else { return nil }
        return value.loadUnaligned(as: Int32.self)
    }
    // Accepted as Linux accepts it; netmpSetSockOpt keeps the value (setOptions).
    func record() -> Int32 { integer() == nil ? -EINVAL : 0 }
    func timeout() -> Int? {
        guard let value, length >= UInt32(MemoryLayout<timeval>.size) else { return nil }
        let tv = value.loadUnaligned(as: timeval.self)
        guard tv.tv_usec >= 0, tv.tv_usec < 1_000_000 else { return nil }
        return max(0, tv.tv_sec * 1_000_000_000 + tv.tv_usec * 1000)
    }
    // IP_TOS and IP_TTL on an IPv4 socket, IPV6_TCLASS and IPV6_UNICAST_HOPS on an IPv6 one:
    // checked and normalised as Linux's do_ip_setsockopt and do_ipv6_setsockopt do.
    // What recvmsg returns beside a datagram (Ancillary): accepted on every socket, as Linux's are.
    if Ancillary.isOption(level, name, ipv6: shim.isIPv6) { return shim.setAncillary(level, name, value, length) }
    if let r = setAddressOption(shim, level, name, value, length) { return r }
    if MulticastOptionName.isOption(level, name, ipv6: shim.isIPv6) { return setMulticastOption(shim, level, name, value, length) }
    // On an IPv6 socket IP_TOS and IP_TTL mark its traffic to IPv4 peers (mapped).
    let marksIPv4 = level == OptionName.ipprotoIP && (name == OptionName.tos || name == OptionName.ttl)
    let marksIPv6 = level == OptionName.ipprotoIPv6 && shim.isIPv6 && (name == OptionName.trafficClass || name == OptionName.unicastHops)
    if marksIPv4 || marksIPv6 {
        // IPv4's take an int or a single byte; IPv6's an int.
        guard let v = optionInteger(level, value, length) else { return -EINVAL }
        let mapped = marksIPv4 && shim.isIPv6
        var marking = mapped ? shim.mappedMarking : shim.marking
        let isStream: Bool
        if case .stream = shim.kind { isStream = true } else { isStream = false }
        if name == OptionName.ttl || name == OptionName.unicastHops {
            guard v == -1 || (marksIPv4 ? (1...255).contains(v) : (0...255).contains(v)) else { return -EINVAL }
            marking.timeToLive = v == -1 ? 0 : UInt8(v)
        } else {
            if marksIPv6 { guard (-1...255).contains(v) else { return -EINVAL } }
            // A byte (IPv4 takes any int's low byte; IPv6's -1 is the default, 0); TCP keeps
            // its ECN bits for itself.
            let byte = marksIPv6 && v == -1 ? 0 : UInt8(truncatingIfNeeded: v)
            marking.typeOfService = isStream ? byte & ~3 : byte
        }
        switch shim.kind {
        case .stream(let s): s.setMarking(marking, forIPv4Peers: mapped)
        case .datagram(let d): d.setMarking(marking, forIPv4Peers: mapped)
        }
        return 0
    }
    // IP_RECVERR (an int or a byte) and IPV6_RECVERR (an int): a UDP socket's errors go to
    // its error queue; 0 empties it. Kept for getsockopt as 0 or 1 (TCP's: kept only).
    if (level == OptionName.ipprotoIP && name == OptionName.receiveErrors)
        || (level == OptionName.ipprotoIPv6 && shim.isIPv6 && name == OptionName.receiveErrors6) {
        guard let v = optionInteger(level, value, length) else { return -EINVAL }
        let on = v != 0
        if case .datagram(let d) = shim.kind { d.setReceiveErrors(on, ipv6: level == OptionName.ipprotoIPv6) }
        return 0 // a TCP socket's is kept by netmpSetSockOpt
    }
    switch (level, shim.kind) {
    case (OptionName.ipprotoIPv6, _) where shim.isIPv6:
        guard name == OptionName.v6Only else { return -ENOPROTOOPT }
        guard let v = integer() else { return -EINVAL }
        do {
            switch shim.kind {
            case .stream(let s): try s.setV6Only(v != 0)
            case .datagram(let d): try d.setV6Only(v != 0)
            }
            return 0
        } catch { return failure(error) }
    case (OptionName.solSocket, _) where name == OptionName.reusePort:
        guard let v = integer() else { return -EINVAL }
        switch shim.kind { // and recorded (getsockopt reads it back)
        case .stream(let s): s.setReusePort(v != 0)
        case .datagram(let d): d.setReusePort(v != 0)
        }
        return 0
    case (OptionName.solSocket, .stream(let s)) where name == OptionName.reuseAddress:
        guard let v = integer() else { return -EINVAL }
        s.setReuseAddress(v != 0)
        return record() // read back as recorded
    case (OptionName.solSocket, .datagram(let d)) where name == OptionName.reuseAddress:
        guard let v = integer() else { return -EINVAL }
        d.setReuseAddress(v != 0)
        return record()
    case (OptionName.solSocket, .stream(let s)) where name == OptionName.outOfBandInline:
        guard let v = integer() else { return -EINVAL }
        s.setOutOfBandInline(v != 0)
        return record()
    case (OptionName.solSocket, _) where OptionName.recordedSocket.contains(name): return record()
    case (OptionName.solSocket, _) where name == OptionName.sendLowWater: return -ENOPROTOOPT // Linux's is fixed at 1
    case (OptionName.solSocket, .datagram) where name == OptionName.receiveLowWater: return record() // no effect on UDP
    case (OptionName.solSocket, .stream(let s)):
        switch name {
        case OptionName.keepAlive:
            guard let v = integer() else { return -EINVAL }
            s.setKeepAlive(v != 0)
        case OptionName.linger:
            guard let value, length >= 8 else { return -EINVAL }
            let on = value.loadUnaligned(as: Int32.self), seconds = value.loadUnaligned(fromByteOffset: 4, as: Int32.self)
            s.setLinger(seconds: on != 0 ? Int(max(0, seconds)) : nil)
        case OptionName.receiveBuffer:
            guard let v = integer() else { return -EINVAL }
            s.setReceiveBuffer(Int(max(0, v)))
        case OptionName.sendBuffer:
            guard integer() != nil else { return -EINVAL }
            return record() // the ring is sized at creation; getsockopt reports its size
        case OptionName.receiveTimeout, OptionName.sendTimeout:
            guard let ns = timeout() else { return length < UInt32(MemoryLayout<timeval>.size) ? -EINVAL : -EDOM }
            if name == OptionName.receiveTimeout { s.setTimeouts(receive: ns) } else { s.setTimeouts(send: ns) }
        case OptionName.receiveLowWater:
            guard let v = integer() else { return -EINVAL }
            s.setReceiveLowWater(Int(v))
        default: return -ENOPROTOOPT
        }
        return 0
    case (OptionName.solSocket, .datagram(let d)):
        switch name {
        case OptionName.broadcast:
            guard let v = integer() else { return -EINVAL }
            d.setBroadcast(v != 0)
        case OptionName.receiveTimeout:
            guard let ns = timeout() else { return -EINVAL }
            d.setReceiveTimeout(ns)
        case OptionName.sendTimeout, OptionName.receiveBuffer, OptionName.sendBuffer:
            return record()
        default: return -ENOPROTOOPT
        }
        return 0
    case (OptionName.ipprotoTCP, .stream(let s)):
        if name == OptionName.congestion {
            guard let value, length > 0 else { return -EINVAL }
            let bytes = UnsafeRawBufferPointer(start: value, count: Int(min(length, 16)))
            let text = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            guard let algorithm = CongestionAlgorithm(rawValue: text) else { return -ENOENT }
            s.setCongestionControl(algorithm)
            return 0
        }
        guard let v = integer() else { return -EINVAL }
        switch name {
        case OptionName.noDelay: s.setNoDelay(v != 0)
        case OptionName.cork: s.setCork(v != 0)
        case OptionName.maxSegment:
            guard v == 0 || (88...65_495).contains(v) else { return -EINVAL }
            if v != 0 { s.setMaximumSegmentSize(Int(v)) }
        case OptionName.keepIdle, OptionName.keepInterval:
            guard (1...32_767).contains(v) else { return -EINVAL }
            s.setKeepAliveParameters(idle: name == OptionName.keepIdle ? Int(v) : nil,
                                     interval: name == OptionName.keepInterval ? Int(v) : nil)
        case OptionName.keepCount:
            guard (1...127).contains(v) else { return -EINVAL }
            s.setKeepAliveParameters(probes: Int(v))
        case OptionName.userTimeout:
            guard v >= 0 else { return -EINVAL }
            s.setUserTimeout(milliseconds: Int(v))
        case OptionName.linger2: s.setLinger2(seconds: Int(v))
        case OptionName.deferAccept: s.setDeferAccept(seconds: Int(v))
        case OptionName.quickAck: s.setQuickAck(v & 1 != 0)
        case OptionName.synCount:
            guard (1...127).contains(v) else { return -EINVAL }
            s.setSYNRetransmissions(Int(v))
        case OptionName.notSentLowWater: s.setNotSentLowWater(v)
        default: return -ENOPROTOOPT
        }
        return 0
    case (OptionName.ipprotoUDP, .datagram(let d)) where name == OptionName.segment:
        // udp_lib_setsockopt: an int, 0 (off) to 65,535.
        guard let v = integer(), (0...65_535).contains(v) else { return -EINVAL }
        d.segmentSize = Int(v)
        return 0
    default:
        return -ENOPROTOOPT
    }
}

@_cdecl("netmp_getsockopt")
public func netmpGetSockOpt(_ handle: UnsafeMutableRawPointer, _ level: Int32, _ name: Int32,
                            _ value: UnsafeMutableRawPointer?, _ length: UnsafeMutablePointer<UInt32>?) -> Int32 {
    guard let value, let length else { return -EFAULT }
    let shim = socket(handle)
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
    func putTimeout(_ ns: Int) -> Int32 {
        var tv = timeval(tv_sec: ns / 1_000_000_000, tv_usec: (ns % 1_000_000_000) / 1000)
        return withUnsafeBytes(of: &tv) { put(bytes: $0) }
    }
    func recorded(_ fallback: Int32 = 0) -> Int32 {
        put(shim.integerOption(level, name) ?? fallback)
    }
    let isStream: Bool
    if case .stream = shim.kind { isStream = true } else { isStream = false }
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
    if let v = addressOption(shim, level, name) {
        switch v {
        case .success(let value): return put(value)
        case .failure(let error): return -error.errno
        }
    }
    if level == OptionName.solSocket {
        switch name {
        case OptionName.type: return put(isStream ? 1 : 2) // SOCK_STREAM, SOCK_DGRAM
        case OptionName.domain:                             // AF_INET, AF_INET6
            return put(shim.isIPv6 ? 10 : 2)
        case OptionName.proto: return put(isStream ? 6 : 17)
        case OptionName.error:
            switch shim.kind {
            case .stream(let s): return put(s.takeError())
            case .datagram(let d): return put(d.takeError())
            }
        case OptionName.sendLowWater: return put(1)
        case OptionName.receiveLowWater:
            switch shim.kind {
            case .stream(let s): return put(Int32(clamping: s.receiveLowWaterMark))
            case .datagram: // as sock_setsockopt keeps it for UDP: 0 is 1, below 0 INT_MAX
                let v = shim.integerOption(level, name) ?? 1
                return put(v < 0 ? Int32.max : max(1, v))
            }
        default: break
        }
        if OptionName.recordedSocket.contains(name) { return recorded() }
    }
    // The marking as Linux reports it: a TTL of "default" is the default, 64. An IPv6
    // socket's IP-level pair is the one for its IPv4 peers.
    if (level == OptionName.ipprotoIP && (name == OptionName.tos || name == OptionName.ttl))
        || (level == OptionName.ipprotoIPv6 && shim.isIPv6 && (name == OptionName.trafficClass || name == OptionName.unicastHops)) {
        let marking = level == OptionName.ipprotoIP && shim.isIPv6 ? shim.mappedMarking : shim.marking
        if name == OptionName.tos || name == OptionName.trafficClass { return put(Int32(marking.typeOfService)) }
        return put(marking.timeToLive == 0 ? 64 : Int32(marking.timeToLive))
    }
    if (level == OptionName.ipprotoIP && name == OptionName.receiveErrors)
        || (level == OptionName.ipprotoIPv6 && shim.isIPv6 && name == OptionName.receiveErrors6) {
        switch shim.kind {
        case .datagram(let d): return put(d.receivesErrors(ipv6: level == OptionName.ipprotoIPv6) ? 1 : 0)
        case .stream: return put(shim.integerOption(level, name).map { $0 != 0 ? 1 : 0 } ?? 0)
        }
    }
    if level == OptionName.ipprotoIPv6 && shim.isIPv6 {
        if name == OptionName.v6Only {
            switch shim.kind {
            case .stream(let s): return put(s.v6Only ? 1 : 0)
            case .datagram(let d): return put(d.v6Only ? 1 : 0)
            }
        }
        return -ENOPROTOOPT
    }
    switch (level, shim.kind) {
    case (OptionName.solSocket, .stream(let s)):
        switch name {
        case OptionName.acceptConnection: return put(s.isListening ? 1 : 0)
        case OptionName.keepAlive: return put(s.options.keepAlive ? 1 : 0)
        case OptionName.receiveBuffer: return put(Int32(clamping: s.receiveBufferSize))
        case OptionName.sendBuffer: return put(Int32(clamping: s.sendBufferSize))
        case OptionName.receiveTimeout: return putTimeout(s.timeouts.receive)
        case OptionName.sendTimeout: return putTimeout(s.timeouts.send)
        case OptionName.linger:
            var pair: (Int32, Int32) = (s.linger == nil ? 0 : 1, Int32(s.linger ?? 0))
            return withUnsafeBytes(of: &pair) { put(bytes: $0) }
        default: return -ENOPROTOOPT
        }
    case (OptionName.solSocket, .datagram(let d)):
        switch name {
        case OptionName.broadcast: return put(d.isBroadcast ? 1 : 0)
        case OptionName.acceptConnection: return put(0)
        case OptionName.receiveTimeout: return putTimeout(d.receiveTimeoutNanoseconds)
        case OptionName.receiveBuffer, OptionName.sendBuffer: return recorded(212_992)
        case OptionName.sendTimeout: return putTimeout(0)
        default: return -ENOPROTOOPT
        }
    case (OptionName.ipprotoTCP, .stream(let s)):
        let options = s.options
        switch name {
        case OptionName.noDelay: return put(options.noDelay ? 1 : 0)
        case OptionName.cork: return put(options.cork ? 1 : 0)
        case OptionName.maxSegment: return put(Int32(s.info().sendMSS == 0 ? UInt32(options.maximumSegmentSize) : s.info().sendMSS))
        case OptionName.keepIdle: return put(Int32(options.keepAliveIdle.nanoseconds / 1_000_000_000))
        case OptionName.keepInterval: return put(Int32(options.keepAliveInterval.nanoseconds / 1_000_000_000))
        case OptionName.keepCount: return put(Int32(options.keepAliveProbes))
        case OptionName.userTimeout: return put(Int32(clamping: s.userTimeoutMilliseconds))
        case OptionName.linger2: return put(Int32(s.linger2Seconds))
        case OptionName.deferAccept: return put(Int32(s.deferAcceptSeconds))
        case OptionName.quickAck: return put(s.isQuickAck ? 1 : 0)
        case OptionName.synCount: return put(Int32(options.maximumSYNRetransmissions))
        case OptionName.notSentLowWater: return put(s.notSentLowWaterMark)
        case OptionName.info:
            let info = s.info()
            var bytes = [UInt8](repeating: 0, count: TCPInfo.size)
            bytes.withUnsafeMutableBytes { _ = info.emit(into: $0) }
            return bytes.withUnsafeBytes { put(bytes: $0) }
        case OptionName.congestion:
            var name = [UInt8](repeating: 0, count: 16)
            let text = Array(options.congestionControl.rawValue.utf8)
            name.replaceSubrange(0..<text.count, with: text)
            return name.withUnsafeBytes { put(bytes: $0) }
        default:
            return -ENOPROTOOPT
        }
    case (OptionName.ipprotoTCP, .datagram):
        // Linux: a UDP socket passes unknown levels to IP, which says EOPNOTSUPP; IPv6's
        // ipv6_getsockopt says ENOPROTOOPT.
        return shim.isIPv6 ? -ENOPROTOOPT : -EOPNOTSUPP
    case (OptionName.ipprotoUDP, .datagram(let d)) where name == OptionName.segment:
        return put(Int32(d.segmentSize))
    default:
        return -ENOPROTOOPT
    }
}
