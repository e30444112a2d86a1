import Glibc
import NetMPSystem

/// One figure of one case: every repetition's value on each side (nil where that
/// repetition failed), or why the case was skipped.
struct BenchRow {
    var benchCase: String
    var metric: String
    var unit: String
    var better: BenchMetric.Better
    var kernel: [Double?]
    var netmp: [Double?]
    var skipped: String? = nil
    var failures: [String] = []

    static func rows(for benchCase: BenchCase, kernel: [BenchSample], netmp: [BenchSample]) -> [BenchRow] {
        let failures = zip(kernel, netmp).flatMap { pair in
            [pair.0.failure.map { "kernel: " + $0 }, pair.1.failure.map { "netmp: " + $0 }].compactMap { $0 }
        }
        return benchCase.metrics.map { metric in
            let pairs = Array(zip(kernel, netmp))
            return BenchRow(benchCase: benchCase.name, metric: metric.name, unit: metric.unit, better: metric.better,
                            kernel: pairs.map { metric.value($0.0, $0.0, $0.1, .kernel) },
                            netmp: pairs.map { metric.value($0.1, $0.0, $0.1, .netmp) },
                            failures: failures)
        }
    }

    var kernelMedian: Double? { median(kernel.compactMap { $0 }) }
    var netmpMedian: Double? { median(netmp.compactMap { $0 }) }
    /// netmp / kernel, so that above 1 is netmp ahead for a "higher" figure and behind for a "lower" one.
    var ratio: Double? {
        guard let k = kernelMedian, let n = netmpMedian, k != 0 else { return nil }
        return n / k
    }
    /// The repetitions' range as a share of the median, per side: how far to trust the row.
    func spread(_ values: [Double?]) -> Double? {
        let present = values.compactMap { $0 }
        guard present.count > 1, let m = median(present), m != 0 else { return nil }
        return (present.max()! - present.min()!) / abs(m)
    }
}

func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

struct BenchReport {
    var rows: [BenchRow]
    var repetitions: Int
    var seconds: Int

    /// What makes the bench fail: netmp moved no data, or moved it corrupted. Speeds are
    /// figures, not failures.
    var netmpFailures: [String] {
        rows.flatMap { row -> [String] in
            guard row.skipped == nil else { return [] }
            var problems = row.failures.filter { $0.hasPrefix("netmp") }.map { "\(row.benchCase): \($0)" }
            if row.unit == "intact", row.netmp.contains(where: { $0 != 1 }) { problems.append("\(row.benchCase): data corrupted") }
            if row.unit == "Gbit/s", row.netmp.contains(where: { $0 == 0 }) { problems.append("\(row.benchCase): no data moved") }
            return problems
        }.uniqued()
    }

