import Foundation
import Testing

/// The pure protocol (docs/ARCHITECTURE.md): the wire formats and the TCP engine do no I/O,
/// read no clock and start no thread, so every rule in them is tested with fixed bytes and
/// a simulated clock. This lint keeps it so: each of their files imports only the pure
/// modules below it (no Glibc, Foundation, Synchronization or C module), and none reaches
/// a C symbol by name around the imports. The channel (NetMPChannel: the shared memory's
/// layout, rings, words and records) and the host (NetMPStack) are held to the same rule,
/// with atomics (Synchronization), the channel's C layout (CNetMPChannel), errno numbers
/// imported one by one, and a few C declarations that do no I/O. The channel's wakes reach
/// the kernel only through the table a process installs (ChannelCalls).
@Suite struct PureProtocolTests {
    static let sources = ShimABITests.root.appendingPathComponent("Sources")

    /// Each module the lint covers, and what its files may import.
    static let allowed: [String: Set<String>] = [
        "NetMPWire": [], "NetMPTCP": ["NetMPWire"],
        "NetMPChannel": ["NetMPWire", "NetMPTCP", "CNetMPChannel", "Synchronization"],
        "NetMPStack": ["NetMPWire", "NetMPTCP", "NetMPChannel", "CNetMPChannel"],
    ]
    /// Modules that may also import errno numbers one by one (the host names the errors
    /// ICMP reports to sockets, the channel a datagram refused for its size).
    static let namesErrnos: Set<String> = ["NetMPChannel", "NetMPStack"]
    /// Single C declarations a module may import that do no I/O: a type (the gathered
    /// write's pieces), the page size the region's layout is in, an error number's text.
    static let declarations: [String: Set<String>] = [
        "NetMPChannel": ["struct Glibc.iovec", "func Glibc.sysconf", "var Glibc._SC_PAGESIZE", "func Glibc.strerror"],
    ]

    /// The module's Swift files (subfolders too), by path relative to Sources.
    static func files(of module: String) -> [String] {
        let folder = sources.appendingPathComponent(module)
        guard let walker = FileManager.default.enumerator(atPath: folder.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }.map { module + "/" + $0 }.sorted()
    }

    /// One line of a module's sources that imports: the module named, the declaration's
    /// kind when it imports one (`import var Glibc.EINVAL`: "var"), the name's parts after
    /// the module, and the line. Attributes (`@preconcurrency`) are skipped.
    struct Import { let module: String; let kind: Substring?; let parts: [Substring]; let line: String }

    /// Every line of `module`'s Swift files, by file, with the import it makes if any.
    static func lines(of module: String) throws -> [(file: String, code: String, import: Import?)] {
        try files(of: module).flatMap { file in
            try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false).map { line in
                    let code = line.trimmingCharacters(in: .whitespaces)
                    let words = code.split(separator: " ").filter { !$0.hasPrefix("@") }
                    guard words.first == "import", words.count > 1 else { return (file, code, nil) }
                    let parts = words[words.count > 2 ? 2 : 1].split(separator: ".")
                    return (file, code, Import(module: String(parts.first ?? ""), kind: words.count > 2 ? words[1] : nil,
                                               parts: Array(parts.dropFirst()), line: code))
                }
        }
    }

    @Test(arguments: ["NetMPWire", "NetMPTCP", "NetMPChannel", "NetMPStack"])
    func module_importsOnlyThePureModulesBelowIt(_ module: String) throws {
        let lines = try Self.lines(of: module)
        #expect(Set(lines.map(\.file)).count > 5, "the lint found no sources of \(module) under \(Self.sources.path)")
        var found: [String] = []
        for (file, code, imported) in lines {
            if let imported {
                // An errno number alone (`import var Glibc.EHOSTUNREACH`): a constant, no call.
                let errnoNumber = Self.namesErrnos.contains(module) && imported.kind == "var" && imported.module == "Glibc"
                    && imported.parts.count == 1 && imported.parts[0].hasPrefix("E")
                    && imported.parts[0].allSatisfy { $0.isUppercase || $0.isNumber }
                let declaration = imported.kind.map { "\($0) \(imported.module).\(imported.parts.joined(separator: "."))" }
                let harmless = declaration.map { Self.declarations[module, default: []].contains($0) } ?? false
                if !Self.allowed[module, default: []].contains(imported.module) && !errnoNumber && !harmless {
                    found.append("\(file): \(code)")
                }
            }
            if code.contains("@_silgen_name") || code.contains("@_extern") || code.contains("dlsym") {
                found.append("\(file): \(code)")
            }
        }
        #expect(found.isEmpty, "\(module) must stay pure (no I/O): \(found.joined(separator: "; "))")
    }

    /// The two sides of the door (docs/STACK-SERVICE.md): a program's code and the stack
    /// process's meet only in the channel and the modules below it. SwiftPM puts every
    /// module of a build in one folder, so an import that Package.swift does not declare can
    /// still compile; this catches it.
    static let forbidden: [String: Set<String>] = [
        "NetMPClient": ["NetMPStackProcess", "NetMPInProcess", "NetMPLink", "CNuma"],
        "NetMPSocket": ["NetMPStackProcess", "NetMPInProcess"],
        "NetMPStackProcess": ["NetMPClient", "NetMPSocket", "NetMPInProcess"],
        "NetMPSystem": ["NetMPClient", "NetMPStackProcess", "NetMPInProcess", "NetMPLink"],
        "NetMPCommand": ["NetMPInProcess"],
    ]

    @Test(arguments: ["NetMPClient", "NetMPSocket", "NetMPStackProcess", "NetMPSystem", "NetMPCommand"])
    func module_keepsToItsSideOfTheDoor(_ module: String) throws {
        let lines = try Self.lines(of: module)
        #expect(Set(lines.map(\.file)).count > 3, "the lint found no sources of \(module) under \(Self.sources.path)")
        let found = lines.filter { $0.import.map { Self.forbidden[module, default: []].contains($0.module) } ?? false }
            .map { "\($0.file): \($0.code)" }
        #expect(found.isEmpty, "\(module) reaches across the door: \(found.joined(separator: "; "))")
    }
}
