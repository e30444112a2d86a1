// swift-tools-version:6.0
import PackageDescription

// One-way dependencies (docs/ARCHITECTURE.md):
//   NetMPWire <- NetMPTCP <- NetMPChannel <- NetMPStack <- NetMPSystem <- NetMPClient <- NetMPSocket <- NetMPShim
//                                                                      <- NetMPStackProcess -> NetMPLink
// The client and the stack process never import each other: they meet in the channel.
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
        .target(name: "NetMPChannel", dependencies: ["NetMPWire", "NetMPTCP", "CNetMPChannel"], swiftSettings: strict),
        // Every target above the channel names it, though NetMPStack re-exports it: the build
        // recompiles a target when a module it names changes (a field moved in a channel
        // class must not leave a module reading it at the old offset).
        .target(name: "NetMPStack", dependencies: ["NetMPWire", "NetMPTCP", "NetMPChannel", "CNetMPChannel"], swiftSettings: strict),
        .target(name: "NetMPLink", dependencies: ["NetMPWire", "CNetMPLinux"], swiftSettings: strict),
        // What both processes need of the machine beyond the channel: the clock, log lines,
        // random secrets, /proc files, the NUMA map.
        .target(name: "NetMPSystem", dependencies: ["NetMPWire", "NetMPTCP", "NetMPChannel", "NetMPStack", "CNetMPChannel", "CNetMPLinux", "CNuma"],
                swiftSettings: strict),
        // The stack process: the pinned cores, their ports and TAP queues, steering, the
        // door that programs attach through, stats and capture.
        .target(name: "NetMPStackProcess", dependencies: ["NetMPSystem", "NetMPStack", "NetMPChannel", "NetMPLink", "NetMPTCP",
                                                          "NetMPWire", "CNetMPChannel", "CNetMPLinux", "CNuma"],
                swiftSettings: strict),
        // A program's side: its attachment, its sockets' blocking calls over the channel.
        // It never sees the stack process's code.
        .target(name: "NetMPClient", dependencies: ["NetMPSystem", "NetMPStack", "NetMPChannel", "NetMPTCP", "NetMPWire",
                                                    "CNetMPChannel", "CNetMPLinux"],
                swiftSettings: strict),
        // A stack and its clients in one process, for tests and the tools that measure them;
        // neither the preloaded library nor `netmp stack` links it.
        .target(name: "NetMPInProcess", dependencies: ["NetMPStackProcess", "NetMPClient", "NetMPSystem", "NetMPStack",
                                                       "NetMPChannel"],
                swiftSettings: strict),
        .target(name: "NetMPSocket", dependencies: ["NetMPClient", "NetMPSystem", "NetMPStack", "NetMPChannel", "NetMPLink",
                                                    "NetMPWire", "CNetMPLinux"], swiftSettings: strict),
        .target(name: "NetMPShim", dependencies: ["NetMPSocket"], path: "Sources/NetMPShim",
                cSettings: [.headerSearchPath("../../Include"), warningsAreErrors],
                linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        .executableTarget(name: "NetMPCommand", dependencies: ["NetMPStackProcess", "NetMPClient", "NetMPSystem", "NetMPStack", "NetMPChannel", "NetMPWire", "CNetMPLinux"],
                          swiftSettings: strict, linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        // Hosts the stack on one thread to exchange data with a kernel peer, for the TCP interop
        // tests until the socket shim lands; not installed.
        // Counts the process's heap allocations for the driver's allocation check.
        .target(name: "CNetMPAllocationCount", path: "Sources/CNetMPAllocationCount"),
        .executableTarget(name: "NetMPTCPDriver", dependencies: ["CZlib", "NetMPInProcess", "NetMPStackProcess", "NetMPClient", "NetMPSystem", "NetMPStack", "NetMPChannel", "NetMPTCP", "NetMPLink",
                                                                 "CNetMPAllocationCount"],
                          swiftSettings: strict, linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        // Micro-benchmarks with their C references (Scripts/bench); not installed.
        .target(name: "CNetMPBenchReference", path: "Sources/CNetMPBenchReference"),
        .executableTarget(name: "NetMPBench", dependencies: ["NetMPInProcess", "NetMPStackProcess", "NetMPClient", "NetMPSystem", "NetMPStack", "NetMPChannel", "NetMPWire", "CNetMPBenchReference", "CNetMPLinux"],
                          swiftSettings: strict, linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        .target(name: "NetMPTestSupport", dependencies: ["NetMPWire"], path: "Tests/NetMPTestSupport"),
        .testTarget(name: "NetMPWireTests", dependencies: ["NetMPWire", "NetMPTestSupport"]),
        .testTarget(name: "NetMPTCPTests", dependencies: ["NetMPTCP", "NetMPWire", "NetMPTestSupport"]),
        .testTarget(name: "NetMPStackTests", dependencies: ["NetMPStack", "NetMPChannel", "NetMPWire", "NetMPTCP", "NetMPTestSupport", "NetMPSystem", "CNetMPChannel"]),
        .testTarget(name: "NetMPLinkTests", dependencies: ["NetMPLink", "NetMPStack", "NetMPChannel", "NetMPWire", "NetMPTCP", "CNetMPLinux"]),
        .testTarget(name: "NetMPInProcessTests", dependencies: ["NetMPInProcess", "NetMPStackProcess", "NetMPClient", "NetMPSystem", "NetMPStack", "NetMPChannel", "NetMPTCP", "NetMPWire", "NetMPLink", "CNetMPLinux"]),
        .testTarget(name: "IntegrationTests", dependencies: ["NetMPWire", "NetMPStack", "NetMPChannel", "NetMPTCP"]),
    ]
)
