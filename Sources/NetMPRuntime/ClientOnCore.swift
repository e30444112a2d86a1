import NetMPStack

/// One client as one core serves it: the client region's request ring for this core, its
/// socket table and reply slots (this core's own views of the region), and this core's
/// views of the client's sockets. In-process the application is the one client; the stack
/// process holds one per attached program, and each core drains every client's ring in
/// turn, a bounded number of records each (docs/STACK-SERVICE.md).
final class ClientOnCore {
    let id: UInt32
    let requests: RequestRing
    let sockets: SocketTable
    let replies: ReplyBoard
    /// The stream sockets this core owns, by slot, from the connect record (or the
    /// accepted connection's naming) to the close record: the core never touches a
    /// client's objects, only the socket's slot.
    var streamViews: [UInt32: SocketChannel] = [:]
    /// The UDP sockets whose home this core is (their records come here), by slot, from
    /// bind to the close record.
    var datagramViews: [UInt32: DatagramChannel] = [:]
    /// The port this core listens on for each of the client's listeners, and the UDP port
    /// it delivers for each of its UDP sockets, by the socket's slot: what a client (or a
    /// process of it) that goes away without closing them leaves to take down.
    var listeners: [UInt32: UInt16] = [:]
    var datagrams: [UInt32: UInt16] = [:]

    init(id: UInt32, region: ClientRegion, descriptors: DoorbellDescriptors? = nil, core: Int) {
        self.id = id
        requests = RequestRing(in: region, core: core)
        sockets = SocketTable(region: region, doorbellDescriptors: descriptors)
        replies = ReplyBoard(in: region)
    }

    /// This core's view of the stream socket `handle` names, if the name is still current.
    func streamView(_ handle: SocketHandle) -> SocketChannel? {
        guard sockets.resolves(handle, as: .stream) else { return nil }
        return streamViews[handle.slot]
    }
}
