/// Linux's numbers for the levels and options of OptionTable (and of the multicast and
/// ancillary options, MulticastOptionName and Ancillary, which have their own).
enum OptionName {
    static let solSocket: Int32 = 1, ipprotoIP: Int32 = 0, ipprotoTCP: Int32 = 6
    // SOL_SOCKET
    static let reuseAddress: Int32 = 2, type: Int32 = 3, error: Int32 = 4, broadcast: Int32 = 6
    static let sendBuffer: Int32 = 7, receiveBuffer: Int32 = 8, keepAlive: Int32 = 9, linger: Int32 = 13
    static let reusePort: Int32 = 15, receiveTimeout: Int32 = 20, sendTimeout: Int32 = 21
    static let acceptConnection: Int32 = 30, proto: Int32 = 38, domain: Int32 = 39
    static let receiveLowWater: Int32 = 18, sendLowWater: Int32 = 19
    static let outOfBandInline: Int32 = 10, priority: Int32 = 12, peerCredentials: Int32 = 17
    static let debug: Int32 = 1, bsdCompatible: Int32 = 14, mark: Int32 = 36, wifiStatus: Int32 = 41
    static let noFrameCheck: Int32 = 43, lockFilter: Int32 = 44, connectionAdvice: Int32 = 53, preferBusyPoll: Int32 = 69
    static let incomingNAPI: Int32 = 56, busyPoll: Int32 = 46
    // IPPROTO_TCP
    static let noDelay: Int32 = 1, maxSegment: Int32 = 2, cork: Int32 = 3, keepIdle: Int32 = 4
    static let keepInterval: Int32 = 5, keepCount: Int32 = 6, info: Int32 = 11, congestion: Int32 = 13
    static let synCount: Int32 = 7, linger2: Int32 = 8, deferAccept: Int32 = 9, quickAck: Int32 = 12
    static let userTimeout: Int32 = 18, fastOpen: Int32 = 23, notSentLowWater: Int32 = 25
    static let thinDupAck: Int32 = 17, savedSYN: Int32 = 28, upperLayer: Int32 = 31, isMPTCP: Int32 = 43
    // IPPROTO_IP (on an IPv6 socket too, for its traffic to IPv4 peers)
    static let tos: Int32 = 1, ttl: Int32 = 2, mtuDiscover: Int32 = 10, mtu: Int32 = 14, bindAddressNoPort: Int32 = 24
    static let receiveErrors: Int32 = 11, receiveErrors6: Int32 = 25
    static let headerIncluded: Int32 = 3, routerAlert: Int32 = 5, noDefragment: Int32 = 22, receiveFragmentSize: Int32 = 25
    // IPPROTO_IPV6, for AF_INET6 sockets
    static let ipprotoIPv6: Int32 = 41, v6Only: Int32 = 26, unicastHops: Int32 = 16, trafficClass: Int32 = 67
    static let mtuDiscover6: Int32 = 23, mtu6: Int32 = 24
    // IPPROTO_UDP, for UDP sockets (UDP_CORK, UDP_GRO and the rest are ENOPROTOOPT: netmp
    // neither corks nor coalesces)
    static let ipprotoUDP: Int32 = 17, segment: Int32 = 103

    /// SO_RCVTIMEO_NEW and SO_SNDTIMEO_NEW (66, 67), the numbers a program built with a
    /// 64-bit time_t passes, take a struct __kernel_sock_timeval, which on a 64-bit ABI
    /// is the struct timeval of SO_RCVTIMEO and SO_SNDTIMEO: Linux answers both pairs
    /// alike there (Scripts/option-probe), so they are those options.
    static func canonical(_ level: Int32, _ name: Int32) -> Int32 {
        guard level == solSocket else { return name }
        switch name {
        case 66: return receiveTimeout
        case 67: return sendTimeout
        default: return name
        }
    }
}
