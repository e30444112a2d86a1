import Foundation
import Testing

/// Every option at the common levels, set and read on the four kinds of socket, against
/// the kernel in the same lab (Scripts/option-probe): an answer that was Linux's must stay
/// so. The options netmp lacks, or answers otherwise on purpose (a TCP socket's buffer
/// sizes are its rings'), are listed in Scripts/option-probe-known.txt.
@Suite(.enabled(if: labUnavailableReason(commands: ["ip", "python3"]) == nil,
                Comment(rawValue: labUnavailableReason(commands: ["ip", "python3"]) ?? "")))
struct OptionProbeTests {
    @Test func everyAnswerThatWasLinuxsStaysSo() {
        let result = Shell.run(["env", "NETMP=\(Package.netmp)", Package.root + "/Scripts/option-probe", "--check"], timeout: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasPrefix("option-probe: "), "\(result.stdout)\(result.stderr)")
    }
}
