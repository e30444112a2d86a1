import CNetMPChannel
import CNetMPLinux
import Glibc
import NetMPStack
import NetMPSystem

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
    /// The port (and its families) this core listens on for each of the client's
    /// listeners, and the UDP port it delivers for each of its UDP sockets, by the socket's
    /// slot: what a client (or a process of it) that goes away without closing them leaves
    /// to take down.
    var listeners: [UInt32: PortHold] = [:]
    var datagrams: [UInt32: PortHold] = [:]
    /// Core 0 of the stack process: the stack's end of the client's names socket, where
    /// the client's processes send their doorbells' eventfds (`takeNames`).
    let names: Int32?
    /// Ports below this are refused to the client's explicit binds (EACCES): the stack's
    /// ip_unprivileged_port_start for a client without root or CAP_NET_BIND_SERVICE, 0
    /// for one with them.
    var unprivilegedPortStart: UInt16 = 0
    /// The user the client runs as (SO_PEERCRED at the door): sockets share a port with
    /// SO_REUSEPORT only within one user.
    var uid: UInt32 = 0
    /// The client's records this core sent to every core whose last answer is still owed
    /// (`ProtocolLoop.onEveryCore`); counted down by whichever core finishes last.
    let fanOutsInFlight = AtomicCounter(0)

    /// In the stack process: the eventfd the client's processes write to wake this core,
    /// which only this client holds beside the core. The core watches it in its bells
    /// (`ProtocolLoop.bells`) and closes it when it stops serving the client; it never reads
    /// or writes it.
    let bell: Int32?

    /// The stack's bells for the client's doorbells (the table's BellCopies), which core 0
    /// fills as the client names placeholders.
    let descriptors: DoorbellDescriptors?

    init(id: UInt32, region: ClientRegion, descriptors: DoorbellDescriptors? = nil, names: Int32? = nil, bell: Int32? = nil,
         core: Int, faults: ClientFaults = ClientFaults()) {
        self.id = id
        self.bell = bell
        self.faults = faults
        requests = RequestRing(in: region, core: core)
        sockets = SocketTable(region: region, doorbellDescriptors: descriptors)
        self.descriptors = descriptors
        replies = ReplyBoard(in: region)
        self.names = names
    }

    deinit {
        if let names { close(names) }
        if let bell { close(bell) }
    }

    /// The client's faults, which this core adds to as its ring's count of malformed
    /// records grows (`reportFaults`, after each drain: one comparison when nothing grew).
    let faults: ClientFaults
    var faultsReported: UInt64 = 0
    func reportFaults() {
        let malformed = requests.malformed
        guard malformed != faultsReported else { return }
        faults.add(malformed &- faultsReported)
        faultsReported = malformed
    }

    /// Whether the client marked names waiting (core 0's look before it sleeps).
    var namesWaiting: Bool { names != nil && sockets.memory.namesPending }

    /// Core 0: the doorbell placeholders the client's processes sent since the last look,
    /// each given a bell of the stack's, kept for its slot and rung once (a change made while
    /// the stack had no bell still wakes the poller). A message that is not one name, or a
    /// descriptor that is not a placeholder, is dropped, and its descriptors closed. As many as the client counted, so no receive comes back
    /// empty; at most 1024 a turn: a client that floods names delays only its own (the
    /// rest wait for the next turn).
    func takeNames() -> Int {
        guard let names, let descriptors else { return 0 }
        let region = sockets.memory
        let pending = region.takeNamesPending()
        guard pending > 0 else { return 0 }
        let now = Int(min(pending, 1024))
        if pending > UInt32(now) { region.returnNamesPending(pending - UInt32(now)) }
        var taken = 0
        while taken < now {
            var registration = netmp_doorbell_registration()
            var given: Int32 = -1
            var count: Int32 = 0
            let received = netmp_message_receive(names, &registration, Int32(MemoryLayout<netmp_doorbell_registration>.size),
                                                 &given, 1, &count)
            guard received > 0 else { return taken } // EAGAIN: the client counted more than it sent
            taken += 1
            guard received == MemoryLayout<netmp_doorbell_registration>.size, count == 1 else {
                if count == 1 { close(given) }
                continue
            }
            if descriptors.register(placeholder: given, for: registration.slot) {
                Doorbell(viewing: registration.slot, in: sockets)?.ring()
            }
        }
        return taken
    }

    /// This core's view of the stream socket `handle` names, if the name is still current.
    func streamView(_ handle: SocketHandle) -> SocketChannel? {
        guard sockets.resolves(handle, as: .stream) else { return nil }
        return streamViews[handle.slot]
    }
}
