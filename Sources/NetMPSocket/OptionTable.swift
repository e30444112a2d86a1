import Glibc
import NetMPClient
import NetMPStack
import NetMPSystem
import NetMPTCP

/// How an option's value lies in the program's buffer: what setsockopt reads and checks
/// before a row's setter runs, and what getsockopt writes.
enum OptionLayout: Sendable {
    /// An int; fewer than 4 bytes: EINVAL.
    case integer
    /// IPPROTO_IP's: an int, or one unsigned byte from fewer bytes (do_ip_setsockopt).
    case integerOrByte
    /// A struct timeval; shorter: EINVAL; microseconds not below a second: EDOM.
    case timeval
    /// A struct linger.
    case linger
    /// A NUL-terminated name of up to 16 bytes (TCP_CONGESTION); empty: EINVAL.
    case text
    /// Bytes only read (TCP_INFO).
    case bytes
}

/// An option's value between the C boundary and a row.
enum OptionValue: Sendable {
    case integer(Int32)
    case nanoseconds(Int)
    /// SO_LINGER: nil when off.
    case linger(seconds: Int?)
    case text(String)
    case bytes([UInt8])
}

/// Which sockets a row is for.
struct OptionSockets: OptionSet, Sendable {
    let rawValue: UInt8
    static let stream = OptionSockets(rawValue: 1), datagram = OptionSockets(rawValue: 2)
    static let both: OptionSockets = [.stream, .datagram]
    /// AF_INET6 sockets only (IPPROTO_IPV6's options).
    static let ipv6 = OptionSockets(rawValue: 4)
}

/// One option netmp knows at one level for some sockets: its layout, its range, and what
/// setting and reading it do. A nil setter is an option only read (ENOPROTOOPT to set, as
/// Linux's SO_TYPE); a setter that does nothing is one Linux accepts and netmp has no use
/// for: the C boundary keeps the value as passed (`ShimSocket.remember`), and the getter
/// reads it back (`recorded`).
struct OptionRow: Sendable {
    let level: Int32, name: Int32
    let sockets: OptionSockets
    let layout: OptionLayout
    /// Integers outside it are EINVAL (before the setter runs).
    let range: ClosedRange<Int32>?
    let set: (@Sendable (ShimSocket, OptionValue) throws(OptionFailure) -> Void)?
    let get: (@Sendable (ShimSocket) throws(OptionFailure) -> OptionValue)?

    func serves(_ shim: ShimSocket) -> Bool {
        let kind: OptionSockets = if case .stream = shim.kind { .stream } else { .datagram }
        return sockets.contains(kind) && (!sockets.contains(.ipv6) || shim.isIPv6)
    }
}

extension OptionRow {
    /// A row whose value is an int (or IPPROTO_IP's int-or-byte).
    static func integer(_ level: Int32, _ name: Int32, _ sockets: OptionSockets, range: ClosedRange<Int32>? = nil,
                        set: (@Sendable (ShimSocket, Int32) throws(OptionFailure) -> Void)?,
                        get: @escaping @Sendable (ShimSocket) throws(OptionFailure) -> Int32) -> OptionRow {
        var setter: (@Sendable (ShimSocket, OptionValue) throws(OptionFailure) -> Void)? = nil
        if let set {
            setter = { @Sendable (shim: ShimSocket, value: OptionValue) throws(OptionFailure) -> Void in
                guard case .integer(let v) = value else { throw .invalid }
                try set(shim, v)
            }
        }
        return OptionRow(level: level, name: name, sockets: sockets, layout: level == OptionName.ipprotoIP ? .integerOrByte : .integer,
                         range: range, set: setter,
                         get: { @Sendable (shim: ShimSocket) throws(OptionFailure) -> OptionValue in .integer(try get(shim)) })
    }

