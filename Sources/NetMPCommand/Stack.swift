import CNetMPLinux
import Glibc
import NetMPClient
import NetMPStack
import NetMPStackProcess
import NetMPSystem
import NetMPWire
import Synchronization

/// Set by SIGINT and SIGTERM: the stack service stops at its next turn.
let stopRequested = Atomic<Bool>(false)

let alreadyServed = StackDoor.alreadyServedStatus

/// How long a stack started for a program (`--until-idle`) waits after its last program
/// before it ends: a shell script's next program, a moment later, finds it still there.
let idleGrace = Interval.seconds(1)

/// `netmp stack`: the stack service for one TAP, in the foreground, or detached with
/// `--background` (the command returns once the stack serves: 0, `alreadyServed`, or 1
/// after saying why). `--until-idle`: it ends once no program has been attached for a
/// moment and its connections have delivered everything (libnetmp.so starts stacks so).
func stack(_ arguments: ArraySlice<String>) -> Never {
    takeStandardStreams()
    let background = arguments.contains("--background"), untilIdle = arguments.contains("--until-idle")
    var allowed: Set<uid_t> = []
    let (settings, rest) = stackOptions("stack", arguments.filter { $0 != "--background" && $0 != "--until-idle" }[...]) { flag, value in
        guard flag == "--allow-uid" else { return false }
        guard let uid = uid_t(value) else { fail("stack: --allow-uid takes a numeric uid, not '\(value)'") }
        allowed.insert(uid)
        return true
    }
    guard rest.isEmpty else { fail("stack: unexpected '\(rest.first!)' (see netmp --help)") }
    let configuration = configuration("stack", settings)
    if background {
        // Detached into a background group of the terminal's session: it outlives the
        // terminal (a hangup reaches an orphaned group) and never stops for writing to it
        // (what it says before its streams go quiet, or why it could not start).
        for signal in [SIGHUP, SIGTTOU, SIGTTIN] { _ = Glibc.signal(signal, SIG_IGN) }
    }
    let ready = background ? detach() : nil
    let log = Log(level: configuration.logLevel)
    // The door first: a stack already serving (or starting) here keeps the TAP.
    let door: Int32
    do { door = try StackService.claim(StackDoor.name(tap: configuration.tapName)) } catch {
        if case .door(_, let e) = error, e == EADDRINUSE {
            // Started for a program that raced another to start one: nothing to say, the
            // program attaches to the winner.
            if let ready { report(alreadyServed, on: ready); exit(alreadyServed) }
            fail("stack: \(error)", code: alreadyServed)
        }
        fail("stack: \(error)", code: 1)
    }
    let running: NetworkStack
    do { running = try NetworkStack.start(configuration, log: log) } catch { fail("stack: \(error)", code: 1) }
    for duplicate in running.waitForIPv6Addresses() {
        log.error("\(duplicate) is another node's on this link (duplicate address detection): not used")
    }
    let service: StackService
    do { service = try StackService(stack: running, listener: door, allowing: allowed, log: log) } catch { fail("stack: \(error)", code: 1) }
    if let path = configuration.capturePath {
        let options = CaptureSession.Options(filter: configuration.captureFilter, snapLength: configuration.captureSnapLength)
        do { try service.capture(to: path, options: options) } catch { fail("stack: capture to \(path): \(error)", code: 1) }
    }
    for signal in [SIGINT, SIGTERM] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in stopRequested.store(true, ordering: .relaxed) }
        sigaction(signal, &action, nil) // no SA_RESTART: the door's poll returns at once
    }
    print("netmp stack: serving \(configuration.tapName) at \(configuration.address) on \(running.cores) cores; "
          + "programs attach at @\(service.door)")
    fflush(nil) // every stream: a test reads this line from a pipe
    if let ready {
        report(0, on: ready)
        quietStandardStreams()
    }
    let ending = service.serve(exitIdleAfter: untilIdle ? idleGrace : nil) { stopRequested.load(ordering: .relaxed) }
    let why = switch ending { case .stopped: "signalled"; case .asked: "asked to (netmp down)"; case .idle: "no program left" }
    print("netmp stack: stopping, \(why) (\(service.attached) programs attached, \(service.clientCount) still attached)")
    fflush(nil)
    service.end()
    exit(0)
}

