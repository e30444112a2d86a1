import Glibc
import NetMPRuntime
import NetMPStack
import Synchronization

/// Set by SIGINT and SIGTERM: the stack service stops at its next turn.
let stopRequested = Atomic<Bool>(false)

/// `netmp stack`: the stack service for one TAP, in the foreground.
func stack(_ arguments: ArraySlice<String>) -> Never {
    var allowed: Set<uid_t> = []
    let (settings, rest) = stackOptions("stack", arguments) { flag, value in
        guard flag == "--allow-uid" else { return false }
        guard let uid = uid_t(value) else { fail("stack: --allow-uid takes a numeric uid, not '\(value)'") }
        allowed.insert(uid)
        return true
    }
    guard rest.isEmpty else { fail("stack: unexpected '\(rest.first!)' (see netmp --help)") }
    let configuration = configuration("stack", settings)
    let log = Log(level: configuration.logLevel)
    let running: NetworkStack
    do { running = try NetworkStack.start(configuration, log: log) } catch { fail("stack: \(error)", code: 1) }
    let service: StackService
    do { service = try StackService(stack: running, allowing: allowed, log: log) } catch { fail("stack: \(error)", code: 1) }
    for signal in [SIGINT, SIGTERM] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in stopRequested.store(true, ordering: .relaxed) }
        sigaction(signal, &action, nil) // no SA_RESTART: the door's poll returns at once
    }
    print("netmp stack: serving \(configuration.tapName) at \(configuration.address) on \(running.cores) cores; "
          + "programs attach at @\(service.door)")
    fflush(nil) // every stream: a test reads this line from a pipe
    service.serve { stopRequested.load(ordering: .relaxed) }
    print("netmp stack: stopping (\(service.attached) programs attached, \(service.clientCount) still attached)")
    exit(0)
}
