import CNetMPLinux
import Glibc
import NetMPClient
import NetMPLink
import NetMPStack
import NetMPSystem
import NetMPWire

/// This process's client of the stack serving its TAP; set once at the first socket
/// (under the shim's pthread_once, before any netmp socket exists), and cleared in a
/// forked child that cannot join (netmp_leave_stack).
nonisolated(unsafe) var processClient: StackClient?
/// The kernel's index of the stack's TAP in this namespace: the scope id (sin6_scope_id)
/// of netmp's link-local addresses, as `ping fe80::1%tap` and if_nametoindex name it.
nonisolated(unsafe) var interfaceIndex: UInt32 = 0

/// Entry point for the shim's first socket. netmp never takes a program down for its own
/// misconfiguration: every failure is one line on stderr and a return.
@_cdecl("netmp_start_from_environment")
public func netmpStartFromEnvironment() -> Int32 {
    guard processClient == nil else { return 0 }
    guard case .success(let configuration?) = environmentConfiguration() else { return 1 }
    // The stack serving this TAP in this network namespace, or one this program starts.
    switch Result(catching: { () throws(AttachError) in try StackClient.attach(door: StackDoor.name(tap: configuration.tapName)) }) {
    case .success(let client):
        attached(client, asking: configuration)
        return 0
    case .failure(.noStack):
        return attachStartingStack(configuration)
    case .failure(let error):
        Log.write("\(notStarted): \(error)")
        return -1
    }
}

/// The program's client from now on. A stack that already served the TAP keeps its own
/// options: where the program asked for others, one line says which apply.
func attached(_ client: StackClient, asking wanted: StackConfiguration) {
    // Before the client is published: the shim reads the scope only of IPv6 sockets.
    interfaceIndex = if_nametoindex(client.configuration.tapName)
    processClient = client
    let running = client.configuration
    var differences: [String] = []
    if running.address != wanted.address || running.prefixLength != wanted.prefixLength {
        differences.append("address \(running.address)/\(running.prefixLength)")
    }
    if running.mac != wanted.mac { differences.append("MAC \(running.mac)") }
    if running.gateway != wanted.gateway { differences.append("gateway \(running.gateway.map { "\($0)" } ?? "none")") }
    if let cores = wanted.cores, cores != running.cores { differences.append("cores \(running.cores.map { "\($0)" } ?? "?")") }
    guard !differences.isEmpty else { return }
    Log.write("netmp: process \(getpid()): the stack already serving \(running.tapName) keeps its own options: "
              + differences.joined(separator: ", "))
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
    let door = StackDoor.name(tap: configuration.tapName)
    let deadline = MonotonicClock.now() + Interval.seconds(10)
    var started = false
    while MonotonicClock.now() < deadline {
        let status = spawnStack(command)
        switch status {
        case 0: started = true
        case StackDoor.alreadyServedStatus: break // another serves (or is stopping): attach, or start again after
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
            attached(client, asking: configuration)
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

/// The program is closing descriptors `first` to `last` (close, dup2 over one,
/// close_range): the library forgets any of its kept copies among them.
@_cdecl("netmp_descriptors_closing")
public func netmpDescriptorsClosing(_ first: UInt32, _ last: UInt32) {
    guard let client = processClient else { return }
    client.descriptorsClosing(first, last)
}

/// The descriptors the library's attachment lives on, sorted, into `out` (at most
/// `capacity`); how many. A program's close_range passes over them.
@_cdecl("netmp_library_descriptors")
public func netmpLibraryDescriptors(_ out: UnsafeMutablePointer<Int32>, _ capacity: Int32) -> Int32 {
    let own = processClient?.ownDescriptors.prefix(Int(max(0, capacity))) ?? []
    for (i, fd) in own.enumerated() { out[i] = fd }
    return Int32(own.count)
}

/// Whether `fd` is one of the library's own descriptors: a program's close of it fails
/// with EBADF and a dup2 or dup3 onto it too, leaving it open. To the program they are as
/// out of reach as the kernel's own state (a `for (fd = 3; fd < limit; fd++) close(fd)`
/// loop would otherwise cut the process off its stack, and every socket with it).
@_cdecl("netmp_is_library_descriptor")
public func netmpIsLibraryDescriptor(_ fd: Int32) -> Int32 {
    guard let client = processClient else { return 0 }
    return client.isOwnDescriptor(fd) ? 1 : 0
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
            Log.write("\(notStarted): \(error)")
            return -1
        }
        guard netmp_interface_index(configuration.tapName) > 0 else {
            Log.write("\(notStarted): \(LinkError.noSuchDevice(configuration.tapName))")
            return -1
        }
        return 0
    }
}

let notStarted = "netmp: not started, using kernel sockets"

func environmentConfiguration() -> Result<StackConfiguration?, ConfigurationError> {
    StackConfiguration.parse(environment: { getenv($0).map { String(cString: $0) } })
}

/// In a forked child that has no process number (its client has 64): the parent's
/// connection is closed and the process leaves the stack; its sockets are the kernel's.
@_cdecl("netmp_leave_stack")
public func netmpLeaveStack() {
    guard let client = processClient else { return }
    client.hangUp()
    processClient = nil
    Log.write("netmp: forked child \(getpid()): its program has 64 processes on netmp already; this one uses kernel sockets")
}
