import Glibc
import NetMPClient
import NetMPStack
import NetMPSystem
import NetMPWire

/// Ancillary data on received datagrams, as recvmsg returns it in control messages: which
/// a socket asked for (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IP_RECVORIGDSTADDR, SO_TIMESTAMP
/// and its nanosecond and 64-bit forms, IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT,
/// IPV6_RECVTCLASS, IPV6_RECVORIGDSTADDR), kept as bits the shim reads at each recvmsg,
/// and what one datagram says, which the shim lays out as Linux's cmsgs (ancillary.c).
enum Ancillary {
    // NETMP_ANCILLARY_* of netmp.h.
    static let pktinfo: UInt32 = 1 << 0, ttl: UInt32 = 1 << 1, tos: UInt32 = 1 << 2, originalDestination: UInt32 = 1 << 3
    static let timestamp: UInt32 = 1 << 4, nanoseconds: UInt32 = 1 << 5, newTimestamp: UInt32 = 1 << 6
    static let pktinfo6: UInt32 = 1 << 8, hopLimit6: UInt32 = 1 << 9, trafficClass6: UInt32 = 1 << 10
    static let originalDestination6: UInt32 = 1 << 11
    static let timestamps = timestamp | nanoseconds | newTimestamp

    // Option names: SOL_SOCKET's timestamps; IPPROTO_IP's; IPPROTO_IPV6's.
    static let timestampOld: Int32 = 29, timestampNSOld: Int32 = 35, timestampNew: Int32 = 63, timestampNSNew: Int32 = 64
    // Switches, not dictionaries: after exec the library's constructor sets the options
    // again before the statically linked Swift runtime seeds its hashing (OptionTable).
    static func ipFlag(_ name: Int32) -> UInt32? {
        switch name {
        case 8: pktinfo
        case 12: ttl
        case 13: tos
        case 20: originalDestination
        default: nil
        }
    }
    static func ipv6Flag(_ name: Int32) -> UInt32? {
        switch name {
        case 49: pktinfo6
        case 51: hopLimit6
        case 66: trafficClass6
        case 74: originalDestination6
        default: nil
        }
    }

    static func isOption(_ level: Int32, _ name: Int32, ipv6: Bool) -> Bool {
        switch level {
        case OptionName.solSocket: [timestampOld, timestampNSOld, timestampNew, timestampNSNew].contains(name)
        case OptionName.ipprotoIP: ipFlag(name) != nil
        case OptionName.ipprotoIPv6: ipv6 && ipv6Flag(name) != nil
        default: false
        }
    }

    /// The bits after setting (level, name) to `on`, as Linux's sock_set_timestamp and
    /// ip_setsockopt keep them: a timestamp option picks its precision and form, turning
    /// any of them off turns timestamps off.
    static func setting(_ bits: UInt32, _ level: Int32, _ name: Int32, on: Bool) -> UInt32 {
        if level == OptionName.solSocket {
            guard on else { return bits & ~timestamps }
            var result = bits & ~timestamps | timestamp
            if name == timestampNSOld || name == timestampNSNew { result |= nanoseconds }
            if name == timestampNew || name == timestampNSNew { result |= newTimestamp }
            return result
        }
        let flag = (level == OptionName.ipprotoIP ? ipFlag(name) : ipv6Flag(name)) ?? 0
        return on ? bits | flag : bits & ~flag
    }

    /// getsockopt's answer, as Linux's sk_getsockopt reads its flags.
    static func value(_ bits: UInt32, _ level: Int32, _ name: Int32) -> Int32 {
        if level == OptionName.solSocket {
            let on = bits & timestamp != 0, ns = bits & nanoseconds != 0, new = bits & newTimestamp != 0
            switch name {
            case timestampOld: return on && !new && !ns ? 1 : 0
            case timestampNew: return on && new && !ns ? 1 : 0
            case timestampNSOld: return ns && !new ? 1 : 0
            default: return ns && new ? 1 : 0
            }
        }
        let flag = (level == OptionName.ipprotoIP ? ipFlag(name) : ipv6Flag(name)) ?? 0
        return bits & flag != 0 ? 1 : 0
    }
}

extension ShimSocket {
    /// setsockopt of an ancillary-data option: an int (IPPROTO_IP's also take one byte).
    func setAncillary(_ level: Int32, _ name: Int32, _ value: UnsafeRawPointer?, _ length: UInt32) -> Int32 {
        guard let on = optionInteger(level, value, length).map({ $0 != 0 }) else { return -EINVAL }
        var bits = ancillary.load(ordering: .relaxed)
        while true {
            let (exchanged, current) = ancillary.compareExchange(expected: bits, desired: Ancillary.setting(bits, level, name, on: on),
                                                                 ordering: .relaxed)
            if exchanged { return 0 }
            bits = current
        }
    }
}

@_cdecl("netmp_ancillary")
public func netmpAncillary(_ handle: UnsafeMutableRawPointer) -> UInt32 { socket(handle).ancillary.load(ordering: .relaxed) }

