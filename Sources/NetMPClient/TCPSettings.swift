import NetMPTCP

/// A stream socket's TCP options, held in an immutable box: every socket of a client starts
/// with the client's box, and only a socket whose program changes an option gets one of its
/// own. A TCPConfiguration is 168 bytes; a program holding many idle connections that set
/// nothing pays 8 per socket for it.
public final class TCPSettings: Sendable {
    public let configuration: TCPConfiguration
    public init(_ configuration: TCPConfiguration) { self.configuration = configuration }
}
