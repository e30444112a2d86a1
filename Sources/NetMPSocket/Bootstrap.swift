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
