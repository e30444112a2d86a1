// swift-tools-version:6.0
import PackageDescription

// One-way dependencies (docs/ARCHITECTURE.md):
//   NetMPWire <- NetMPTCP <- NetMPChannel <- NetMPStack <- NetMPRuntime <- NetMPSocket
//                                                           NetMPRuntime -> NetMPLink
// Wire and TCP are pure: no I/O, no clock, no threads (PureProtocolTests). The channel's
// rings block application threads on a futex; Stack's host tables use the channel.
// The preloaded library (libnetmp.so) links the Swift runtime statically so it loads
// into any C program without a Swift toolchain on the library path.
let strict: [SwiftSetting] = [.unsafeFlags(["-warnings-as-errors"])]
// The C that runs inside every preloaded program, and the stack's system-call layer.
let warningsAreErrors: CSetting = .unsafeFlags(["-Wall", "-Wextra", "-Werror"])

let package = Package(
    name: "netmp",
    products: [
        .library(name: "netmp", type: .dynamic, targets: ["NetMPShim"]),
        // The binary is installed as `netmp` (Scripts/setup); SwiftPM cannot name two products alike.
        .executable(name: "netmp-cli", targets: ["NetMPCommand"]),
        .executable(name: "netmp-tcp-driver", targets: ["NetMPTCPDriver"]),
        .executable(name: "netmp-bench", targets: ["NetMPBench"]),
    ],
    targets: [
        .systemLibrary(name: "CNuma", path: "Sources/CNuma"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "CNetMPLinux", path: "Sources/CNetMPLinux", cSettings: [warningsAreErrors],
                linkerSettings: [.linkedLibrary("numa")]),
        .target(name: "NetMPWire", swiftSettings: strict),
        .target(name: "NetMPTCP", dependencies: ["NetMPWire"], swiftSettings: strict),
        .target(name: "CNetMPChannel", path: "Sources/CNetMPChannel", cSettings: [warningsAreErrors]),
        // What a program and the stack share: the region, rings, wait words (a futex, hence
        // CNetMPLinux), doorbells, the usrreq records and the handles naming sockets.
        .target(name: "NetMPChannel", dependencies: ["NetMPWire", "NetMPTCP", "CNetMPLinux", "CNetMPChannel"], swiftSettings: strict),
        // Every target above the channel names it, though NetMPStack re-exports it: the build
        // recompiles a target when a module it names changes (a field moved in a channel
        // class must not leave a module reading it at the old offset).
        .target(name: "NetMPStack", dependencies: ["NetMPWire", "NetMPTCP", "NetMPChannel", "CNetMPChannel"], swiftSettings: strict),
        .target(name: "NetMPLink", dependencies: ["NetMPWire", "CNetMPLinux"], swiftSettings: strict),
        .target(name: "NetMPRuntime", dependencies: ["NetMPStack", "NetMPChannel", "NetMPLink", "CNetMPLinux", "CNuma"],
                swiftSettings: strict),
        .target(name: "NetMPSocket", dependencies: ["NetMPRuntime", "NetMPStack", "NetMPChannel", "NetMPLink", "NetMPWire", "CNetMPLinux"], swiftSettings: strict),
        .target(name: "NetMPShim", dependencies: ["NetMPSocket"], path: "Sources/NetMPShim",
                cSettings: [.headerSearchPath("../../Include"), warningsAreErrors],
                linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        .executableTarget(name: "NetMPCommand", dependencies: ["NetMPRuntime", "NetMPStack", "NetMPChannel", "NetMPWire", "CNetMPLinux"],
                          swiftSettings: strict, linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        // Hosts the stack on one thread to exchange data with a kernel peer, for the TCP interop
        // tests until the socket shim lands; not installed.
        // Counts the process's heap allocations for the driver's allocation check.
        .target(name: "CNetMPAllocationCount", path: "Sources/CNetMPAllocationCount"),
        .executableTarget(name: "NetMPTCPDriver", dependencies: ["CZlib", "NetMPRuntime", "NetMPStack", "NetMPChannel", "NetMPTCP", "NetMPLink",
                                                                 "CNetMPAllocationCount"],
                          swiftSettings: strict, linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        // Micro-benchmarks with their C references (Scripts/bench); not installed.
        .target(name: "CNetMPBenchReference", path: "Sources/CNetMPBenchReference"),
        .executableTarget(name: "NetMPBench", dependencies: ["NetMPRuntime", "NetMPStack", "NetMPChannel", "NetMPWire", "CNetMPBenchReference", "CNetMPLinux"],
                          swiftSettings: strict, linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        .target(name: "NetMPTestSupport", dependencies: ["NetMPWire"], path: "Tests/NetMPTestSupport"),
        .testTarget(name: "NetMPWireTests", dependencies: ["NetMPWire", "NetMPTestSupport"]),
        .testTarget(name: "NetMPTCPTests", dependencies: ["NetMPTCP", "NetMPWire", "NetMPTestSupport"]),
        .testTarget(name: "NetMPStackTests", dependencies: ["NetMPStack", "NetMPChannel", "NetMPWire", "NetMPTCP", "NetMPTestSupport", "CNetMPChannel"]),
        .testTarget(name: "NetMPLinkTests", dependencies: ["NetMPLink", "NetMPStack", "NetMPChannel", "NetMPWire", "NetMPTCP", "CNetMPLinux"]),
        .testTarget(name: "NetMPRuntimeTests", dependencies: ["NetMPRuntime", "NetMPStack", "NetMPChannel", "NetMPTCP", "NetMPWire", "NetMPLink", "CNetMPLinux"]),
        .testTarget(name: "IntegrationTests", dependencies: ["NetMPWire", "NetMPStack", "NetMPChannel", "NetMPTCP"]),
    ]
)