/// `--background`: the command's process waits for the stack (forked, in a process group of
/// its own) to say how its start went and exits with that; the stack goes on. Returns, in
/// the stack, where to say it. Done before any thread starts, so fork is safe.
///
/// A process group, not a session: the terminal's signals (^C, ^Z) go to the foreground
/// group and miss the stack, while the stack stays in the starter's scheduling group (with
/// autogroup, a session is one). In a session of its own a core spinning after work, on the
/// CPU of the program it serves, could not hand that CPU over with sched_yield (a yield
/// stays inside its group): it spun out its budget, slept, and was woken by the program's
/// next request. iperf3 -u through it took three times the context switches and 40% more
/// of the core's CPU than with the core in the program's group.
func detach() -> Int32 {
    _ = netmp_close_from(3) // nothing inherited stays open in a process that may live long
    var ends: [Int32] = [0, 0]
    guard pipe(&ends) == 0 else { fail("stack: pipe: \(String(cString: strerror(errno)))", code: 1) }
    let pid = fork()
    guard pid >= 0 else { fail("stack: fork: \(String(cString: strerror(errno)))", code: 1) }
    if pid > 0 {
        close(ends[1])
        var status: UInt8 = 1
        let n = read(ends[0], &status, 1) // 0 bytes: the stack ended before it could say (it said why)
        exit(n == 1 ? Int32(status) : 1)
    }
    close(ends[0])
    _ = setpgid(0, 0)
    return ends[1]
}

func report(_ status: Int32, on fd: Int32) {
    var byte = UInt8(status)
    _ = write(fd, &byte, 1)
    close(fd)
}

/// Opens /dev/null on each standard stream the starter left closed, before anything else:
/// the door or a TAP queue would otherwise take that number, and the log's dup2 onto it
/// (or a print) would replace or write into it. A program whose stderr was closed or
/// close-on-exec (node's) started such a stack, whose door went at once: every attach
/// failed for 10 s and the program fell back to kernel sockets.
func takeStandardStreams() {
    for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) < 0 {
        _ = open("/dev/null", O_RDWR) // the lowest free number: this one
    }
}

/// A detached stack writes its log to NETMP_STACK_LOG (appended) when set, else nowhere:
/// the program that started it may be reading its stderr through a pipe to the end.
func quietStandardStreams() {
    let path = getenv("NETMP_STACK_LOG").map { String(cString: $0) }
    let log = path.map { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) } ?? -1
    let null = open("/dev/null", O_RDWR | O_CLOEXEC)
    dup2(null, 0)
    dup2(log >= 0 ? log : null, 1)
    dup2(log >= 0 ? log : null, 2)
    if log >= 0 { close(log) }
    close(null)
}

/// `netmp up`: a stack for the TAP, detached, that stays until `netmp down`.
func up(_ arguments: ArraySlice<String>) -> Never {
    let (settings, rest) = stackOptions("up", arguments)
    guard rest.isEmpty else { fail("up: unexpected '\(rest.first!)' (see netmp --help)") }
    let configuration = configuration("up", settings)
    for (variable, value) in settings { setenv(variable, value, 1) }
    let argv = [selfPath(), "stack", "--background"]
    var cArguments = argv.map { strdup($0) } + [nil]
    switch netmp_spawn_stack(argv[0], &cArguments, environ) {
    case 0: print("netmp: a stack serves \(configuration.tapName) (`netmp down --tap \(configuration.tapName)` stops it)")
    case alreadyServed: print("netmp: a stack already serves \(configuration.tapName)")
    default: exit(1) // the stack said why
    }
    exit(0)
}

/// `netmp down --tap T`: asks the stack serving T here to stop, and waits until it has.
func down(_ arguments: ArraySlice<String>) -> Never {
    let (settings, rest) = stackOptions("down", arguments)
    guard rest.isEmpty, let tap = settings["NETMP_TAP"] ?? getenv("NETMP_TAP").map({ String(cString: $0) }) else {
        fail("down: give the TAP: netmp down --tap NAME")
    }
    let door = StackDoor.name(tap: tap)
    switch StackClient.askToStop(door: door) {
    case .failure(.noStack): print("netmp: no stack serves \(tap) here"); exit(0)
    case .failure(let error): fail("down: \(error)", code: 1)
    case .success: break
    }
    // Gone once the door refuses: the stack gives it up last, after the TAP.
    for _ in 0..<500 {
        let fd = netmp_attach_connect(door)
        if fd < 0 { print("netmp: the stack serving \(tap) stopped"); exit(0) }
        close(fd)
        usleep(20_000)
    }
    fail("down: the stack serving \(tap) said it stops but still serves after 10 s", code: 1)
}
