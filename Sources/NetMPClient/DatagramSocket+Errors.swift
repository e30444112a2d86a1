import Glibc
import NetMPStack
import NetMPSystem
import NetMPTCP
import NetMPWire

/// IP_RECVERR and IPV6_RECVERR: the ICMP errors about a UDP socket's datagrams, each its
/// next error and a record in its error queue, read with recvmsg(MSG_ERRQUEUE) as Linux's
/// ip_recv_error and ipv6_recv_error return them. Without them only a hard error about a
/// connected socket's peer is its next error.
extension DatagramSocket {
    /// Sets IP_RECVERR (`ipv6` false) or IPV6_RECVERR. Turning it off empties the error
    /// queue, as Linux purges it.
    public func setReceiveErrors(_ on: Bool, ipv6: Bool) {
        setup.locked {
            if ipv6 { receiveErrorsKept.ipv6 = on } else { receiveErrorsKept.ipv4 = on }
            guard let channel else { return }
            channel.setReceivesErrors(ipv4: receiveErrorsKept.ipv4, ipv6: receiveErrorsKept.ipv6)
            if !on { while channel.errors.popError(into: UnsafeMutableRawBufferPointer(start: nil, count: 0)) != nil {} }
        }
    }

    /// A send to `target` refused with EMSGSIZE: under IP_RECVERR (IPV6_RECVERR toward an
    /// IPv6 destination) a local error record too, queued before the send returns, as
    /// ip_local_error and ipv6_local_error queue it. The home core writes the queue, so it
    /// is asked, and answers once it has. The name is the destination with, over IPv4, the
    /// connected peer's port (inet_dport: 0 unconnected), over IPv6 the destination's.
    func queueMessageTooLong(to target: Endpoint, _ channel: DatagramChannel) {
        guard channel.receivesErrors(ipv6: !target.address.isIPv4), let handle else { return }
        var request = Request(.datagramLocalError, handle)
        request.remote = Endpoint(target.address, target.address.isIPv4 ? channel.connectedPeer?.port ?? 0 : target.port)
        request.value = Int64(client.configuration.mtu)
        client.ask(request, to: channel.homeCore) { _ in }
    }

    public func receivesErrors(ipv6: Bool) -> Bool { setup.locked { ipv6 ? receiveErrorsKept.ipv6 : receiveErrorsKept.ipv4 } }

    /// recvmsg(MSG_ERRQUEUE): the oldest error, its datagram's quoted payload copied into
    /// `buffer` (truncated); its full length and the error. Never waits: EAGAIN when the
    /// queue is empty. The socket's pending error becomes the next record's.
    public func receiveError(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> (length: Int, error: DatagramError) {
        guard let channel, let got = channel.errors.popError(into: buffer) else { throw SocketError.wouldBlock }
        channel.errorRecordTaken(got.error)
        return got
    }
}
