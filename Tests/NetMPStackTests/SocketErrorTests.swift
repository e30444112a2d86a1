import Glibc
import NetMPChannel
import NetMPSystem
import Testing

/// SocketError's numbers: each named failure reads back from its own errno (a core's reply
/// carries numbers), no two share one, and a number without a name survives the trip.
@Suite struct SocketErrorTests {
    @Test func everyNamedFailure_roundTripsThroughItsNumber() {
        for failure in SocketError.named {
            #expect(SocketError(failure.errno) == failure, "\(failure)")
        }
        #expect(Set(SocketError.named.map(\.errno)).count == SocketError.named.count)
        #expect(!SocketError.named.contains { if case .other = $0 { true } else { false } })
    }

    @Test func unnamedNumber_staysItself() {
        #expect(SocketError(EHOSTDOWN) == .other(EHOSTDOWN))
        #expect(SocketError(EHOSTDOWN).errno == EHOSTDOWN)
        #expect(SocketError(EAGAIN) == .wouldBlock && SocketError.wouldBlock.errno == EAGAIN)
    }
}
