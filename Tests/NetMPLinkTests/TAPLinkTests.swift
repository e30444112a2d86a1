import CNetMPLinux
import Foundation
import Glibc
import NetMPLink
import NetMPStack
import NetMPWire
import Testing

/// Runs a command and returns (status, output).
@discardableResult
func sh(_ arguments: [String]) -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

func tapUnavailable() -> String? {
    if getuid() != 0 { return "needs root (CAP_NET_ADMIN) for network namespaces and TAP devices" }
    if access("/dev/net/tun", R_OK | W_OK) != 0 { return "no /dev/net/tun in this machine" }
    for command in ["ip", "ping", "ethtool"] where sh(["which", command]).0 != 0 { return "needs '\(command)' (Scripts/setup installs it)" }
    return nil
}

/// A namespace holding a persistent multiqueue TAP, made and removed by the test.
final class TestNamespace {
    let name: String
    let tap = "nmlink0"
    init() throws {
        name = "nmlt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        for command in [["ip", "netns", "add", name], ["ip", "-n", name, "tuntap", "add", "dev", tap, "mode", "tap", "multi_queue"],
                        ["ip", "-n", name, "addr", "add", "10.78.0.1/24", "dev", tap], ["ip", "-n", name, "link", "set", tap, "up"]] {
            let (status, output) = sh(command)
            if status != 0 { sh(["ip", "netns", "del", name]); throw TestError.setup("\(command): \(output)") }
        }
    }
    deinit { sh(["ip", "netns", "del", name]) }

    /// Runs `body` on this thread with the thread inside the namespace (setns changes only
    /// the calling thread), then puts the thread back.
    func inside<T>(_ body: () throws -> T) throws -> T {
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        let target = open("/var/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        defer { close(original); close(target) }
        guard original >= 0, target >= 0, netmp_enter_network_namespace(target) == 0 else { throw TestError.setup("setns: errno \(errno)") }
        defer { precondition(netmp_enter_network_namespace(original) == 0, "could not return to the original namespace") }
        return try body()
    }

    func offloadFeature(_ name: String) -> String {
        let (_, out) = sh(["ip", "netns", "exec", self.name, "ethtool", "-k", tap])
        return out.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map(String.init) ?? "?"
    }
}

enum TestError: Error { case setup(String) }

struct QueueSink: FrameSink {
    let queue: TAPQueue
    mutating func transmit(_ frame: UnsafeRawBufferPointer) { try? queue.transmit(frame) }
}

@Suite(.serialized, .enabled(if: tapUnavailable() == nil, Comment(rawValue: tapUnavailable() ?? "")))
struct TAPLinkTests {
    /// Frames cross a real TAP both ways: the kernel pings a host driven straight off the
    /// queue (no runtime thread), and gets every reply.
    @Test func kernelPing_throughTAPQueue_isAnswered() throws {
        let ns = try TestNamespace()
        let device = try ns.inside { try TAPDevice(name: ns.tap, queueCount: 1) }
        let queue = device.queues[0]
        #expect(queue.virtioHeader && queue.headroom == VirtioNetHeader.length)
        let host = Host(configuration: StackConfiguration(tapName: ns.tap, address: IPv4Address(10, 78, 0, 2), prefixLength: 24))
        let ping = Process()
        ping.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        ping.arguments = ["ip", "netns", "exec", ns.name, "ping", "-c", "5", "-i", "0.05", "-W", "2", "10.78.0.2"]
        let output = Pipe()
        ping.standardOutput = output
        try ping.run()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_600, alignment: 16)
        defer { buffer.deallocate() }
        var sink = QueueSink(queue: queue)
        var headers: [VirtioNetHeader] = []
        let deadline = Date().addingTimeInterval(10)
        while ping.isRunning && Date() < deadline {
            var poller = pollfd(fd: queue.fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, 20)
            while let (header, frame) = try queue.receive(into: buffer) {
                headers.append(header)
                host.receive(frame: frame, now: Instant(nanoseconds: UInt64(Date().timeIntervalSince1970 * 1e9)), sink: &sink)
            }
        }
        ping.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("5 received"), "\(text)")
        // With offloads reset, the kernel hands over plain frames with full checksums.
        #expect(headers.allSatisfy { $0.gsoType == .none })
        #expect(host.counters.framesOut >= 6) // the ARP reply and five echo replies
    }

    /// A persistent TAP keeps the offloads of its last user; attaching resets them.
    @Test func attach_resetsOffloadsLeftByPreviousUser() throws {
        let ns = try TestNamespace()
        do {
            _ = try ns.inside { try TAPDevice(name: ns.tap, offloads: [.checksum, .tso4]) }
            #expect(ns.offloadFeature("tcp-segmentation-offload").hasSuffix(": on"))
        }
        _ = try ns.inside { try TAPDevice(name: ns.tap) }
        #expect(ns.offloadFeature("tcp-segmentation-offload").hasSuffix(": off"))
        #expect(ns.offloadFeature("tx-checksumming").hasSuffix(": off"))
    }

    /// One fd per queue on a multiqueue TAP; a missing device is an error, not a new device.
    @Test func multiqueue_oneDescriptorPerQueue_missingDeviceRefused() throws {
        let ns = try TestNamespace()
        let device = try ns.inside { try TAPDevice(name: ns.tap, queueCount: 2) }
        #expect(device.queues.count == 2 && device.queues[0].fd != device.queues[1].fd)
        let mac = MACAddress(value: 0x0200_0000_4242)
        try ns.inside { try device.setKernelMAC(mac) }
        #expect(try ns.inside { try device.kernelMAC() } == mac)
        #expect(throws: LinkError.noSuchDevice("nmnothere0")) { try ns.inside { try TAPDevice(name: "nmnothere0") } }
    }
}