    var table: String {
        let header = ["case", "unit", "kernel", "netmp", "netmp/kernel", "spread k/n"]
        var lines: [[String]] = []
        for row in rows {
            if let reason = row.skipped { lines.append([row.metric, "", "skipped", reason, "", ""]); continue }
            let ratio = row.ratio.map { short($0) + (row.better == .higher ? "" : " (lower is better)") } ?? "-"
            let spread = [row.spread(row.kernel), row.spread(row.netmp)].map { $0.map { "\(Int(($0 * 100).rounded()))%" } ?? "-" }
            lines.append([row.metric, row.unit, row.kernelMedian.map(short) ?? "failed", row.netmpMedian.map(short) ?? "failed",
                          ratio, spread.joined(separator: "/")])
        }
        let widths = header.indices.map { column in ([header] + lines).map { $0[column].count }.max()! }
        func format(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                column < 2 ? cell + String(repeating: " ", count: widths[column] - cell.count)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
        var out = ["", "netmp bench: median of \(repetitions) (\(seconds) s each); spread is max-min over the median", ""]
        out.append(format(header))
        out += lines.map(format)
        let failed = rows.flatMap { row in row.failures.map { "\(row.benchCase) \($0)" } }.uniqued()
        if !failed.isEmpty { out.append("\nfailed measurements:"); out += failed.map { "  " + $0 } }
        return out.joined(separator: "\n")
    }

    var json: String {
        func list(_ values: [Double?]) -> String { "[" + values.map { $0.map(jsonNumber) ?? "null" }.joined(separator: ",") + "]" }
        func optional(_ value: Double?) -> String { value.map(jsonNumber) ?? "null" }
        let objects = rows.map { row in
            "{\"case\":\(jsonString(row.benchCase)),\"metric\":\(jsonString(row.metric)),\"unit\":\(jsonString(row.unit)),"
                + "\"better\":\"\(row.better.rawValue)\",\"skipped\":\(row.skipped.map(jsonString) ?? "null"),"
                + "\"kernel\":{\"median\":\(optional(row.kernelMedian)),\"runs\":\(list(row.kernel)),\"spread\":\(optional(row.spread(row.kernel)))},"
                + "\"netmp\":{\"median\":\(optional(row.netmpMedian)),\"runs\":\(list(row.netmp)),\"spread\":\(optional(row.spread(row.netmp)))},"
                + "\"ratio\":\(optional(row.ratio)),\"failures\":[\(row.failures.map(jsonString).joined(separator: ","))]}"
        }
        return "{\"repetitions\":\(repetitions),\"seconds\":\(seconds),\"cpus\":\(sysconf(Int32(_SC_NPROCESSORS_ONLN))),"
            + "\"rows\":[\n" + objects.joined(separator: ",\n") + "\n]}\n"
    }

    /// Per figure, the kernel's bar beside netmp's, each scaled to the larger of the two.
    var svg: String {
        let shown = rows.filter { $0.skipped == nil }
        let rowHeight = 44, labelWidth = 300, barWidth = 420, top = 50
        let height = top + shown.count * rowHeight + 20
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(labelWidth + barWidth + 140)\" height=\"\(height)\" "
                   + "font-family=\"sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"10\" y=\"20\" font-size=\"15\">netmp bench: kernel (veth) beside netmp (TAP), median of \(repetitions)</text>",
                   "<rect x=\"10\" y=\"30\" width=\"12\" height=\"10\" fill=\"#9e9e9e\"/><text x=\"26\" y=\"39\">kernel</text>",
                   "<rect x=\"80\" y=\"30\" width=\"12\" height=\"10\" fill=\"#1e6fd9\"/><text x=\"96\" y=\"39\">netmp</text>"]
        for (index, row) in shown.enumerated() {
            let y = top + index * rowHeight
            let values = [row.kernelMedian, row.netmpMedian]
            let scale = max(values.compactMap { $0 }.max() ?? 0, 1e-12)
            let ratio = row.ratio.map { " (x" + short($0) + ", \(row.better.rawValue) is better)" } ?? ""
            out.append("<text x=\"10\" y=\"\(y + 16)\">\(xmlEscaped(row.metric))</text>")
            out.append("<text x=\"10\" y=\"\(y + 32)\" fill=\"#555\">\(xmlEscaped(row.unit + ratio))</text>")
            for (bar, value) in values.enumerated() {
                let width = value.map { Int(Double(barWidth) * $0 / scale) } ?? 0
                let barY = y + 4 + bar * 17
                out.append("<rect x=\"\(labelWidth)\" y=\"\(barY)\" width=\"\(max(width, 1))\" height=\"14\" "
                           + "fill=\"\(bar == 0 ? "#9e9e9e" : "#1e6fd9")\"/>")
                out.append("<text x=\"\(labelWidth + max(width, 1) + 6)\" y=\"\(barY + 11)\">\(value.map(short) ?? "failed")</text>")
            }
        }
        out.append("</svg>\n")
        return out.joined(separator: "\n")
    }
}

func jsonNumber(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }

func xmlEscaped(_ text: String) -> String {
    var out = ""
    for c in text {
        switch c {
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "&": out += "&amp;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