/// recvmsg on a datagram socket: as netmp_recv, and what the datagram's headers and arrival
/// say into `info` (netmp_datagram_info: destination address and port, TOS or traffic
/// class, TTL or hop limit, the TAP's index, the arrival on CLOCK_REALTIME).
@_cdecl("netmp_recv_datagram")
public func netmpRecvDatagram(_ handle: UnsafeMutableRawPointer, _ bytes: UnsafeMutableRawPointer?, _ count: Int, _ flags: Int32,
                              _ address: UnsafeMutablePointer<UInt8>?, _ port: UnsafeMutablePointer<UInt16>?,
                              _ full: UnsafeMutablePointer<Int>?, _ info: UnsafeMutableRawPointer?) -> Int {
    let held = hold(handle)
    defer { held.release() }
    guard case .datagram(let d) = socket(handle).kind else { return -Int(EOPNOTSUPP) }
    guard count == 0 || bytes != nil else { return faultingReceive(d, flags: flags) }
    let buffer = UnsafeMutableRawBufferPointer(start: count == 0 ? nil : bytes, count: count)
    do { return try receiveDatagram(d, into: buffer, flags: flags, address: address, port: port, full: full, info: info) }
    catch { return -Int(error.errno) }
}

/// A receive into a NULL buffer with a length, as Linux's udp_recvmsg does it: it waits for
/// a datagram as any receive does (or says EAGAIN), then the copy faults: EFAULT, and the
/// datagram is gone unless it was only peeked at.
func faultingReceive(_ d: DatagramSocket, flags: Int32) -> Int {
    do {
        _ = try d.receiveWithArrival(into: UnsafeMutableRawBufferPointer(start: nil, count: 0), peek: flags & messagePeek != 0,
                                     dontWait: flags & messageDontWait != 0)
        return -Int(EFAULT)
    } catch { return -Int(error.errno) }
}

/// One datagram into `buffer` (recv's flags: MSG_PEEK, MSG_DONTWAIT, MSG_TRUNC), its source
/// into `address` and `port`, its whole length into `full`, and with `info` what
/// netmp_recv_datagram returns beside it.
func receiveDatagram(_ d: DatagramSocket, into buffer: UnsafeMutableRawBufferPointer, flags: Int32,
                     address: UnsafeMutablePointer<UInt8>?, port: UnsafeMutablePointer<UInt16>?,
                     full: UnsafeMutablePointer<Int>?, info: UnsafeMutableRawPointer?) throws(SocketError) -> Int {
    let (length, arrival) = try d.receiveWithArrival(into: buffer, peek: flags & messagePeek != 0,
                                                     dontWait: flags & messageDontWait != 0)
    if let address { write(arrival.source.address, to: address) }
    port?.pointee = arrival.source.port
    full?.pointee = length
    if let info {
        write(arrival.destination.address, to: info.assumingMemoryBound(to: UInt8.self))
        info.storeBytes(of: arrival.destination.port, toByteOffset: 16, as: UInt16.self)
        info.storeBytes(of: arrival.trafficClass, toByteOffset: 18, as: UInt8.self)
        info.storeBytes(of: arrival.hopLimit, toByteOffset: 19, as: UInt8.self)
        info.storeBytes(of: interfaceIndex, toByteOffset: 20, as: UInt32.self)
        // The core's clock is CLOCK_MONOTONIC (system-wide): the arrival as wall-clock time
        // is now's less the time since.
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        let since = MonotonicClock.now() - arrival.at
        let realtime = Int64(wall.tv_sec) * 1_000_000_000 + Int64(wall.tv_nsec) - Int64(since.nanoseconds)
        info.storeBytes(of: realtime, toByteOffset: 24, as: Int64.self)
    }
    return flags & messageTruncate != 0 ? length : min(length, buffer.count)
}

/// recvmsg(MSG_ERRQUEUE): the oldest error of a UDP socket's error queue, its quoted
/// payload into `bytes`, its full length into `full`, the rest into `info` (a
/// netmp_error_info). A TCP socket's queue is always empty here: EAGAIN, as Linux's is
/// without timestamping or zero-copy.
@_cdecl("netmp_recv_error")
public func netmpRecvError(_ handle: UnsafeMutableRawPointer, _ bytes: UnsafeMutableRawPointer?, _ count: Int,
                           _ full: UnsafeMutablePointer<Int>?, _ info: UnsafeMutableRawPointer?) -> Int {
    let held = hold(handle)
    defer { held.release() }
    guard case .datagram(let d) = socket(handle).kind else { return -Int(EAGAIN) }
    let buffer = UnsafeMutableRawBufferPointer(start: count == 0 ? nil : bytes, count: count)
    do {
        let (length, error) = try d.receiveError(into: buffer)
        full?.pointee = length
        if let info {
            write(error.datagram.remote.address, to: info.assumingMemoryBound(to: UInt8.self))
            write(error.offender, to: (info + 16).assumingMemoryBound(to: UInt8.self))
            info.storeBytes(of: error.datagram.remote.port, toByteOffset: 32, as: UInt16.self)
            info.storeBytes(of: error.origin, toByteOffset: 34, as: UInt8.self)
            info.storeBytes(of: error.type, toByteOffset: 35, as: UInt8.self)
            info.storeBytes(of: error.code, toByteOffset: 36, as: UInt8.self)
            info.storeBytes(of: error.errorNumber, toByteOffset: 40, as: Int32.self)
            info.storeBytes(of: error.info, toByteOffset: 44, as: UInt32.self)
        }
        return min(length, count)
    } catch { return -Int(error.errno) }
}
