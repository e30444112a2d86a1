import Glibc
import NetMPRuntime
import NetMPStack

/// The stack of this process, set once by the library constructor before `main` runs and
/// never changed after: no other thread exists yet when it is written.
nonisolated(unsafe) var processStack: NetworkStack?

/// Entry point for the shim's constructor (Include/netmp.h). netmp never takes a program
/// down for its own misconfiguration: every failure is one line on stderr and a return.
@_cdecl("netmp_start_from_environment")
public func netmpStartFromEnvironment() -> Int32 {
    guard processStack == nil else { return 0 }
    let configuration: StackConfiguration
    switch StackConfiguration.parse(environment: { getenv($0).map { String(cString: $0) } }) {
    case .success(nil): return 1
    case .success(let c?): configuration = c
    case .failure(let error):
        Log.write("netmp: not started, using kernel sockets: \(error)")
        return -1
    }
    let log = Log(level: configuration.logLevel)
    do {
        processStack = try NetworkStack.start(configuration, log: log)
        return 0
    } catch {
        Log.write("netmp: not started, using kernel sockets: \(error)")
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

/// In a forked child: the stack's threads stayed in the parent, so this process has none.
/// The old stack is left as it is (never deinitialized: nothing here may touch its
/// threads), and netmp counts as not running until a restart.
@_cdecl("netmp_forget_stack")
public func netmpForgetStack() {
    if let stack = processStack { _ = Unmanaged.passRetained(stack) }
    processStack = nil
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
