import Glibc
import NetMPClient
import NetMPStack
import NetMPWire

/// The multicast options, with Linux's value layouts, ranges and errnos (do_ip_setsockopt
/// and do_ipv6_setsockopt): IP_MULTICAST_TTL, _LOOP, _ALL and _IF, IP_ADD_MEMBERSHIP and
/// IP_DROP_MEMBERSHIP, IPv6's twins on an IPv6 socket, and MCAST_JOIN_GROUP and
/// MCAST_LEAVE_GROUP (RFC 3678) at either level. A UDP socket acts on them
/// (DatagramSocket+Multicast); a TCP socket refuses what Linux refuses it and keeps the
/// rest for getsockopt, as Linux does.
enum MulticastOptionName {
    static let interface: Int32 = 32, timeToLive: Int32 = 33, loop: Int32 = 34
    static let addMembership: Int32 = 35, dropMembership: Int32 = 36, all: Int32 = 49
    static let ipv4: [Int32] = [32, 33, 34, 35, 36, 49, 42, 45] // not a Set: see Ancillary.ipFlag
    static let interface6: Int32 = 17, hops6: Int32 = 18, loop6: Int32 = 19
    static let join6: Int32 = 20, leave6: Int32 = 21, all6: Int32 = 29
    static let ipv6: [Int32] = [17, 18, 19, 20, 21, 29, 42, 45]
    /// RFC 3678's protocol-independent pair, at either level: a group_req (an interface
    /// index and a sockaddr_storage, 136 bytes).
    static let joinGroup: Int32 = 42, leaveGroup: Int32 = 45
    static let groupRequestLength: UInt32 = 136

    static func isOption(_ level: Int32, _ name: Int32, ipv6 socketIsIPv6: Bool) -> Bool {
        (level == OptionName.ipprotoIP && ipv4.contains(name)) || (level == OptionName.ipprotoIPv6 && socketIsIPv6 && ipv6.contains(name))
    }
}

/// An IPv4 membership request as Linux reads it: ip_mreqn from 12 bytes (group, address,
/// interface index), ip_mreq from 8 (group and the interface's address).
struct MembershipRequest {
    var group: IPv4Address
    var address: IPv4Address
    var index: UInt32

    init(group: IPv4Address, address: IPv4Address, index: UInt32) {
        self.group = group; self.address = address; self.index = index
    }

