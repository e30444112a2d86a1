import Foundation
import Testing

/// Include/netmp.h is the whole C ABI between the shim and the Swift library: every
/// function it declares is an @_cdecl of NetMPSocket, and every @_cdecl is declared there,
/// with as many parameters and the same void-or-value result. (The C compiler checks the
/// shim against the header, and nothing else checks the header against the Swift side: a
/// mismatch would be a wrong call at run time in every preloaded program.)
@Suite struct ShimABITests {
    struct Signature: Equatable, CustomStringConvertible {
        var parameters: Int, returnsValue: Bool
        var description: String { "\(parameters) parameters, \(returnsValue ? "a value" : "void")" }
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Parameters in a list, counted at the outermost level (a function pointer's own
    /// parameters are one), "void" or nothing as none.
    static func count(_ list: Substring) -> Int {
        let trimmed = list.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty || trimmed == "void" { return 0 }
        var depth = 0, commas = 0
        var previous: Character = " "
        for c in trimmed {
            switch c {
            case "(", "[", "<": depth += 1
            case ")", "]": depth -= 1
            case ">" where previous != "-": depth -= 1 // a generic's end, not a function type's arrow
            case "," where depth == 0: commas += 1
            default: break
            }
            previous = c
        }
        return commas + 1
    }

    /// The text from an opening parenthesis at `open` to its match, exclusive.
    static func parenthesised(_ text: String, from open: String.Index) -> (inside: Substring, end: String.Index)? {
        var depth = 0
        var i = open
        while i < text.endIndex {
            if text[i] == "(" { depth += 1 }
            if text[i] == ")" { depth -= 1; if depth == 0 { return (text[text.index(after: open)..<i], text.index(after: i)) } }
            i = text.index(after: i)
        }
        return nil
    }

    static func header() throws -> [String: Signature] {
        let text = try String(contentsOf: root.appendingPathComponent("Include/netmp.h"), encoding: .utf8)
        // Declarations only: comments and preprocessor lines out, then one per ';'.
        let code = text.split(separator: "\n").filter { !$0.hasPrefix("//") && !$0.hasPrefix("#") }
            .map { $0.split(separator: "//", maxSplits: 1).first.map(String.init) ?? "" }.joined(separator: " ")
        var found: [String: Signature] = [:]
        for declaration in code.split(separator: ";") {
            let d = String(declaration)
            guard let name = d.range(of: #"\bnetmp_[a-z0-9_]+(?=\s*\()"#, options: .regularExpression),
                  let (inside, _) = parenthesised(d, from: d[name.upperBound...].firstIndex(of: "(")!) else { continue }
            let result = d[..<name.lowerBound].trimmingCharacters(in: .whitespaces)
            found[String(d[name])] = Signature(parameters: count(inside), returnsValue: result != "void")
        }
        return found
    }

    static func cdecls() throws -> [String: Signature] {
        let folder = root.appendingPathComponent("Sources/NetMPSocket")
        var found: [String: Signature] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path) where file.hasSuffix(".swift") {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            var rest = text[...]
            while let mark = rest.range(of: #"@_cdecl\("([a-z0-9_]+)"\)"#, options: .regularExpression) {
                let name = String(rest[mark].dropFirst(9).dropLast(2))
                let after = String(rest[mark.upperBound...])
                guard let funcAt = after.range(of: "func "), let open = after[funcAt.upperBound...].firstIndex(of: "("),
                      let (inside, end) = parenthesised(after, from: open) else { break }
                let tail = after[end...].prefix { $0 != "{" }
                found[name] = Signature(parameters: count(inside), returnsValue: tail.contains("->"))
                rest = rest[mark.upperBound...]
            }
        }
        return found
    }

    @Test func headerAndCdecls_sameFunctions_sameShapes() throws {
        let declared = try Self.header(), defined = try Self.cdecls()
        #expect(declared.count >= 50 && defined.count >= 50, "parsed \(declared.count) declarations, \(defined.count) @_cdecl")
        #expect(Set(declared.keys).subtracting(defined.keys).sorted() == [], "declared in netmp.h, defined nowhere")
        #expect(Set(defined.keys).subtracting(declared.keys).sorted() == [], "@_cdecl missing from netmp.h")
        for (name, signature) in declared {
            guard let swift = defined[name] else { continue }
            #expect(swift == signature, "\(name): netmp.h says \(signature), Swift \(swift)")
        }
    }
}