    /// An int of a stream socket.
    static func stream(_ level: Int32, _ name: Int32, range: ClosedRange<Int32>? = nil,
                       set: (@Sendable (StreamSocket, Int32) -> Void)?, get: @escaping @Sendable (StreamSocket) -> Int32) -> OptionRow {
        var setter: (@Sendable (ShimSocket, Int32) throws(OptionFailure) -> Void)? = nil
        if let set { setter = { @Sendable shim, v in if case .stream(let s) = shim.kind { set(s, v) } } }
        return integer(level, name, .stream, range: range, set: setter,
                       get: { @Sendable shim in if case .stream(let s) = shim.kind { get(s) } else { 0 } })
    }

    /// An int of a datagram socket.
    static func datagram(_ level: Int32, _ name: Int32, range: ClosedRange<Int32>? = nil,
                         set: (@Sendable (DatagramSocket, Int32) -> Void)?, get: @escaping @Sendable (DatagramSocket) -> Int32) -> OptionRow {
        var setter: (@Sendable (ShimSocket, Int32) throws(OptionFailure) -> Void)? = nil
        if let set { setter = { @Sendable shim, v in if case .datagram(let d) = shim.kind { set(d, v) } } }
        return integer(level, name, .datagram, range: range, set: setter,
                       get: { @Sendable shim in if case .datagram(let d) = shim.kind { get(d) } else { 0 } })
    }

    /// An option kept only, of any layout: read back from the bytes the program passed,
    /// `initial` before any.
    static func kept(_ level: Int32, _ name: Int32, _ sockets: OptionSockets, layout: OptionLayout,
                     initial: OptionValue) -> OptionRow {
        OptionRow(level: level, name: name, sockets: sockets, layout: layout, range: nil, set: { _, _ in }, get: { shim in
            shim.recorded(level, name) { try? OptionValue(reading: $0.baseAddress, UInt32($0.count), as: layout) } ?? initial
        })
    }

    /// An option kept only (see OptionRow): read back as set, `fallback` before, 0 or 1
    /// when `boolean` (Linux's valbool flags). `act` runs before it is kept, and may refuse it.
    static func recorded(_ level: Int32, _ name: Int32, _ sockets: OptionSockets, boolean: Bool = false,
                         fallback: Int32 = 0, range: ClosedRange<Int32>? = nil,
                         then act: (@Sendable (ShimSocket, Int32) throws(OptionFailure) -> Void)? = nil) -> OptionRow {
        integer(level, name, sockets, range: range, set: { shim, v throws(OptionFailure) in try act?(shim, v) }, get: { shim in
            let v = shim.recordedInteger(level, name) ?? fallback
            return boolean ? (v != 0 ? 1 : 0) : v
        })
    }
}

