import Glibc
import NetMPStack

/// Lines on stderr prefixed "netmp:", written with one write(2) each so that they do not
/// interleave with the program's own output and never touch its stdio buffers.
public struct Log: Sendable {
    public var level: LogLevel
    public init(level: LogLevel) { self.level = level }

    public func error(_ message: @autoclosure () -> String) { emit(.error, message) }
    public func info(_ message: @autoclosure () -> String) { emit(.info, message) }
    public func debug(_ message: @autoclosure () -> String) { emit(.debug, message) }

    func emit(_ at: LogLevel, _ message: () -> String) {
        guard at <= level, level != .off else { return }
        Log.write("netmp: " + message())
    }

    /// Writes one line regardless of level: for the one line that says netmp is not running.
    public static func write(_ line: String) {
        var text = line
        text.append("\n")
        text.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }
}
