import Glibc
import NetMPChannel
import NetMPStackProcess
import NetMPSystem
import NetMPWire
import Synchronization

/// Set by SIGINT and SIGTERM: the capture ends, and its summary is printed.
let captureInterrupted = Atomic<Bool>(false)

/// `netmp capture`: asks the stack serving a TAP to write every frame it sends and
/// receives to a pcapng file (or stdout, for `tshark -i -`), as tcpdump does on a kernel
/// interface, until interrupted or a limit; then prints what was captured, on stderr.
func capture(_ arguments: ArraySlice<String>) -> Never {
    var tap = getenv("NETMP_TAP").map { String(cString: $0) }
    var path: String?
    var options = CaptureSession.Options()
    var seconds: Double?
    var rest = arguments
    func value(_ flag: String) -> String {
        rest = rest.dropFirst()
        guard let v = rest.first else { fail("capture: \(flag) needs a value") }
        return v
    }
    func number(_ flag: String, _ text: String, _ range: ClosedRange<UInt64>) -> UInt64 {
        guard let n = UInt64(text), range.contains(n) else { fail("capture: \(flag) takes a number from \(range.lowerBound) to \(range.upperBound), not '\(text)'") }
        return n
    }
    var filterWords: [String] = []
    while let first = rest.first {
        switch first {
        case "--tap", "-i": tap = value(first)
        case "-w", "--write": path = value(first)
        case "-s", "--snaplen": options.snapLength = Int(number(first, value(first), 64...262_144))
        case "-c", "--count": options.packetLimit = number(first, value(first), 1...UInt64(Int64.max))
        case "--limit": options.byteLimit = number(first, value(first), 1...UInt64(Int64.max))
        case "--seconds":
            guard let s = Double(value(first)), s > 0 else { fail("capture: --seconds takes a positive number") }
            seconds = s
        default:
            if first.hasPrefix("-") && filterWords.isEmpty { fail("capture: unknown option '\(first)' (see netmp --help)") }
            filterWords.append(first)
        }
        rest = rest.dropFirst()
    }
    guard let tap else { fail("capture: give the TAP: netmp capture --tap NAME -w FILE [FILTER]") }
    guard let path else { fail("capture: give the file: -w FILE (or -w - for stdout)") }
    if !filterWords.isEmpty {
        do { options.filter = try CaptureFilter(filterWords.joined(separator: " ")) } catch { fail("capture: filter: \(error)") }
    }
    let output = path == "-" ? dup(1) : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard output >= 0 else { fail("capture: \(path): \(String(cString: strerror(errno)))", code: 1) }
    let connection: Int32
    switch CaptureRequest.send(door: StackDoor.name(tap: tap), output: output, options: options) {
    case .success(let fd): connection = fd
    case .failure(.noStack): fail("capture: no netmp stack serves \(tap) here", code: 1)
    case .failure(.refused(let e)) where e == EBUSY: fail("capture: the stack serving \(tap) is already capturing", code: 1)
    case .failure(.refused(let e)) where e == EACCES: fail("capture: the stack serving \(tap) captures only for its own user and root", code: 1)
    case .failure(let error): fail("capture: \(error)", code: 1)
    }
    close(output) // the stack holds its copy
    for signal in [SIGINT, SIGTERM] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in captureInterrupted.store(true, ordering: .relaxed) }
        sigaction(signal, &action, nil) // no SA_RESTART: the poll below returns at once
    }
    Log.write("netmp capture: \(path == "-" ? "stdout" : path) from the stack serving \(tap)"
              + (options.filter.map { ", filter '\($0)'" } ?? "") + "; Ctrl-C stops")
    let deadline = seconds.map { MonotonicClock.now() + Interval(nanoseconds: UInt64($0 * 1e9)) }
    var watched = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
    // Until the stack ends it (a limit: its summary is waiting) or this side does.
    while !captureInterrupted.load(ordering: .relaxed) && (deadline.map { MonotonicClock.now() < $0 } ?? true) {
        if poll(&watched, 1, 100) > 0 { break }
    }
    shutdown(connection, Int32(SHUT_WR))
    guard let summary = CaptureRequest.summary(connection) else { fail("capture: the stack ended before the capture's summary", code: 1) }
    Log.write("netmp capture: \(summary.written) packets captured, \(summary.dropped) dropped (capture ring full)"
              + (summary.limitReached ? "; limit reached" : "")
              + (summary.writeError != 0 ? "; writing stopped: \(String(cString: strerror(summary.writeError)))" : ""))
    exit(summary.writeError != 0 && summary.writeError != EPIPE ? 1 : 0)
}
