import Glibc
import NetMPTCP

/// The congestion control a new kernel socket in this network namespace would get (the
/// net.ipv4.tcp_congestion_control sysctl), when netmp has that algorithm: a program moved
/// onto netmp keeps what the machine chose for it, as TCP_CONGESTION can still change.
public enum SystemCongestionControl {
    public static let path = "/proc/sys/net/ipv4/tcp_congestion_control"

    /// The sysctl's algorithm, or nil when it cannot be read or netmp lacks it.
    public static func current(path: String = path) -> CongestionAlgorithm? {
        guard let text = procFile(path, limit: 32), !text.isEmpty else { return nil }
        return CongestionAlgorithm(sysctl: text)
    }
}

extension TCPConfiguration {
    /// Defaults, with the namespace's congestion control where netmp has it (else CUBIC).
    public static func forThisSystem() -> TCPConfiguration {
        var configuration = TCPConfiguration()
        if let algorithm = SystemCongestionControl.current() { configuration.congestionControl = algorithm }
        return configuration
    }
}
