import CNetMPLinux
import Glibc
import NetMPLink
import NetMPRuntime
import NetMPStack
import NetMPWire

/// The stack of this process, when it runs one of its own; set once at the first socket
/// (under the shim's pthread_once, before any netmp socket exists) or in a forked child.
nonisolated(unsafe) var processStack: NetworkStack?

/// What this process's sockets are made on: the stack service's client when a stack
/// serves the TAP here (the process attached to it), else the primary client of the
/// process's own stack. Set with `processStack`, under the same once.
nonisolated(unsafe) var processClient: StackClient?

/// Entry point for the shim's first socket. netmp never takes a program down for its own
/// misconfiguration: every failure is one line on stderr and a return.
@_cdecl("netmp_start_from_environment")
public func netmpStartFromEnvironment() -> Int32 {
    guard processClient == nil else { return 0 }
    guard case .success(let configuration?) = environmentConfiguration() else { return 1 }
    // A stack service for this TAP in this network namespace: attach to it.
    switch Result(catching: { () throws(AttachError) in try StackClient.attach(door: StackClient.door(tap: configuration.tapName)) }) {
    case .success(let client):
        processClient = client
        return 0
    case .failure(.noStack):
        return attachStartingStack(configuration)
    case .failure(let error):
        Log.write("\(notStarted): \(error)")
        return -1
    }
}

/// No stack serves the TAP here: this program starts one (`netmp-cli stack --background
/// --until-idle`, which ends after its last program) and attaches to it. Another program
/// may be starting one at the same moment, or one may be stopping: the door settles it
/// (StackService.claim), and this tries again for a while.
func attachStartingStack(_ configuration: StackConfiguration) -> Int32 {
    guard let command = stackCommand() else {
        Log.write("\(notStarted): cannot find netmp-cli beside libnetmp.so to start a stack (set NETMP_COMMAND)")
        return -1
    }
    let door = StackClient.door(tap: configuration.tapName)
    let deadline = MonotonicClock.now() + Interval.seconds(10)
    var started = false
    while MonotonicClock.now() < deadline {
        let status = spawnStack(command)
        switch status {
        case 0: started = true
        case 3: break // another stack serves (or is stopping): attach to it, or start again after
        case -ECHILD: break // the program reaped the starter (a SIGCHLD handler): the door tells
        case ..<0:
            Log.write("\(notStarted): cannot run \(command): \(String(cString: strerror(-status)))")
            return -1
        default:
            Log.write("\(notStarted): the netmp stack for \(configuration.tapName) did not start (see above)")
            return -1
        }
        switch Result(catching: { () throws(AttachError) in try StackClient.attach(door: door) }) {
        case .success(let client):
            processClient = client
            if started { Log(level: configuration.logLevel).info("process \(getpid()) started the stack serving \(configuration.tapName)") }
            return 0
        case .failure(.noStack):
            usleep(20_000)
        case .failure(let error):
            Log.write("\(notStarted): \(error)")
            return -1
        }
    }
    Log.write("\(notStarted): no netmp stack came to serve \(configuration.tapName) within 10 s")
    return -1
}

