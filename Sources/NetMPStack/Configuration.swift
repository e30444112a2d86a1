import NetMPWire

public enum LogLevel: Int, Comparable, Sendable, CaseIterable {
    case off = 0, error, info, debug
    public init?(name: String) {
        switch name { case "off": self = .off; case "error": self = .error
                      case "info": self = .info; case "debug": self = .debug; default: return nil }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
    public var name: String {
        switch self { case .off: "off"; case .error: "error"; case .info: "info"; case .debug: "debug" }
    }
}

/// A misconfiguration, worded for the user: which variable, what it held, what it wants.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public var variable: String
    public var message: String
    public init(_ variable: String, _ message: String) { self.variable = variable; self.message = message }
    public var description: String { "\(variable): \(message)" }
}

/// The stack's configuration, read once from the environment (NETMP_*) when the library
/// loads, or built from `netmp run` flags. A value: nothing below reads the environment.
public struct StackConfiguration: Equatable, Sendable {
    public var tapName: String
    public var address: IPv4Address
    public var prefixLength: Int
    /// IPv6 addresses beside the link-local one the stack forms from its MAC.
    public var ipv6Addresses: [IPv6InterfaceAddress] = []
    /// NETMP_ACCEPT_RA=1: take IPv6 default routers, on-link prefixes and the MTU from
    /// router advertisements, and solicit them once the link-local address is ready.
    public var acceptRouterAdvertisements = false
    public var gateway: IPv4Address?
    public var mac: MACAddress
    /// Protocol threads; nil means one per core the process may run on.
    public var cores: Int?
    public var logLevel: LogLevel
    public var mtu: Int = 1500
    /// NETMP_FAKE_NUMA: a CPU-to-node map for testing multi-node code on one node.
    public var fakeNUMA: String? = nil
    /// NETMP_POLL_SPIN_US: how long a protocol thread that just had work keeps looking at
    /// its queue and port before it sleeps in poll (adaptive polling; 0: never spins).
    public var pollSpinMicroseconds: Int = StackConfiguration.defaultPollSpinMicroseconds
    public static let defaultPollSpinMicroseconds = 20
    /// NETMP_CAPTURE: the stack writes every frame it sends and receives to this pcapng
    /// file from its start to its end; NETMP_CAPTURE_FILTER keeps only the frames that pass
    /// (`CaptureFilter`), NETMP_CAPTURE_SNAPLEN bytes of each (`netmp capture` does the same
    /// for a stack already running).
    public var capturePath: String? = nil
    public var captureFilter: CaptureFilter? = nil
    public var captureSnapLength = 262_144

    public init(tapName: String, address: IPv4Address, prefixLength: Int, gateway: IPv4Address? = nil,
                mac: MACAddress? = nil, cores: Int? = nil, logLevel: LogLevel = .error) {
        self.tapName = tapName; self.address = address; self.prefixLength = prefixLength
        self.gateway = gateway; self.mac = mac ?? Self.defaultMAC(for: address)
        self.cores = cores; self.logLevel = logLevel
    }

    /// A locally administered unicast MAC derived from the address (02:00:a.b.c.d), so a
    /// restarted program keeps its MAC and the peer's neighbour entry stays right.
    public static func defaultMAC(for address: IPv4Address) -> MACAddress {
        MACAddress(value: 0x0200_0000_0000 | UInt64(address.value))
    }