    init?(_ value: UnsafeRawPointer, length: UInt32) {
        guard length >= 8 else { return nil }
        group = IPv4Address(UInt32(bigEndian: value.loadUnaligned(as: UInt32.self)))
        address = IPv4Address(UInt32(bigEndian: value.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        index = length >= 12 ? value.loadUnaligned(fromByteOffset: 8, as: UInt32.self) : 0
    }
}

/// setsockopt of a multicast option (MulticastOptionName.isOption said it is one).
func setMulticastOption(_ shim: ShimSocket, _ level: Int32, _ name: Int32, _ value: UnsafeRawPointer?, _ length: UInt32) -> Int32 {
    let isStream: Bool
    if case .stream = shim.kind { isStream = true } else { isStream = false }
    let datagram: DatagramSocket?
    if case .datagram(let d) = shim.kind { datagram = d } else { datagram = nil }
    let configuration = processClient?.configuration
    /// An interface index names ours (or any, where the TAP is not visible to the program).
    func isOurInterface(_ index: UInt32) -> Bool { interfaceIndex == 0 || index == interfaceIndex }

    /// IPV6_JOIN_GROUP or _LEAVE_GROUP of `group` on interface `index` (ipv6_sock_mc_join).
    func joinOrLeave6(_ group: IPv6Address, index: UInt32, join: Bool) -> Int32 {
        guard let datagram else { return -EPROTO }
        guard group.isMulticast else { return -EINVAL }
        do {
            if join {
                guard index == 0 || isOurInterface(index) else { return -ENODEV }
                try datagram.join(IPAddress(group))
            } else {
                try datagram.leave(IPAddress(group))
            }
            return 0
        } catch { return -error.errno }
    }

    /// IP_ADD_MEMBERSHIP or _DROP_MEMBERSHIP as __ip_mc_join_group and ip_mc_leave_group
    /// take it: the interface named by index, by its address, or (neither) by the route.
    func joinOrLeave4(_ request: MembershipRequest, join: Bool) -> Int32 {
        guard !isStream else { return -EPROTO }
        guard let datagram else { return -EINVAL }
        let ours = configuration.map { request.address == $0.address } ?? false
        let found = request.index != 0 ? isOurInterface(request.index)
            : !request.address.isUnspecified ? ours
            : processClient?.routes.nextHop(for: request.group) != nil
        do {
            if join {
                guard request.group.isMulticast else { return -EINVAL }
                guard found else { return -ENODEV }
                try datagram.join(IPAddress(request.group))
            } else {
                guard found || request.index != 0 || !request.address.isUnspecified else { return -ENODEV }
                try datagram.leave(IPAddress(request.group))
            }
            return 0
        } catch { return -error.errno }
    }

    // MCAST_JOIN_GROUP and MCAST_LEAVE_GROUP: the group's family must be the level's
    // (ip_mcast_join_leave: EINVAL; ipv6_mcast_join_leave: EADDRNOTAVAIL).
    if name == MulticastOptionName.joinGroup || name == MulticastOptionName.leaveGroup {
        guard let value, length >= MulticastOptionName.groupRequestLength else { return -EINVAL }
        let index = value.loadUnaligned(as: UInt32.self)
        let family = value.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
        let join = name == MulticastOptionName.joinGroup
        if level == OptionName.ipprotoIPv6 {
            guard family == UInt16(AF_INET6) else { return -EADDRNOTAVAIL }
            let group = IPv6Address(high: UInt64(bigEndian: value.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                                    low: UInt64(bigEndian: value.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
            return joinOrLeave6(group, index: index, join: join)
        }
        guard family == UInt16(AF_INET) else { return -EINVAL }
        let group = IPv4Address(UInt32(bigEndian: value.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        return joinOrLeave4(MembershipRequest(group: group, address: .any, index: index), join: join)
    }

    if level == OptionName.ipprotoIPv6 {
        // IPv6's take an int, all of them but the membership pair.
        switch name {
        case MulticastOptionName.join6, MulticastOptionName.leave6:
            guard let value, length >= 20 else { return -EINVAL }
            let group = IPv6Address(high: UInt64(bigEndian: value.loadUnaligned(as: UInt64.self)),
                                    low: UInt64(bigEndian: value.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            return joinOrLeave6(group, index: value.loadUnaligned(fromByteOffset: 16, as: UInt32.self), join: name == MulticastOptionName.join6)
        default: break
        }
        guard let value, length >= 4 else { return -EINVAL }
        let v = value.loadUnaligned(as: Int32.self)
        switch name {
        case MulticastOptionName.hops6:
            guard let datagram else { return isStream ? -ENOPROTOOPT : -EINVAL }
            guard (-1...255).contains(v) else { return -EINVAL }
            datagram.changeMulticast { $0.hopLimit = v == -1 ? 1 : UInt8(v) }
        case MulticastOptionName.loop6:
            guard v == 0 || v == 1 else { return -EINVAL }
            datagram?.changeMulticast { $0.loop6 = v == 1 }
        case MulticastOptionName.all6:
            datagram?.changeMulticast { $0.all6 = v != 0 }
        case MulticastOptionName.interface6:
            guard let datagram else { return -ENOPROTOOPT }
            guard v == 0 || isOurInterface(UInt32(bitPattern: v)) else { return -ENODEV }
            datagram.setMulticastInterface6(index: UInt32(bitPattern: v))
        default: return -ENOPROTOOPT
        }
        return 0 // a stream socket's LOOP and ALL are kept for getsockopt by netmpSetSockOpt
    }

    switch name {
    case MulticastOptionName.addMembership, MulticastOptionName.dropMembership:
        guard !isStream else { return -EPROTO }
        guard let value, let request = MembershipRequest(value, length: length) else { return -EINVAL }
        return joinOrLeave4(request, join: name == MulticastOptionName.addMembership)
    case MulticastOptionName.interface:
        guard !isStream, let value, length >= 4, let datagram else { return -EINVAL }
        var address = IPv4Address(UInt32(bigEndian: value.loadUnaligned(fromByteOffset: length >= 8 ? 4 : 0, as: UInt32.self)))
        let index = length >= 12 ? value.loadUnaligned(fromByteOffset: 8, as: UInt32.self) : 0
        if index == 0 && !address.isUnspecified && address != configuration?.address { return -EADDRNOTAVAIL }
        if index != 0 && !isOurInterface(index) { return -EADDRNOTAVAIL }
        if index == 0 && address.isUnspecified { address = .any }
        datagram.setMulticastInterface(address: address, index: index)
        return 0
    default:
        // IPPROTO_IP's take an int, or from fewer bytes one unsigned byte.
        guard let v = optionInteger(level, value, length) else { return -EINVAL }
        switch name {
        case MulticastOptionName.timeToLive:
            guard !isStream, v == -1 || (0...255).contains(v) else { return -EINVAL }
            datagram?.changeMulticast { $0.timeToLive = v == -1 ? 1 : UInt8(v) }
        case MulticastOptionName.loop:
            datagram?.changeMulticast { $0.loop = v != 0 }
        case MulticastOptionName.all:
            guard v == 0 || v == 1 else { return -EINVAL }
            datagram?.changeMulticast { $0.all = v == 1 }
        default: return -ENOPROTOOPT
        }
        return 0
    }
}

/// getsockopt of a multicast option: the value, as an int or (IPv4's, asked with fewer
/// than 4 bytes) one byte; nil for the membership pair, which cannot be read.
func multicastOption(_ shim: ShimSocket, _ level: Int32, _ name: Int32) -> (value: Int32, address: Bool)? {
    let options: MulticastOptions
    switch shim.kind {
    case .datagram(let d): options = d.multicastOptions
    case .stream:
        // Linux keeps them on a TCP socket too (what it refused to set reads as its default).
        var kept = MulticastOptions()
        let loop = shim.recordedInteger(level, level == OptionName.ipprotoIP ? MulticastOptionName.loop : MulticastOptionName.loop6)
        let all = shim.recordedInteger(level, level == OptionName.ipprotoIP ? MulticastOptionName.all : MulticastOptionName.all6)
        if let loop { kept.loop = loop != 0; kept.loop6 = loop != 0 }
        if let all { kept.all = all != 0; kept.all6 = all != 0 }
        options = kept
    }
    var datagram: DatagramSocket? = nil
    if case .datagram(let d) = shim.kind { datagram = d }
    if level == OptionName.ipprotoIPv6 {
        switch name {
        case MulticastOptionName.hops6: return (Int32(options.hopLimit), false)
        case MulticastOptionName.loop6: return (options.loop6 ? 1 : 0, false)
        case MulticastOptionName.all6: return (options.all6 ? 1 : 0, false)
        case MulticastOptionName.interface6: return (Int32(bitPattern: datagram?.multicastInterface6 ?? 0), false)
        default: return nil
        }
    }
    switch name {
    case MulticastOptionName.timeToLive: return (Int32(options.timeToLive), false)
    case MulticastOptionName.loop: return (options.loop ? 1 : 0, false)
    case MulticastOptionName.all: return (options.all ? 1 : 0, false)
    case MulticastOptionName.interface:
        return (Int32(bitPattern: (datagram?.multicastInterface.address.value ?? 0).bigEndian), true)
    default: return nil
    }
}
