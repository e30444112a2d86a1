import Foundation

/// Runs commands for integration tests and captures what they print.
enum Shell {
    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// Runs `arguments` to completion, killing it after `timeout` seconds. Output goes
    /// through files, so a chatty command can never stall on a full pipe.
    @discardableResult
    static func run(_ arguments: [String], timeout: TimeInterval = 60) -> Output {
        let base = NSTemporaryDirectory() + "/netmp-shell-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: base + ".out"); try? FileManager.default.removeItem(atPath: base + ".err") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        do {
            for suffix in [".out", ".err"] { _ = FileManager.default.createFile(atPath: base + suffix, contents: nil) }
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
            process.standardInput = FileHandle.nullDevice
            try process.run()
        } catch { return Output(status: -1, stdout: "", stderr: "\(error)") }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { kill(process.processIdentifier, SIGKILL); break }
            usleep(5_000)
        }
        process.waitUntilExit()
        let read = { (suffix: String) in (try? String(contentsOfFile: base + suffix, encoding: .utf8)) ?? "" }
        return Output(status: process.terminationStatus, stdout: read(".out"), stderr: read(".err"))
    }

    /// Starts a long-running command; the caller terminates it.
    static func start(_ arguments: [String], stderrTo path: String, stdoutTo outPath: String? = nil) throws -> Process {
        // createFile replaces what is at the path by renaming a new file over it: a device
        // (/dev/null) would become a regular file, for every program on the machine.
        precondition(!path.hasPrefix("/dev/") && outPath?.hasPrefix("/dev/") != true, "Shell.start writes to files, not \(path)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        if let outPath {
            _ = FileManager.default.createFile(atPath: outPath, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        try process.run()
        return process
    }
}

/// Where the package lives and where its built products are.
enum Package {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    /// Scripts/test exports NETMP_BIN_DIR; otherwise the release products, then debug.
    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["NETMP_BIN_DIR"] { return dir }
        let release = root + "/.build/release"
        return FileManager.default.fileExists(atPath: release + "/libnetmp.so") ? release : root + "/.build/debug"
    }()
    static var netmp: String { binDirectory + "/netmp-cli" }
    static var lab: String { root + "/Scripts/lab" }
}

/// Why an integration test cannot run here, or nil when it can: it needs root (for network
/// namespaces and TAP devices), /dev/net/tun, and the commands it drives.
func labUnavailableReason(commands: [String] = ["ip", "ping"]) -> String? {
    if getuid() != 0 { return "needs root (CAP_NET_ADMIN) for network namespaces and TAP devices" }
    if !FileManager.default.fileExists(atPath: "/dev/net/tun") { return "no /dev/net/tun in this machine" }
    for command in commands where Shell.run(["which", command]).status != 0 {
        return "needs the '\(command)' command (Scripts/setup installs it)"
    }
    if !FileManager.default.fileExists(atPath: Package.netmp) { return "no built netmp at \(Package.netmp): run Scripts/setup" }
    return nil
}

/// A lab namespace with a unique name, removed when the test ends however it ends.
final class LabNamespace {
    let name: String
    let tap: String
    private static let counter = NSLock()
    nonisolated(unsafe) private static var next = 0

    init(addr: String = "10.77.0.1/24", addr6: String? = nil) throws {
        LabNamespace.counter.lock()
        LabNamespace.next += 1
        let n = LabNamespace.next
        LabNamespace.counter.unlock()
        name = "nmit-\(getpid())-\(n)"
        let up = Shell.run([Package.lab, "up", name, "--addr", addr] + (addr6.map { ["--addr6", $0] } ?? []))
        guard up.status == 0 else {
            _ = Shell.run([Package.lab, "down", name])
            throw LabError.setupFailed(up.stderr)
        }
        tap = up.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit {
        // Verify the namespace is gone; a busy machine has been seen to leave one behind.
        for _ in 0..<3 {
            _ = Shell.run([Package.lab, "down", name])
            if !Shell.run(["ip", "netns", "list"]).stdout.contains(name) { return }
            usleep(200_000)
        }
        FileHandle.standardError.write(Data("lab namespace \(name) could not be removed\n".utf8))
    }

    /// Runs a command inside the namespace.
    @discardableResult
    func run(_ arguments: [String], timeout: TimeInterval = 60) -> Shell.Output {
        Shell.run(["ip", "netns", "exec", name] + arguments, timeout: timeout)
    }
}

enum LabError: Error { case setupFailed(String), netmpDidNotStart(String) }

/// Waits until the file at `path` contains `text` (a server saying it listens), at most
/// `seconds`: a fixed sleep loses the race on a loaded machine.
func waitFor(_ text: String, in path: String, seconds: Double = 15) {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if let content = try? String(contentsOfFile: path, encoding: .utf8), content.contains(text) { return }
        usleep(20_000)
    }
}