/// netmp-cli: NETMP_COMMAND, else beside this library (where the build and Scripts/setup
/// put both).
func stackCommand() -> String? {
    if let explicit = getenv("NETMP_COMMAND") { return String(cString: explicit) }
    guard let name = netmp_object_path(#dsohandle) else { return nil }
    let library = String(cString: name)
    guard let slash = library.lastIndex(of: "/") else { return nil }
    let path = String(library[..<slash]) + "/netmp-cli"
    return access(path, X_OK) == 0 ? path : nil
}

/// Runs `command stack --background --until-idle` with this program's environment, less
/// LD_PRELOAD (the stack is not a preloaded program); its exit status or -errno.
func spawnStack(_ command: String) -> Int32 {
    var environment: [UnsafeMutablePointer<CChar>?] = []
    var entry = environ
    while let variable = entry.pointee {
        if strncmp(variable, "LD_PRELOAD=", 11) != 0 { environment.append(variable) }
        entry += 1
    }
    environment.append(nil)
    let words: [String] = [command, "stack", "--background", "--until-idle"]
    let arguments = words.map { strdup($0) }
    defer { arguments.forEach { free($0) } }
    var argv = arguments + [nil]
    return netmp_spawn_stack(command, &argv, &environment)
}

/// This process's connection to the stack service, or -1 (the shim's watcher waits on it).
@_cdecl("netmp_stack_connection")
public func netmpStackConnection() -> Int32 { processClient?.connection ?? -1 }

/// The stack service's process ended (the shim's watcher saw the connection hang up):
/// every socket fails and every waiter wakes (StackClient.stackEnded).
@_cdecl("netmp_stack_ended")
public func netmpStackEnded() {
    guard let client = processClient, !client.stackGone else { return }
    Log.write("netmp: process \(getpid()): the netmp stack serving \(client.configuration.tapName) is gone; "
              + "its connections are reset and new ones fail (ENETDOWN)")
    client.stackEnded()
}

/// 1 when this process's sockets are a stack service's (it attached), 0 otherwise.
@_cdecl("netmp_attached")
public func netmpAttached() -> Int32 { processClient?.isAttached == true ? 1 : 0 }

/// At load (the shim's constructor), before the stack starts at the first socket: a bad
/// value, a fake NUMA map that does not fit, or a TAP that is not there is said now, once
/// per preloaded process, on stderr, whether or not the program ever opens a socket; the
/// program then stays on kernel sockets. 0: start at the first socket; 1: not configured
/// (no NETMP_TAP); -1: said why.
@_cdecl("netmp_check_environment")
public func netmpCheckEnvironment() -> Int32 {
    switch environmentConfiguration() {
    case .success(nil): return 1
    case .failure(let error):
        Log.write("\(notStarted): \(error)")
        return -1
    case .success(let configuration?):
        // The checks NetworkStack.start makes first, in its order, without attaching.
        if case .failure(let error) = NUMATopology.system(fake: configuration.fakeNUMA) {
            Log.write("\(notStarted): \(RuntimeError.numa(error))")
            return -1
        }
        guard netmp_interface_index(configuration.tapName) > 0 else {
            Log.write("\(notStarted): \(RuntimeError.link(.noSuchDevice(configuration.tapName)))")
            return -1
        }
        return 0
    }
}

let notStarted = "netmp: not started, using kernel sockets"

func environmentConfiguration() -> Result<StackConfiguration?, ConfigurationError> {
    StackConfiguration.parse(environment: { getenv($0).map { String(cString: $0) } })
}

/// Starts this process's stack, on `device`'s queues (attached first) when given; 0, or -1
/// after one line on stderr that begins with `failing`.
func startStack(_ configuration: StackConfiguration, on device: TAPDevice? = nil, failing: String) -> Int32 {
    let log = Log(level: configuration.logLevel)
    do {
        if let device {
            do { try device.setQueuesEnabled(true) } catch { throw RuntimeError.link(error) }
            processStack = try NetworkStack.start(configuration, queues: device.queues, device: device, log: log)
        } else {
            processStack = try NetworkStack.start(configuration, log: log)
        }
        processClient = processStack?.primary
        return 0
    } catch {
        Log.write("\(failing): \(error)")
        return -1
    }
}

/// The program is exiting (the shim's atexit handler, after the program's own): closes the
/// socket of one descriptor like close() does, but keeps the handle alive, since another
/// thread may still be inside a call on it while the process winds down.
@_cdecl("netmp_socket_close_at_exit")
public func netmpSocketCloseAtExit(_ handle: UnsafeMutableRawPointer) {
    _ = Unmanaged<ShimSocket>.fromOpaque(handle).retain()
    netmpSocketClose(handle)
}

/// After every socket is closed at exit: waits (NETMP_EXIT_LINGER_MS at most) until the
/// peers have acknowledged everything, then returns and the process may end.
@_cdecl("netmp_finish_at_exit")
public func netmpFinishAtExit() {
    guard let stack = processStack else { return }
    if !stack.finishSending(within: stack.configuration.exitLingerMilliseconds) {
        Log.write("netmp: exit: some connections had not delivered everything after "
                  + "\(stack.configuration.exitLingerMilliseconds) ms (NETMP_EXIT_LINGER_MS)")
    }
}

/// Writes the stack's own descriptors into `out` (at most `capacity`); returns how many.
/// Called once after start, so that a forked child can close them without Swift.
@_cdecl("netmp_stack_descriptors")
public func netmpStackDescriptors(_ out: UnsafeMutablePointer<Int32>, _ capacity: Int32) -> Int32 {
    guard let stack = processStack else { return 0 }
    let all = stack.ownDescriptors.prefix(Int(capacity))
    for (i, fd) in all.enumerated() { out[i] = fd }
    return Int32(all.count)
}

/// The TAP queues among those descriptors (a child that takes the parent's listeners over
/// detaches them from the device).
@_cdecl("netmp_stack_queues")
public func netmpStackQueues(_ out: UnsafeMutablePointer<Int32>, _ capacity: Int32) -> Int32 {
    guard let queues = processStack?.device?.queues else { return 0 }
    for (i, queue) in queues.prefix(Int(capacity)).enumerated() { out[i] = queue.fd }
    return Int32(min(queues.count, Int(capacity)))
}

/// The parent's stack, in a forked child: kept (never deinitialized: nothing here may
/// touch its threads) for its configuration and its sockets' settings.
nonisolated(unsafe) var parentStack: NetworkStack?

/// In a forked child: the stack's threads stayed in the parent, so this process has none.
/// netmp counts as not running until a restart.
@_cdecl("netmp_forget_stack")
public func netmpForgetStack() {
    if let stack = processStack { parentStack = stack }
    processStack = nil
    processClient = nil
}

/// In a forked child of a process that only listens (a master): queues of its own, opened
/// now while the child still has the parent's privileges (nginx's workers drop root before
/// they use a socket, and opening a TAP queue needs CAP_NET_ADMIN), and detached at once so
/// that the device steers nothing to them before the child takes the listeners over.
nonisolated(unsafe) var childDevice: TAPDevice?

@_cdecl("netmp_open_child_queues")
public func netmpOpenChildQueues() -> Int32 {
    guard let parent = processStack ?? parentStack, let name = parent.device?.name else { return -ENODEV }
    do {
        let device = try TAPDevice(name: name, queueCount: parent.cores)
        // Attaching reset the device's offloads, which the parent still relies on: the same
        // negotiation gives them back at once.
        device.negotiateOffloads()
        try device.setQueuesEnabled(false)
        childDevice = device
        return 0
    } catch {
        Log.write("netmp: forked child \(getpid()): cannot open TAP queues of its own: \(error)")
        return -1
    }
}

/// The parent's TAP queues, in a forked child: detached from the device when the child has
/// taken the parent's listeners over (`detach`), and closed either way. A child that kept
/// them open would keep them attached after the parent is gone, with nobody reading.
@_cdecl("netmp_release_parent_queues")
public func netmpReleaseParentQueues(_ detach: Int32) {
    guard let queues = parentStack?.device?.queues else { return }
    for queue in queues {
        if detach != 0 { _ = netmp_tap_set_queue_enabled(queue.fd, 0) } // EINVAL: a sibling did it
        _ = close(queue.fd)
    }
}

/// The child's own queues, when it closed the inherited listeners without using them.
@_cdecl("netmp_release_child_queues")
public func netmpReleaseChildQueues() { childDevice = nil }

/// In a forked child: starts a stack of its own on the parent's TAP, with the parent's
/// configuration (the program may have emptied its environment since: nginx's workers do),
/// on the queues opened at fork when there are some. 0 on success, -1 after a line on stderr.
@_cdecl("netmp_start_like_parent")
public func netmpStartLikeParent() -> Int32 {
    guard processStack == nil else { return 0 }
    guard let configuration = parentStack?.configuration else { return netmpStartFromEnvironment() }
    let device = childDevice
    childDevice = nil
    return startStack(configuration, on: device,
                      failing: "netmp: forked child \(getpid()): no stack of its own, using kernel sockets")
}

/// 1 when the socket listens (a forked child may take it over, see netmp_listen_again).
@_cdecl("netmp_is_listener")
public func netmpIsListener(_ handle: UnsafeMutableRawPointer) -> Int32 {
    guard case .stream(let s) = socket(handle).kind else { return 0 }
    return s.isListening ? 1 : 0
}

/// In a forked child with its own stack: the inherited listener `handle` listens again on
/// this stack, its events on `fd`. The new handle, or nil with `*error` set.
@_cdecl("netmp_listen_again")
public func netmpListenAgain(_ handle: UnsafeMutableRawPointer, _ fd: Int32,
                             _ errorNumber: UnsafeMutablePointer<Int32>) -> UnsafeMutableRawPointer? {
    let inherited = socket(handle)
    guard let stack = processStack, case .stream(let old) = inherited.kind else { errorNumber.pointee = EINVAL; return nil }
    do {
        guard let copy = try old.listenAgain(on: stack, descriptor: fd) else { errorNumber.pointee = EINVAL; return nil }
        let shim = ShimSocket(.stream(copy))
        shim.setOptions = inherited.setOptions
        // The kernel twin (a descriptor this process inherited) goes with the listener, so
        // the child accepts loopback connections too, as it accepts netmp's.
        shim.twin.store(inherited.twin.exchange(-1, ordering: .acquiringAndReleasing), ordering: .releasing)
        return Unmanaged.passRetained(shim).toOpaque()
    } catch {
        errorNumber.pointee = error.errno
        return nil
    }
}

/// The gate of the fork under way (set by the prepare handler, opened by the parent's).
nonisolated(unsafe) var forkGate: ParkGate?

/// pthread_atfork prepare: parks the protocol threads where they hold no lock.
@_cdecl("netmp_park_for_fork")
public func netmpParkForFork() {
    guard let stack = processStack else { return }
    forkGate = stack.parkForFork()
}

/// pthread_atfork parent: the fork is done; the protocol threads go on.
@_cdecl("netmp_unpark_after_fork")
public func netmpUnparkAfterFork() {
    forkGate?.release()
    forkGate = nil
}

/// After fork, in a parent without netmp sockets (NetworkStack.stepAside).
@_cdecl("netmp_step_aside")
public func netmpStepAside() {
    guard let stack = processStack, stack.stepAside() else { return }
    Log(level: stack.configuration.logLevel).info("process \(getpid()) forked with nothing on netmp: its TAP queues are detached until its next socket()")
}

/// socket(): a process that stepped aside attaches its queues again.
@_cdecl("netmp_step_back")
public func netmpStepBack() { processStack?.stepBack() }
