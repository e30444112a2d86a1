import NetMPClient
import NetMPInProcess
import NetMPStack
import NetMPTCP
import NetMPWire
import Testing

/// The exec hand-off's bytes (connections, those still connecting too, listeners, UDP
/// sockets, sockets not yet connected or bound): what the old image
/// writes the new one reads back whole, and anything cut short, lengthened or not written
/// by this library is refused (the new image then keeps none of the sockets, never a wrong
/// one).
@Suite struct ExecHandoffTests {
    let sample = ExecHandoff(connection: 1020, names: 1021, sockets: [
        .init(descriptors: [0, 1, 7], doorbellSlot: 3, handle: SocketHandle(slot: 3, generation: 9),
              tuple: FourTuple(local: Endpoint(IPv4Address(10, 77, 0, 2), 40000), remote: Endpoint(IPv4Address(10, 77, 0, 1), 7900)),
              ipv6: false, nonBlocking: true,
              options: [.init(level: 6, name: 1, value: [1, 0, 0, 0]), .init(level: 1, name: 13, value: [1, 0, 0, 0, 5, 0, 0, 0])]),
        .init(descriptors: [4], doorbellSlot: 12, handle: SocketHandle(slot: 14, generation: 1),
              tuple: FourTuple(local: Endpoint(IPv6Address("fd77::2")!, 40001), remote: Endpoint(IPv6Address("fd77::1")!, 80)),
              ipv6: true, nonBlocking: false, options: []),
        .init(descriptors: [14], doorbellSlot: 15, handle: SocketHandle(slot: 15, generation: 3),
              tuple: FourTuple(local: Endpoint(IPv4Address.any, 0), remote: Endpoint(IPv4Address(10, 77, 0, 1), 7910)),
              ipv6: false, nonBlocking: true, options: [], connecting: true),
        .init(descriptors: [5], doorbellSlot: 20, handle: SocketHandle(slot: 21, generation: 2),
              tuple: FourTuple(local: Endpoint(IPv4Address.any, 0), remote: Endpoint(IPv4Address.any, 0)), ipv6: false,
              nonBlocking: true, options: [.init(level: 1, name: 2, value: [1, 0, 0, 0])],
              listener: .init(channelSlot: 20, port: 8080, bound: nil, v6Only: false, reusePort: true, reuseAddress: true, twin: 1019)),
        .init(descriptors: [6], doorbellSlot: 22, handle: SocketHandle(slot: 23, generation: 4),
              tuple: FourTuple(local: Endpoint(IPv4Address.any, 0), remote: Endpoint(IPv4Address.any, 0)), ipv6: true,
              nonBlocking: false, options: [],
              listener: .init(channelSlot: 22, port: 443, bound: IPAddress(IPv6Address("fd77::2")!), v6Only: true,
                              reusePort: false, reuseAddress: false, twin: -1)),
        .init(descriptors: [8, 9], doorbellSlot: 30, handle: SocketHandle(slot: 30, generation: 7),
              tuple: FourTuple(local: Endpoint(IPv4Address.any, 0), remote: Endpoint(IPv4Address.any, 0)), ipv6: true,
              nonBlocking: true, options: [.init(level: 1, name: 6, value: [1, 0, 0, 0])],
              datagram: .init(bound: nil, connectedSource: IPAddress(IPv6Address("fd77::2")!), v6Only: false, reusePort: false,
                              reuseAddress: true, groups: [IPAddress(IPv4Address(239, 1, 2, 3)), IPAddress(IPv6Address("ff02::fb")!)])),
        .fresh(.init(datagram: false, port: 7914, portNamed: true, bound: IPAddress(IPv4Address(10, 77, 0, 2))),
               descriptors: [10], doorbellSlot: 31, ipv6: false, nonBlocking: false, options: [.init(level: 6, name: 1, value: [1, 0, 0, 0])]),
        .fresh(.init(datagram: false), descriptors: [11], doorbellSlot: 32, ipv6: true, nonBlocking: true, options: []),
        .fresh(.init(datagram: true, bound: nil, addressOnly: IPAddress(IPv6Address.any)), descriptors: [12, 13], doorbellSlot: nil,
               ipv6: true, nonBlocking: false, options: [.init(level: 0, name: 35, value: [239, 1, 2, 3, 0, 0, 0, 0])]),
    ])

    @Test func roundTrip_sameHandoff() {
        let bytes = sample.serialized()
        #expect(bytes.withUnsafeBytes { ExecHandoff(parsing: $0) } == sample)
        #expect(sample.libraryDescriptors == [1020, 1021, 1019])
        // A fresh UDP socket has no slot for the stack to keep; a fresh stream socket keeps its doorbell's.
        #expect(sample.sockets.compactMap(\.keptSlot) == [3, 12, 15, 20, 22, 30, 31, 32])
        let none = ExecHandoff(connection: 3, names: 4, sockets: [])
        #expect(none.serialized().withUnsafeBytes { ExecHandoff(parsing: $0) } == none)
    }

    @Test func damaged_refused() {
        let bytes = sample.serialized()
        for length in 0..<bytes.count {
            #expect(bytes.prefix(length).withUnsafeBytes { ExecHandoff(parsing: $0) } == nil, "cut to \(length) bytes")
        }
        #expect((bytes + [0]).withUnsafeBytes { ExecHandoff(parsing: $0) } == nil, "a byte too many")
        var wrongMagic = bytes
        wrongMagic[0] ^= 0xff
        #expect(wrongMagic.withUnsafeBytes { ExecHandoff(parsing: $0) } == nil)
        var hugeCount = bytes
        hugeCount.replaceSubrange(16..<20, with: [0xff, 0xff, 0xff, 0x7f]) // sockets: 2^31 - 1
        #expect(hugeCount.withUnsafeBytes { ExecHandoff(parsing: $0) } == nil)
    }
}