    /// Parses the NETMP_* variables. Returns nil when NETMP_TAP is unset (netmp stays off).
    public static func parse(environment: (String) -> String?) -> Result<StackConfiguration?, ConfigurationError> {
        guard let tap = environment("NETMP_TAP") else { return .success(nil) }
        guard !tap.isEmpty, tap.utf8.count <= 15, !tap.contains("/"), !tap.contains(" "), tap != ".", tap != ".." else {
            return .failure(ConfigurationError("NETMP_TAP", "'\(tap)' is not an interface name (1 to 15 characters, no '/' or spaces)"))
        }
        guard let addressText = environment("NETMP_ADDR") else {
            return .failure(ConfigurationError("NETMP_ADDR", "missing: give the stack's address and prefix, e.g. 10.77.0.2/24"))
        }
        // One IPv4 address and any IPv6 ones, comma separated, each with its prefix.
        var v4: (IPv4Address, Int)?
        var v6: [IPv6InterfaceAddress] = []
        for item in addressText.split(separator: ",", omittingEmptySubsequences: false) {
            let text = item.trimmingSpaces
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            if text.contains(":") {
                guard parts.count == 2, let address = IPv6Address(parts[0]), let prefix = Int(parts[1]), (1...128).contains(prefix),
                      !address.isUnspecified, !address.isLoopback, !address.isMulticast, !address.isIPv4Mapped,
                      !address.isLinkLocal else {
                    return .failure(ConfigurationError("NETMP_ADDR", "'\(text)' is not a unicast IPv6 address with a prefix 1-128, e.g. fd77::2/64 (the link-local address is formed from the MAC)"))
                }
                guard !v6.contains(where: { $0.address == address }) else {
                    return .failure(ConfigurationError("NETMP_ADDR", "\(address) is given twice"))
                }
                v6.append(IPv6InterfaceAddress(address, prefixLength: prefix))
                continue
            }
            guard parts.count == 2, let address = IPv4Address(parts[0]), let prefix = Int(parts[1]), (1...32).contains(prefix),
                  !address.isUnspecified, !address.isMulticast, !address.isLimitedBroadcast, !address.isLoopback else {
                return .failure(ConfigurationError("NETMP_ADDR", "'\(text)' is not a unicast IPv4 address with a prefix 1-32, e.g. 10.77.0.2/24"))
            }
            guard v4 == nil else {
                return .failure(ConfigurationError("NETMP_ADDR", "'\(addressText)' holds two IPv4 addresses; netmp serves one, beside any IPv6 ones"))
            }
            v4 = (address, prefix)
        }
        guard let (address, prefix) = v4 else {
            return .failure(ConfigurationError("NETMP_ADDR", "'\(addressText)' holds no IPv4 address; give one, e.g. 10.77.0.2/24,fd77::2/64"))
        }
        var config = StackConfiguration(tapName: tap, address: address, prefixLength: prefix)
        config.ipv6Addresses = v6
        if let text = environment("NETMP_GATEWAY"), !text.isEmpty {
            guard let gateway = IPv4Address(text) else {
                return .failure(ConfigurationError("NETMP_GATEWAY", "'\(text)' is not an IPv4 address"))
            }
            let mask = IPv4Address.mask(prefixLength: prefix)
            guard gateway.value & mask == address.value & mask, gateway != address else {
                return .failure(ConfigurationError("NETMP_GATEWAY", "\(gateway) is not another host on \(address)/\(prefix)"))
            }
            config.gateway = gateway
        }
        if let text = environment("NETMP_MAC"), !text.isEmpty {
            guard let mac = MACAddress(text), !mac.isMulticast, mac != .zero else {
                return .failure(ConfigurationError("NETMP_MAC", "'\(text)' is not a unicast MAC address like 02:00:00:00:00:01"))
            }
            config.mac = mac
        }
        if let text = environment("NETMP_CORES"), !text.isEmpty {
            guard let n = Int(text), (1...1024).contains(n) else {
                return .failure(ConfigurationError("NETMP_CORES", "'\(text)' is not a number of cores from 1 to 1024"))
            }
            config.cores = n
        }
        if let text = environment("NETMP_ACCEPT_RA"), !text.isEmpty {
            guard text == "0" || text == "1" else {
                return .failure(ConfigurationError("NETMP_ACCEPT_RA", "'\(text)' is not 0 or 1"))
            }
            config.acceptRouterAdvertisements = text == "1"
        }
        if let text = environment("NETMP_FAKE_NUMA"), !text.isEmpty { config.fakeNUMA = text }
        if let text = environment("NETMP_POLL_SPIN_US"), !text.isEmpty {
            guard let n = Int(text), (0...10_000).contains(n) else {
                return .failure(ConfigurationError("NETMP_POLL_SPIN_US", "'\(text)' is not a number of microseconds from 0 to 10000"))
            }
            config.pollSpinMicroseconds = n
        }
        if let text = environment("NETMP_CAPTURE"), !text.isEmpty { config.capturePath = text }
        if let text = environment("NETMP_CAPTURE_FILTER"), !text.isEmpty {
            do { config.captureFilter = try CaptureFilter(text) } catch {
                return .failure(ConfigurationError("NETMP_CAPTURE_FILTER", "'\(text)': \(error)"))
            }
        }
        if let text = environment("NETMP_CAPTURE_SNAPLEN"), !text.isEmpty {
            guard let n = Int(text), (64...262_144).contains(n) else {
                return .failure(ConfigurationError("NETMP_CAPTURE_SNAPLEN", "'\(text)' is not a number of bytes from 64 to 262144"))
            }
            config.captureSnapLength = n
        }
        if let text = environment("NETMP_LOG"), !text.isEmpty {
            guard let level = LogLevel(name: text) else {
                return .failure(ConfigurationError("NETMP_LOG", "'\(text)' is not one of off, error, info, debug"))
            }
            config.logLevel = level
        }
        return .success(config)
    }

    /// The NETMP_* variables that `parse(environment:)` reads back as this configuration's
    /// interface and logging ("NAME=value" lines): what the stack service tells a client
    /// that attaches, so both sides read one configuration one way.
    public var environmentLines: String {
        let addresses = (["\(address)/\(prefixLength)"] + ipv6Addresses.map(\.description)).joined(separator: ",")
        var lines = ["NETMP_TAP=\(tapName)", "NETMP_ADDR=\(addresses)", "NETMP_MAC=\(mac)",
                     "NETMP_LOG=\(logLevel.name)"]
        if let gateway { lines.append("NETMP_GATEWAY=\(gateway)") }
        if let cores { lines.append("NETMP_CORES=\(cores)") }
        if acceptRouterAdvertisements { lines.append("NETMP_ACCEPT_RA=1") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The link-local address formed from the MAC (RFC 4862 5.3).
    public var linkLocalAddress: IPv6Address { IPv6Address.linkLocal(for: mac) }

    /// Whether `address` is one of the stack's IPv6 addresses (the link-local one included).
    public func holds(_ address: IPv6Address) -> Bool {
        address == linkLocalAddress || ipv6Addresses.contains { $0.address == address }
    }

    /// Whether `destination` is on the link by the stack's own prefixes (or link-scoped).
    public func isOnLink(_ destination: IPv6Address) -> Bool { IPv6InterfaceAddress.isOnLink(destination, by: ipv6Addresses) }

    /// The source address of a connection to `destination`, by `IPv6InterfaceAddress.source`'s
    /// rule over every configured address. A function of the configuration alone, so a
    /// program and the core agree on a connection's 4-tuple, and so its owner, before the
    /// core opens it.
    public func ipv6Source(for destination: IPv6Address) -> IPv6Address? {
        IPv6InterfaceAddress.source(for: destination, linkLocal: linkLocalAddress, globals: ipv6Addresses)
    }

    /// The configuration in `lines` (as `environmentLines` writes them).
    public static func parse(lines: String) -> Result<StackConfiguration?, ConfigurationError> {
        var values: [String: String] = [:]
        for line in lines.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return parse(environment: { values[$0] })
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