/// Every option of the table, found by (level, name) and the socket's kind and family. The
/// multicast options (MulticastOptions) and those that ask for ancillary data (Ancillary)
/// have structured values of their own and are looked at before it.
enum OptionTable {
    static func row(_ level: Int32, _ name: Int32, for shim: ShimSocket) -> OptionRow? {
        let wanted = key(level, name)
        // The first row of that key (binary search), then its rows for other sockets.
        var low = 0, high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if key(sorted[middle].level, sorted[middle].name) < wanted { low = middle + 1 } else { high = middle }
        }
        while low < sorted.count && key(sorted[low].level, sorted[low].name) == wanted {
            if sorted[low].serves(shim) { return sorted[low] }
            low += 1
        }
        return nil
    }

    private static func key(_ level: Int32, _ name: Int32) -> Int64 { Int64(level) << 32 | Int64(UInt32(bitPattern: name)) }

    /// The rows in key order. Not a Dictionary: after exec the library's constructor sets
    /// the handed-down sockets' options again before the statically linked Swift runtime
    /// has seeded its hashing, and a table hashed then is never found again.
    private static let sorted: [OptionRow] = rows.sorted { key($0.level, $0.name) < key($1.level, $1.name) }

    typealias N = OptionName
    static let rows: [OptionRow] = socketLevel + tcpLevel + ipLevels + [
        // udp_lib_setsockopt: an int, 0 (off) to 65,535.
        .datagram(N.ipprotoUDP, N.segment, range: 0...65_535, set: { d, v in d.segmentSize = Int(v) }, get: { Int32($0.segmentSize) }),
    ]

    static let socketLevel: [OptionRow] = [
        .integer(N.solSocket, N.type, .both, set: nil, get: { shim in if case .stream = shim.kind { 1 } else { 2 } }),
        .integer(N.solSocket, N.domain, .both, set: nil, get: { $0.isIPv6 ? 10 : 2 }),
        .integer(N.solSocket, N.proto, .both, set: nil, get: { shim in if case .stream = shim.kind { 6 } else { 17 } }),
        .integer(N.solSocket, N.error, .both, set: nil, get: { shim in
            switch shim.kind {
            case .stream(let s): s.takeError()
            case .datagram(let d): d.takeError()
            }
        }),
        // An IP socket has no peer process: Linux answers with no pid and uid and gid -1.
        OptionRow(level: N.solSocket, name: N.peerCredentials, sockets: .both, layout: .bytes, range: nil, set: nil,
                  get: { _ in .bytes([0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]) }),
        .stream(N.solSocket, N.acceptConnection, set: nil, get: { $0.isListening ? 1 : 0 }),
        .datagram(N.solSocket, N.acceptConnection, set: nil, get: { _ in 0 }),
        .recorded(N.solSocket, N.reusePort, .both, boolean: true) { shim, v in
            switch shim.kind {
            case .stream(let s): s.setReusePort(v != 0)
            case .datagram(let d): d.setReusePort(v != 0)
            }
        },
        .recorded(N.solSocket, N.reuseAddress, .both, boolean: true) { shim, v in
            switch shim.kind {
            case .stream(let s): s.setReuseAddress(v != 0)
            case .datagram(let d): d.setReuseAddress(v != 0)
            }
        },
        // A stream socket's reads follow it; a datagram socket has no urgent data.
        .recorded(N.solSocket, N.outOfBandInline, .both, boolean: true) { shim, v in
            if case .stream(let s) = shim.kind { s.setOutOfBandInline(v != 0) }
        },
        .recorded(N.solSocket, N.priority, .both),
        // Flags Linux keeps on every socket and its IP path never reads, nor netmp's: TCP
        // debugging is long gone from Linux, there is no wireless status nor a device that
        // sends without a frame check sequence, no filter to lock, no NAPI to busy-poll.
        // Kept and read back 0 or 1, with the privilege Linux asks to turn them on.
        .recorded(N.solSocket, N.debug, .both, boolean: true) { _, v throws(OptionFailure) in
            if v != 0, !Capability.netAdmin.isEffective() { throw .permissionDenied }
        },
        .recorded(N.solSocket, N.wifiStatus, .both, boolean: true), .recorded(N.solSocket, N.noFrameCheck, .both, boolean: true),
        .recorded(N.solSocket, N.preferBusyPoll, .both, boolean: true) { _, v throws(OptionFailure) in
            if v != 0, !Capability.netAdmin.isEffective() { throw .notPermitted }
        },
        // Microseconds to busy-poll the device's NAPI queue: any program may ask (Linux
        // 6.18 checks no capability), and netmp's cores poll the TAP as they see fit.
        .recorded(N.solSocket, N.busyPoll, .both, range: 0...Int32.max),
        // Once locked, a socket's filter stays locked.
        .recorded(N.solSocket, N.lockFilter, .both, boolean: true) { shim, v throws(OptionFailure) in
            if v == 0, (shim.recordedInteger(N.solSocket, N.lockFilter) ?? 0) != 0 { throw .notPermitted }
        },
        // The mark policy routing and netfilter read on the host; netmp's frames meet
        // neither. Kept and read back as set, for CAP_NET_RAW or CAP_NET_ADMIN only.
        .recorded(N.solSocket, N.mark, .both) { _, _ throws(OptionFailure) in
            guard Capability.netRaw.isEffective() || Capability.netAdmin.isEffective() else { throw .notPermitted }
        },
        // A no-op in Linux, which reads it back 0.
        .integer(N.solSocket, N.bsdCompatible, .both, set: { _, _ in }, get: { _ in 0 }),
        // The NAPI instance that took the last packet: netmp's TAP queues have none (0).
        .integer(N.solSocket, N.incomingNAPI, .both, set: nil, get: { _ in 0 }),
        // A hint that the route is bad (Linux acts on 1): netmp has the one route. Set only.
        OptionRow(level: N.solSocket, name: N.connectionAdvice, sockets: .both, layout: .integer, range: nil,
                  set: { _, _ in }, get: nil),
        // Linux's is fixed at 1 and cannot be set.
        .integer(N.solSocket, N.sendLowWater, .both, set: nil, get: { _ in 1 }),
        .stream(N.solSocket, N.receiveLowWater, set: { s, v in s.setReceiveLowWater(Int(v)) },
                get: { Int32(clamping: $0.receiveLowWaterMark) }),
        // No effect on UDP; read back as sock_setsockopt keeps it: 0 is 1, below 0 INT_MAX.
        .integer(N.solSocket, N.receiveLowWater, .datagram, set: { _, _ in }, get: { shim in
            let v = shim.recordedInteger(N.solSocket, N.receiveLowWater) ?? 1
            return v < 0 ? Int32.max : max(1, v)
        }),
        .stream(N.solSocket, N.keepAlive, set: { s, v in s.setKeepAlive(v != 0) }, get: { $0.options.keepAlive ? 1 : 0 }),
        .recorded(N.solSocket, N.keepAlive, .datagram, boolean: true), // a flag UDP never reads
        .datagram(N.solSocket, N.broadcast, set: { d, v in d.setBroadcast(v != 0) }, get: { $0.isBroadcast ? 1 : 0 }),
        .recorded(N.solSocket, N.broadcast, .stream, boolean: true), // a flag TCP never reads
        OptionRow(level: N.solSocket, name: N.linger, sockets: .stream, layout: .linger, range: nil, set: { shim, value in
            if case .stream(let s) = shim.kind, case .linger(let seconds) = value { s.setLinger(seconds: seconds) }
        }, get: { shim in
            guard case .stream(let s) = shim.kind else { return .linger(seconds: nil) }
            return .linger(seconds: s.linger)
        }),
        // Kept on a datagram socket, whose close never waits.
        .kept(N.solSocket, N.linger, .datagram, layout: .linger, initial: .linger(seconds: nil)),
        // Read back as Linux's sock_setsockopt makes them (BufferSizes): the value
        // (unsigned) capped at net.core's maximum, doubled, at least the kernel's minimum.
        // On a stream socket they bound the connection too: its window grows up to the
        // receive buffer, and its writers hold at most the send buffer. Before any, a fresh
        // stream socket's are tcp_rmem's and tcp_wmem's defaults, as Linux's; once it
        // connects or listens, its rings' sizes (Linux's autotuning grows its buffers towards
        // those sysctls' maxima; netmp's rings are made at theirs). A datagram socket's are
        // net.core's defaults (kept only: a datagram's send never waits long).
        buffer(N.receiveBuffer, BufferSizes.receive, apply: { $0.setReceiveBuffer($1) }, current: { $0.receiveBufferSize }),
        buffer(N.sendBuffer, BufferSizes.send, apply: { $0.setSendBuffer($1) }, current: { $0.sendBufferSize }),
        timeout(N.receiveTimeout, .stream, set: { shim, ns in if case .stream(let s) = shim.kind { s.setTimeouts(receive: ns) } },
                get: { shim in if case .stream(let s) = shim.kind { s.timeouts.receive } else { 0 } }),
        timeout(N.sendTimeout, .stream, set: { shim, ns in if case .stream(let s) = shim.kind { s.setTimeouts(send: ns) } },
                get: { shim in if case .stream(let s) = shim.kind { s.timeouts.send } else { 0 } }),
        timeout(N.receiveTimeout, .datagram, set: { shim, ns in if case .datagram(let d) = shim.kind { d.setReceiveTimeout(ns) } },
                get: { shim in if case .datagram(let d) = shim.kind { d.receiveTimeoutNanoseconds } else { 0 } }),
        // A datagram's send never waits for room long: kept and read back only.
        .kept(N.solSocket, N.sendTimeout, .datagram, layout: .timeval, initial: .nanoseconds(0)),
    ]

    /// SO_RCVBUF or SO_SNDBUF (above): `apply` gives a stream socket the size as Linux
    /// makes it; `current` is a connection's or listener's before any was set.
    static func buffer(_ name: Int32, _ sizes: BufferSizes, apply: @escaping @Sendable (StreamSocket, Int) -> Void,
                       current: @escaping @Sendable (StreamSocket) -> Int) -> OptionRow {
        .integer(N.solSocket, name, .both, set: { shim, v in
            if case .stream(let s) = shim.kind { apply(s, Int(sizes.asSet(v))) }
        }, get: { shim in
            if let v = shim.recordedInteger(N.solSocket, name) { return sizes.asSet(v) }
            guard case .stream(let s) = shim.kind else { return sizes.initial }
            return s.isFresh ? sizes.streamInitial : Int32(clamping: current(s))
        })
    }

    static func timeout(_ name: Int32, _ sockets: OptionSockets, set: @escaping @Sendable (ShimSocket, Int) -> Void,
                        get: @escaping @Sendable (ShimSocket) -> Int) -> OptionRow {
        OptionRow(level: N.solSocket, name: name, sockets: sockets, layout: .timeval, range: nil, set: { shim, value in
            if case .nanoseconds(let ns) = value { set(shim, ns) }
        }, get: { shim in .nanoseconds(get(shim)) })
    }

    static let tcpLevel: [OptionRow] = [
        .stream(N.ipprotoTCP, N.noDelay, set: { s, v in s.setNoDelay(v != 0) }, get: { $0.options.noDelay ? 1 : 0 }),
        .stream(N.ipprotoTCP, N.cork, set: { s, v in s.setCork(v != 0) }, get: { $0.options.cork ? 1 : 0 }),
        // 0 (the default again) or 88 to 32,767 (Linux's TCP_MIN_MSS and MAX_TCP_WINDOW).
        // Read back: the connection's send MSS once it has one, else what was set, else
        // Linux's TCP_MSS_DEFAULT (536).
        .integer(N.ipprotoTCP, N.maxSegment, .stream, set: { shim, v throws(OptionFailure) in
            guard v == 0 || (88...32_767).contains(v) else { throw .invalid }
            if case .stream(let s) = shim.kind { s.setMaximumSegmentSize(Int(v)) }
        }, get: { shim in
            guard case .stream(let s) = shim.kind else { return 0 }
            let sent = s.info().sendMSS
            if sent != 0 { return Int32(clamping: sent) }
            let set = shim.recordedInteger(N.ipprotoTCP, N.maxSegment) ?? 0
            return set != 0 ? set : 536
        }),
        .stream(N.ipprotoTCP, N.keepIdle, range: 1...32_767, set: { s, v in s.setKeepAliveParameters(idle: Int(v)) },
                get: { Int32($0.options.keepAliveIdle.nanoseconds / 1_000_000_000) }),
        .stream(N.ipprotoTCP, N.keepInterval, range: 1...32_767, set: { s, v in s.setKeepAliveParameters(interval: Int(v)) },
                get: { Int32($0.options.keepAliveInterval.nanoseconds / 1_000_000_000) }),
        .stream(N.ipprotoTCP, N.keepCount, range: 1...127, set: { s, v in s.setKeepAliveParameters(probes: Int(v)) },
                get: { Int32($0.options.keepAliveProbes) }),
        .stream(N.ipprotoTCP, N.userTimeout, range: 0...Int32.max, set: { s, v in s.setUserTimeout(milliseconds: Int(v)) },
                get: { Int32(clamping: $0.userTimeoutMilliseconds) }),
        .stream(N.ipprotoTCP, N.linger2, set: { s, v in s.setLinger2(seconds: Int(v)) }, get: { Int32($0.linger2Seconds) }),
        .stream(N.ipprotoTCP, N.deferAccept, set: { s, v in s.setDeferAccept(seconds: Int(v)) }, get: { Int32($0.deferAcceptSeconds) }),
        .stream(N.ipprotoTCP, N.quickAck, set: { s, v in s.setQuickAck(v != 0) }, get: { $0.isQuickAck ? 1 : 0 }),
        .stream(N.ipprotoTCP, N.synCount, range: 1...127, set: { s, v in s.setSYNRetransmissions(Int(v)) },
                get: { Int32($0.options.maximumSYNRetransmissions) }),
        // The TCP Fast Open queue of a listener: kept, and read back capped at
        // net.core.somaxconn, as Linux keeps it; only before connect. Connections do not use
        // Fast Open, as on Linux with its default net.ipv4.tcp_fastopen (1: client side only).
        .integer(N.ipprotoTCP, N.fastOpen, .stream, range: 0...Int32.max, set: { shim, _ throws(OptionFailure) in
            if case .stream(let s) = shim.kind, s.isConnection { throw .invalid }
        }, get: { shim in min(shim.recordedInteger(N.ipprotoTCP, N.fastOpen) ?? 0, listenQueueLimit) }),
        .stream(N.ipprotoTCP, N.notSentLowWater, set: { s, v in s.setNotSentLowWater(v) }, get: { $0.notSentLowWaterMark }),
        OptionRow(level: N.ipprotoTCP, name: N.info, sockets: .stream, layout: .bytes, range: nil, set: nil, get: { shim in
            guard case .stream(let s) = shim.kind else { return .bytes([]) }
            var bytes = [UInt8](repeating: 0, count: TCPInfo.size)
            bytes.withUnsafeMutableBytes { _ = s.info().emit(into: $0) }
            return .bytes(bytes)
        }),
        // What Linux answers on a TCP socket that has none of them: no SYN saved
        // (TCP_SAVE_SYN is not kept), not MPTCP, and TCP_THIN_DUPACK, a no-op since Linux
        // 4.13 that takes 0 or 1 and reads back 0.
        OptionRow(level: N.ipprotoTCP, name: N.savedSYN, sockets: .stream, layout: .bytes, range: nil, set: nil,
                  get: { _ in .bytes([]) }),
        .integer(N.ipprotoTCP, N.isMPTCP, .stream, set: nil, get: { _ in 0 }),
        .integer(N.ipprotoTCP, N.thinDupAck, .stream, range: 0...1, set: { _, _ in }, get: { _ in 0 }),
        // An upper-layer protocol (kTLS's "tls"): none here, ENOENT as from a kernel without
        // the module, so a program (OpenSSL) goes on without it; read back empty.
        OptionRow(level: N.ipprotoTCP, name: N.upperLayer, sockets: .stream, layout: .text, range: nil,
                  set: { _, _ throws(OptionFailure) in throw .unknownAlgorithm }, get: { _ in .bytes([]) }),
        OptionRow(level: N.ipprotoTCP, name: N.congestion, sockets: .stream, layout: .text, range: nil, set: { shim, value throws(OptionFailure) in
            guard case .text(let text) = value, case .stream(let s) = shim.kind else { throw .invalid }
            guard let algorithm = CongestionAlgorithm(rawValue: text) else { throw .unknownAlgorithm }
            s.setCongestionControl(algorithm)
        }, get: { shim in
            guard case .stream(let s) = shim.kind else { return .text("") }
            return .text(s.options.congestionControl.rawValue)
        }),
    ]

    /// IPPROTO_IP's options reach an IPv6 socket too (for its traffic to IPv4 peers, as Linux
    /// applies them); IPPROTO_IPV6's only an IPv6 one.
    static let ipLevels: [OptionRow] = [
        marking(N.ipprotoIP, N.tos), marking(N.ipprotoIP, N.ttl),
        // Raw sockets' options, which Linux reads back 0 on a TCP or UDP socket and will not
        // set there: IP_HDRINCL and IP_NODEFRAG (ENOPROTOOPT), IP_ROUTER_ALERT (EINVAL); and
        // a datagram's fragment size, asked of a TCP socket (EINVAL).
        .integer(N.ipprotoIP, N.headerIncluded, .both, set: nil, get: { _ in 0 }),
        .integer(N.ipprotoIP, N.noDefragment, .both, set: nil, get: { _ in 0 }),
        .integer(N.ipprotoIP, N.routerAlert, .both, set: { _, _ throws(OptionFailure) in throw .invalid }, get: { _ in 0 }),
        .integer(N.ipprotoIP, N.receiveFragmentSize, .stream, set: { _, _ throws(OptionFailure) in throw .invalid },
                 get: { _ in 0 }),
        marking(N.ipprotoIPv6, N.trafficClass), marking(N.ipprotoIPv6, N.unicastHops),
        // A UDP socket's errors go to its error queue; 0 empties it. A TCP socket's is kept.
        receiveErrors(N.ipprotoIP, N.receiveErrors, ipv6: false),
        receiveErrors(N.ipprotoIPv6, N.receiveErrors6, ipv6: true),
        .integer(N.ipprotoIPv6, N.v6Only, [.both, .ipv6], set: { shim, v throws(OptionFailure) in
            do throws(SocketError) {
                switch shim.kind {
                case .stream(let s): try s.setV6Only(v != 0)
                case .datagram(let d): try d.setV6Only(v != 0)
                }
            } catch { throw .refused(error) }
        }, get: { shim in
            switch shim.kind {
            case .stream(let s): s.v6Only ? 1 : 0
            case .datagram(let d): d.v6Only ? 1 : 0
            }
        }),
        .integer(N.ipprotoIP, N.bindAddressNoPort, .both, set: { shim, v in
            switch shim.kind {
            case .stream(let s): s.setBindAddressNoPort(v != 0)
            case .datagram(let d): d.setBindAddressNoPort(v != 0)
            }
        }, get: { shim in
            switch shim.kind {
            case .stream(let s): s.isBindAddressNoPort ? 1 : 0
            case .datagram(let d): d.isBindAddressNoPort ? 1 : 0
            }
        }),
        // IP_PMTUDISC_DONT ... IP_PMTUDISC_OMIT: on a UDP socket DO, PROBE and INTERFACE
        // refuse a datagram the path cannot carry whole; TCP never fragments and keeps it.
        .recorded(N.ipprotoIP, N.mtuDiscover, .stream, fallback: 1, range: 0...5), // IP_PMTUDISC_WANT
        .recorded(N.ipprotoIPv6, N.mtuDiscover6, [.stream, .ipv6], fallback: 1, range: 0...5),
        .datagram(N.ipprotoIP, N.mtuDiscover, range: 0...5, set: { d, v in d.setPathMTUDiscovery(v, ipv6: false) },
                  get: { $0.pathMTUDiscovery(ipv6: false) }),
        .integer(N.ipprotoIPv6, N.mtuDiscover6, [.datagram, .ipv6], range: 0...5, set: { shim, v in
            if case .datagram(let d) = shim.kind { d.setPathMTUDiscovery(v, ipv6: true) }
        }, get: { shim in if case .datagram(let d) = shim.kind { d.pathMTUDiscovery(ipv6: true) } else { 0 } }),
        .integer(N.ipprotoIP, N.mtu, .both, set: nil, get: pathMTU),
        .integer(N.ipprotoIPv6, N.mtu6, [.both, .ipv6], set: nil, get: pathMTU),
    ]

    /// IP_TOS and IP_TTL, IPV6_TCLASS and IPV6_UNICAST_HOPS: checked and normalised as
    /// Linux's do_ip_setsockopt and do_ipv6_setsockopt do, read back as it reports them (a
    /// TTL of "default" is 64). An IPv6 socket's IP-level pair is the one for its IPv4 peers.
    static func marking(_ level: Int32, _ name: Int32) -> OptionRow {
        let ipv4 = level == N.ipprotoIP, isTTL = name == N.ttl || name == N.unicastHops
        return .integer(level, name, ipv4 ? .both : [.both, .ipv6], set: { shim, v throws(OptionFailure) in
            let mapped = ipv4 && shim.isIPv6
            var marking = mapped ? shim.mappedMarking : shim.marking
            if isTTL {
                guard v == -1 || (ipv4 ? (1...255).contains(v) : (0...255).contains(v)) else { throw .invalid }
                marking.timeToLive = v == -1 ? 0 : UInt8(v)
            } else {
                if !ipv4 { guard (-1...255).contains(v) else { throw .invalid } }
                // A byte (IPv4 takes any int's low byte; IPv6's -1 is the default, 0); TCP
                // keeps its ECN bits for itself.
                let byte = !ipv4 && v == -1 ? 0 : UInt8(truncatingIfNeeded: v)
                if case .stream = shim.kind { marking.typeOfService = byte & ~3 } else { marking.typeOfService = byte }
            }
            switch shim.kind {
            case .stream(let s): s.setMarking(marking, forIPv4Peers: mapped)
            case .datagram(let d): d.setMarking(marking, forIPv4Peers: mapped)
            }
        }, get: { shim in
            let marking = ipv4 && shim.isIPv6 ? shim.mappedMarking : shim.marking
            if !isTTL { return Int32(marking.typeOfService) }
            return marking.timeToLive == 0 ? 64 : Int32(marking.timeToLive)
        })
    }

    static func receiveErrors(_ level: Int32, _ name: Int32, ipv6: Bool) -> OptionRow {
        .integer(level, name, ipv6 ? [.both, .ipv6] : .both, set: { shim, v in
            if case .datagram(let d) = shim.kind { d.setReceiveErrors(v != 0, ipv6: ipv6) }
        }, get: { shim in
            switch shim.kind {
            case .datagram(let d): d.receivesErrors(ipv6: ipv6) ? 1 : 0
            case .stream: (shim.recordedInteger(level, name) ?? 0) != 0 ? 1 : 0
            }
        })
    }

    /// IP_MTU and IPV6_MTU: Linux answers from the socket's route, which only a connected
    /// socket has.
    static func pathMTU(_ shim: ShimSocket) throws(OptionFailure) -> Int32 {
        let connected = switch shim.kind {
        case .stream(let s): (try? s.peerAddress()) != nil
        case .datagram(let d): (try? d.peerAddress()) != nil
        }
        guard connected else { throw .refused(SocketError.notConnected) }
        return Int32(processClient?.configuration.mtu ?? 1500)
    }
}

