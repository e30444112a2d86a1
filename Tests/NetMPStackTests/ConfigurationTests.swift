import NetMPStack
import NetMPWire
import Testing

@Suite struct ConfigurationTests {
    func parse(_ env: [String: String]) -> Result<StackConfiguration?, ConfigurationError> {
        StackConfiguration.parse(environment: { env[$0] })
    }

    @Test func withoutTAP_netmpStaysOff() throws {
        #expect(try parse([:]).get() == nil)
        #expect(try parse(["NETMP_ADDR": "10.77.0.2/24"]).get() == nil)
    }

    @Test func everyVariable_parsed() throws {
        let config = try #require(try parse(["NETMP_TAP": "nmtap-lab", "NETMP_ADDR": "10.77.0.2/24", "NETMP_GATEWAY": "10.77.0.1",
                                             "NETMP_MAC": "02:aa:bb:cc:dd:ee", "NETMP_CORES": "2", "NETMP_LOG": "debug"]).get())
        #expect(config.tapName == "nmtap-lab" && config.address == IPv4Address(10, 77, 0, 2) && config.prefixLength == 24)
        #expect(config.gateway == IPv4Address(10, 77, 0, 1) && config.mac == MACAddress("02:aa:bb:cc:dd:ee"))
        #expect(config.cores == 2 && config.logLevel == .debug)
        #expect(config.capturePath == nil && config.captureFilter == nil)
        let capturing = try #require(try parse(["NETMP_TAP": "t0", "NETMP_ADDR": "10.77.0.2/24", "NETMP_CAPTURE": "/tmp/x.pcapng",
                                                "NETMP_CAPTURE_FILTER": "tcp port 80", "NETMP_CAPTURE_SNAPLEN": "128"]).get())
        #expect(capturing.capturePath == "/tmp/x.pcapng" && capturing.captureFilter?.description == "tcp port 80"
                && capturing.captureSnapLength == 128)
    }

    /// NETMP_ADDR holds one IPv4 address and any IPv6 ones; the stack service hands them to
    /// its clients through `environmentLines`, which parse back the same.
    @Test func ipv6Addresses_parsedBesideIPv4AndPassedOn() throws {
        let config = try #require(try parse(["NETMP_TAP": "t0", "NETMP_ADDR": "fd77::2/64, 10.77.0.2/24,fd78:0:0:1::9/112",
                                             "NETMP_ACCEPT_RA": "1"]).get())
        #expect(config.acceptRouterAdvertisements)
        #expect(config.address == IPv4Address(10, 77, 0, 2))
        #expect(config.ipv6Addresses == [IPv6InterfaceAddress(IPv6Address("fd77::2")!, prefixLength: 64),
                                         IPv6InterfaceAddress(IPv6Address("fd78:0:0:1::9")!, prefixLength: 112)])
        #expect(config.linkLocalAddress == IPv6Address("fe80::aff:fe4d:2"))
        #expect(try StackConfiguration.parse(lines: config.environmentLines).get() == config)
    }

    @Test func defaults_macDerivedFromAddress_logErrors() throws {
        let config = try #require(try parse(["NETMP_TAP": "t0", "NETMP_ADDR": "10.77.0.2/24"]).get())
        #expect(config.mac.description == "02:00:0a:4d:00:02")
        #expect(config.logLevel == .error && config.cores == nil && config.gateway == nil)
    }

    @Test func badValues_namedInTheError() {
        let base = ["NETMP_TAP": "t0", "NETMP_ADDR": "10.77.0.2/24"]
        let cases: [(String, String)] = [
            ("NETMP_TAP", ""), ("NETMP_TAP", "a-name-longer-than-15"), ("NETMP_TAP", "../x"),
            ("NETMP_ADDR", "10.77.0.2"), ("NETMP_ADDR", "10.77.0/24"), ("NETMP_ADDR", "10.77.0.2/33"),
            ("NETMP_ADDR", "10.77.0.2/0"), ("NETMP_ADDR", "224.0.0.1/4"), ("NETMP_ADDR", "127.0.0.2/8"),
            ("NETMP_ADDR", "fd77::2/64"), ("NETMP_ADDR", "10.77.0.2/24,10.77.0.3/24"), ("NETMP_ADDR", "10.77.0.2/24,fd77::2"),
            ("NETMP_ADDR", "10.77.0.2/24,fe80::2/64"), ("NETMP_ADDR", "10.77.0.2/24,ff02::1/64"),
            ("NETMP_ADDR", "10.77.0.2/24,fd77::2/129"), ("NETMP_ADDR", "10.77.0.2/24,::ffff:10.0.0.1/96"),
            ("NETMP_ADDR", "10.77.0.2/24,fd77::2/64,fd77::2/64"), ("NETMP_ADDR", "10.77.0.2/24,"),
            ("NETMP_GATEWAY", "10.78.0.1"), ("NETMP_GATEWAY", "10.77.0.2"), ("NETMP_GATEWAY", "gw"),
            ("NETMP_MAC", "01:00:5e:00:00:01"), ("NETMP_MAC", "00:00:00:00:00:00"), ("NETMP_MAC", "xx"),
            ("NETMP_CORES", "0"), ("NETMP_CORES", "two"), ("NETMP_CORES", "-1"),
            ("NETMP_LOG", "verbose"), ("NETMP_ACCEPT_RA", "yes"),
            ("NETMP_CAPTURE_FILTER", "port http"), ("NETMP_CAPTURE_SNAPLEN", "10"), ("NETMP_CAPTURE_SNAPLEN", "1M"),
        ]
        for (variable, value) in cases {
            var env = base
            env[variable] = value
            guard case .failure(let error) = parse(env) else { Issue.record("\(variable)=\(value) accepted"); continue }
            #expect(error.variable == variable)
            #expect(error.description.hasPrefix(variable + ": "))
        }
        guard case .failure(let missing) = parse(["NETMP_TAP": "t0"]) else { Issue.record("missing address accepted"); return }
        #expect(missing.variable == "NETMP_ADDR")
    }
}

@Suite struct RoutingTableTests {
    @Test func onLink_direct_offLink_viaGateway_longestPrefixWins() {
        var table = RoutingTable(interface: IPv4Address(10, 77, 0, 2), prefixLength: 24, gateway: IPv4Address(10, 77, 0, 1))
        #expect(table.nextHop(for: IPv4Address(10, 77, 0, 9)) == IPv4Address(10, 77, 0, 9))
        #expect(table.nextHop(for: IPv4Address(8, 8, 8, 8)) == IPv4Address(10, 77, 0, 1))
        table.add(Route(destination: IPv4Address(10, 99, 0, 0), prefixLength: 16, gateway: IPv4Address(10, 77, 0, 254)))
        #expect(table.nextHop(for: IPv4Address(10, 99, 3, 4)) == IPv4Address(10, 77, 0, 254))
        let isolated = RoutingTable(interface: IPv4Address(10, 77, 0, 2), prefixLength: 24, gateway: nil)
        #expect(isolated.nextHop(for: IPv4Address(8, 8, 8, 8)) == nil)
    }
}
