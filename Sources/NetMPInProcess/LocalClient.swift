import Glibc
import NetMPChannel
import NetMPClient
import NetMPStackProcess

/// A stack and the application side of its clients in one process: what tests, the TCP
/// driver and the micro-benchmarks run, with the client code a program runs and the cores
/// of the stack process, meeting in the channel as they do across processes.
extension StackClient {
    public convenience init(local parts: LocalClientParts) {
        self.init(id: parts.id, region: parts.region, configuration: parts.configuration,
                  tcpConfiguration: parts.tcpConfiguration, steering: parts.steering, wakers: parts.wakers)
    }
}

extension NetworkStack {
    /// The application's side of client 0, made on first use.
    public var primary: StackClient { primarySide.get { StackClient(local: primaryParts) } }

    /// Another client of this stack, with a region of its own that every core now serves
    /// beside the others (what the stack process does for each program that attaches; here,
    /// a second side in one process).
    public func attachClient(uid: UInt32 = getuid()) throws(StackProcessError) -> StackClient {
        StackClient(local: try attachLocalClient(uid: uid))
    }

    /// The cores stop serving `client` (whose sockets were all closed).
    public func detach(_ client: StackClient) { detach(client: client.id, closing: false) }
}

extension StreamSocket {
    /// A new, unconnected socket (socket(AF_INET, SOCK_STREAM, 0)) of the stack's client 0.
    public convenience init(stack: NetworkStack, doorbell: Doorbell? = nil) {
        self.init(client: stack.primary, doorbell: doorbell)
    }
}

extension DatagramSocket {
    /// A new UDP socket of the stack's client 0.
    public convenience init(stack: NetworkStack, family: SocketFamily = .ipv4) {
        self.init(client: stack.primary, family: family)
    }
}