/// A UDP socket's SO_RCVBUF or SO_SNDBUF as Linux reports it: net.core's default
/// ({r,w}mem_default) until set, then the value asked for, read as unsigned, capped at
/// {r,w}mem_max, doubled, and at least SOCK_MIN_RCVBUF or SOCK_MIN_SNDBUF. The sysctls are
/// read once, from the program's network namespace (the stack's).
struct BufferSizes {
    /// `initial`: a datagram socket's (net.core's default); `streamInitial`: a fresh TCP
    /// socket's (the middle of net.ipv4.tcp_rmem or tcp_wmem).
    let initial: Int32, streamInitial: Int32, maximum: UInt32, minimum: Int32

    static let receive = BufferSizes(direction: "r", minimum: 2_304, streamDefault: 131_072)
    static let send = BufferSizes(direction: "w", minimum: 4_608, streamDefault: 16_384)

    init(direction: String, minimum: Int32, streamDefault: Int) {
        initial = Int32(clamping: procInteger("/proc/sys/net/core/\(direction)mem_default") ?? 212_992)
        maximum = UInt32(clamping: procInteger("/proc/sys/net/core/\(direction)mem_max") ?? 212_992)
        let triple = procFile("/proc/sys/net/ipv4/tcp_\(direction)mem", limit: 64)?
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) } ?? []
        streamInitial = Int32(clamping: triple.count == 3 ? triple[1] : streamDefault)
        self.minimum = minimum
    }

    func asSet(_ value: Int32) -> Int32 {
        max(Int32(clamping: Int64(min(UInt32(bitPattern: value), maximum)) * 2), minimum)
    }
}

/// net.core.somaxconn of the program's network namespace (Linux's default, 4096, when it
/// cannot be read): where Linux caps a listen queue.
let listenQueueLimit = Int32(clamping: procInteger("/proc/sys/net/core/somaxconn") ?? 4_096)
