import Glibc

/// The text of a small file of /proc or /sys (at most `limit` bytes), or nil when it cannot
/// be read: what the stack learns of the machine and of a client at attach, never per packet.
public func procFile(_ path: String, limit: Int = 8192) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: limit)
    var count = 0
    while count < limit {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, limit - count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        count += n
    }
    return String(decoding: bytes[0..<count], as: UTF8.self)
}

/// The integer on the first line of a sysctl file (/proc/sys/...), or nil when it cannot be
/// read or is not one.
public func procInteger(_ path: String) -> Int? {
    procFile(path, limit: 32)?.split(separator: "\n").first.flatMap { Int($0) }
}

/// Linux capabilities, by their numbers (linux/capability.h), that the stack and the
/// library ask about.
public enum Capability: Int, Sendable {
    case netBindService = 10, netAdmin = 12, netRaw = 13

    /// Whether process `pid` ("self": this one) holds it among its effective capabilities,
    /// as its /proc status says them now; false when that cannot be read. Read when asked:
    /// a bind or a setsockopt that needs privilege, never per packet.
    public func isEffective(in pid: String = "self") -> Bool {
        guard let status = procFile("/proc/\(pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let effective = UInt64(line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }, radix: 16) else { return false }
        return effective & (1 << UInt64(rawValue)) != 0
    }
}
