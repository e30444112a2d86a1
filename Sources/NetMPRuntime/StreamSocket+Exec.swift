import NetMPStack
import NetMPTCP

/// A connection that outlives its program's exec: the old image writes down its handle and
/// 4-tuple (the exec hand-off), and the new one views the same slot again through the hold
/// the old one had on it, as an accepted connection is viewed (the channel's words, rings and
/// doorbell are in the client's shared region, which the exec did not touch).
extension StreamSocket {
    /// The handle and 4-tuple of an established connection (a non-blocking connect that
    /// completed may not have been told so yet), for the hand-off; nil otherwise (a fresh,
    /// still connecting or listening socket is not carried through exec).
    public var inheritable: (handle: SocketHandle, tuple: FourTuple)? {
        learnTuple()
        guard let handle, channel.status.contains(.established) else { return nil }
        return setup.locked { phase == .connected || phase == .connecting ? tuple.map { (handle, $0) } : nil }
    }

    /// The connection the old image handed over, or nil when its handle no longer names a
    /// stream socket of this client or its slot is not held.
    public static func inherited(client: StackClient, handle: SocketHandle, tuple: FourTuple, family: SocketFamily) -> StreamSocket? {
        guard client.sockets.resolves(handle, as: .stream),
              let channel = SocketChannel(adopting: handle.slot, in: client.sockets) else { return nil }
        return StreamSocket(client: client, accepted: AcceptedConnection(handle: handle, tuple: tuple, core: channel.owner),
                            channel: channel, family: family)
    }
}
