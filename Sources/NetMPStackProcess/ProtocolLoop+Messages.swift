import CNetMPChannel
import Glibc
import NetMPStack
import NetMPTCP
import NetMPWire

/// The usrreq side of a protocol thread: what application threads ask of the connections
/// this core owns. Every operation runs here, on the owner, so the control blocks need no lock.
extension ProtocolLoop {
    func handle(_ message: CoreMessage, now: Instant) {
        switch message {
        case .frame(let frame):
            host.receive(frame: UnsafeRawBufferPointer(frame.bytes), marks: frame.marks, now: now, sink: &sink)
            frame.free()
        case .neighbour(let frame):
            host.learnNeighbour(from: UnsafeRawBufferPointer(frame.bytes), now: now, sink: &sink)
            frame.free()
        case .listen(let id, let listener, let port, let families, let reuse, let completion):
            defer { completion.done() }
            let core = self.core
            guard let client = clientsByID[id] else { return } // gone since: it listens nowhere
            // A listener listens once: a second record for its slot (a port it holds, but
            // not this listener's) would leave the first port listened on for good. It,
            // and a slot that does not describe a listener, is the client's fault.
            guard client.listeners[listener.slot] == nil, client.sockets.resolves(listener, as: .listener),
                  let queue = ListenQueue(adopting: listener.slot, in: client.sockets, port: port) else {
                client.requests.countMalformed()
                return
            }
            let sockets = client.sockets
            // The view lives as long as this core's listener: its hand-off holds it. What
            // it accepts gets its rings in a slot of the listener's client.
            do {
                let base = tcp.configuration, ipv6Listener = families.contains(.ipv6)
                try tcp.listen(port: queue.port, backlog: queue.backlog, families: families,
                               identity: UInt64(id) << 32 | UInt64(listener.slot), reuse: reuse,
                               configuration: { queue.connectionConfiguration(base: base, ipv4Peer: $0, ipv6Listener: ipv6Listener) },
                               channelMaker: { configuration in
                    SocketChannel(in: sockets, sendCapacity: configuration.sendBufferSize,
                                  receiveCapacity: configuration.receiveBufferSize)
                }, acceptDeferral: { queue.acceptDeferral }) { socket in
                    // Attached, established and named in the socket table before accept()
                    // can see it, with a hold for the view accept() will make; the
                    // application's close record releases the name.
                    let channel = socket.channel
                    guard let lease = channel.lease,
                          let handle = sockets.register(kind: .stream, in: lease) else { return false }
                    channel.attach(to: core)
                    socket.client = id
                    channel.publish([.attached, .established])
                    sockets.hold(handle.slot)
                    client.streamViews[handle.slot] = channel
                    if queue.push(AcceptedConnection(handle: handle, tuple: socket.tuple, core: core)) { return true }
                    client.streamViews[handle.slot] = nil
                    sockets.release(handle)
                    sockets.letGo(handle.slot)
                    return false
                }
                client.listeners[listener.slot] = PortHold(queue.port, families)
            } catch {
                // The port table admitted the listen, so only a record the client wrote
                // (a port another of its listeners holds here) gets here.
                client.requests.countMalformed()
            }
        case .attach(let id, let region, let descriptors, let names, let bell, let portStart, let uid, let faults, let completion):
            attach(ClientOnCore(id: id, region: region, descriptors: descriptors, names: names, bell: bell, core: core, faults: faults))
            clientsByID[id]?.unprivilegedPortStart = portStart
            clientsByID[id]?.uid = uid
            completion.done()
        case .capture(let ring, let completion):
            sink.capture = ring
            completion.done()
        case .detach(let id, let closing, let completion):
            detach(id, closing: closing, now: now)
            completion.done()
        case .closeSockets(let id, let handles, let reset, let completion):
            if let client = clientsByID[id] { close(handles, of: client, reset: reset, now: now) }
            completion.done()
        case .stopListening(let id, let listener, let port, let families, let completion):
            tcp.stopListening(port: port, families: families, identity: UInt64(id) << 32 | UInt64(listener.slot),
                              now: now, host: host, sink: &sink)
            if clientsByID[id]?.listeners[listener.slot] == PortHold(port, families) { clientsByID[id]?.listeners[listener.slot] = nil }
            completion.done()
        case .bindDatagram(let id, let handle, let completion):
            defer { completion.done() }
            guard let client = clientsByID[id], client.sockets.resolves(handle, as: .datagram),
                  let channel = DatagramChannel(adopting: handle.slot, in: client.sockets) else {
                assertionFailure("core \(core): datagram socket \(handle) of client \(id) without its slot")
                return
            }
            // The port is read from the client's memory: bound only if the client holds it.
            let hold = PortHold(channel.port, channel.families)
            guard datagramPortTable?.isHeld(channel.port, families: channel.families, by: id) ?? true else { return }
            let identity = UInt64(id) << 32 | UInt64(handle.slot)
            for key in hold.keys {
                datagramSockets[key, default: []].removeAll { $0.identity == identity }
                datagramSockets[key, default: []].append(DatagramBinding(identity: identity, channel: channel))
            }
            client.datagrams[handle.slot] = hold
            if channel.homeCore == core { client.datagramViews[handle.slot] = channel } // its records come here
        case .datagramError(let identity, let error, let quoted):
            defer { quoted.free() }
            let client = clientsByID[UInt32(truncatingIfNeeded: identity >> 32)]
            guard let view = client?.datagramViews[UInt32(truncatingIfNeeded: identity)] else { return }
            view.report(error, quoted: UnsafeRawBufferPointer(quoted.bytes), at: now)
        case .joinGroup(let id, let handle, let group, let join, let completion):
            defer { completion.done() }
            // Only a socket bound on this core joins: a record naming another is the client's fault.
            guard clientsByID[id]?.datagrams[handle.slot] != nil else { clientsByID[id]?.requests.countMalformed(); return }
            let identity = UInt64(id) << 32 | UInt64(handle.slot)
            if join { self.join(group, identity: identity, now: now) } else { leave(group, identity: identity, now: now) }
        case .unbindDatagram(let id, let handle, let port, let families, let completion):
            let hold = PortHold(port, families)
            unbindDatagram(hold, identity: UInt64(id) << 32 | UInt64(handle.slot))
            if clientsByID[id]?.datagrams[handle.slot] == hold { clientsByID[id]?.datagrams[handle.slot] = nil }
            completion.done()
        case .inspect(let body, let completion):
            body(self)
            completion.done()
        case .stop(let completion):
            stopped = true
            completion.done()
        }
    }

    /// A usrreq record from an application thread. Its handle is resolved in the socket
    /// table; one that no longer resolves (the socket was closed by another thread first)
    /// is dropped, except that a control request is always answered, since its caller waits.
    func handle(_ request: Request, from client: ClientOnCore, now: Instant) {
        let sockets = client.sockets, replies = client.replies, requests = client.requests
        switch request.kind {
        case .reservePort, .releasePort:
            // Always answered: the asker waits.
            var reply = netmp_port_reply(error: EADDRNOTAVAIL, port: UInt32(request.localPort))
            if let table = request.datagram ? datagramPortTable : portTable {
                if request.kind == .releasePort {
                    table.release(request.localPort, families: request.families, ifHeldBy: client.id) // never another client's
                    reply.error = 0
                } else if request.localPort != 0, request.localPort < client.unprivilegedPortStart {
                    reply.error = EACCES // as Linux without CAP_NET_BIND_SERVICE
                } else {
                    switch table.reserve(request.localPort, families: request.families, for: client.id,
                                         reuse: request.reuse(uid: client.uid)) {
                    case .success(let port): reply = netmp_port_reply(error: 0, port: UInt32(port))
                    case .failure(let error): reply.error = error.errno
                    }
                }
            }
            let answered = replies.answer(request.reply) { buffer in
                buffer.storeBytes(of: reply, as: netmp_port_reply.self)
                return MemoryLayout<netmp_port_reply>.size
            }
            if !answered { requests.countMalformed() }
        case .datagramJoin, .datagramLeave:
            // Checked here, then on every core as a bind is: the group must be one.
            guard sockets.resolves(request.handle, as: .datagram), !ports.isEmpty, request.remote.address.isMulticast else {
                requests.countMalformed()
                if !replies.answer(request.reply, { _ in 0 }) { requests.countMalformed() }
                return
            }
            onEveryCore(answering: request.reply, for: client, now: now) {
                .joinGroup(client: client.id, request.handle, group: request.remote.address, join: request.kind == .datagramJoin, $0)
            }
        case .listen, .stopListening, .datagramBind, .datagramUnbind:
            // On every core, this one included (by its own port, after this record): the
            // last core to finish answers the asker. A name that no longer resolves is
            // answered at once.
            let kind: SocketTable.Kind = request.kind == .listen || request.kind == .stopListening ? .listener : .datagram
            guard sockets.resolves(request.handle, as: kind), !ports.isEmpty else {
                if !replies.answer(request.reply, { _ in 0 }) { requests.countMalformed() }
                return
            }
            // A port is the client's only if it holds it (it reserved it, or listens or is
            // bound there): a record naming another client's port is answered and dropped.
            let owned = switch request.kind {
            case .listen: portTable?.isHeld(request.localPort, families: request.families, by: client.id) ?? true
            case .stopListening: client.listeners[request.handle.slot] == PortHold(request.localPort, request.families)
            case .datagramUnbind: client.datagrams[request.handle.slot] == PortHold(request.localPort, request.families)
            default: true // datagramBind: each core checks the port its own view reads
            }
            guard owned else {
                requests.countMalformed()
                if !replies.answer(request.reply, { _ in 0 }) { requests.countMalformed() }
                return
            }
            onEveryCore(answering: request.reply, for: client, now: now) { completion in
                switch request.kind {
                case .listen: .listen(client: client.id, request.handle, port: request.localPort, families: request.families,
                                      reuse: request.reuse(uid: client.uid), completion)
                case .stopListening: .stopListening(client: client.id, request.handle, port: request.localPort,
                                                    families: request.families, completion)
                case .datagramBind: .bindDatagram(client: client.id, request.handle, completion)
                default: .unbindDatagram(client: client.id, request.handle, port: request.localPort, families: request.families,
                                         completion)
                }
            }
        case .query:
            // Always answered, if only with nothing: the asker waits. A reply slot that was
            // not asked for is a faulty record.
            let socket = client.streamView(request.handle)?.socket
            let answered = replies.answer(request.reply) { buffer in socket.map { $0.connection.info.emit(into: buffer) } ?? 0 }
            if !answered { requests.countMalformed() }
        case .datagramLocalError:
            // Always answered: the sender waits, so that its next recvmsg(MSG_ERRQUEUE) finds
            // the record, as Linux's ip_local_error queued it before the send returned.
            if sockets.resolves(request.handle, as: .datagram), let channel = client.datagramViews[request.handle.slot],
               channel.receivesErrors(ipv6: !request.remote.address.isIPv4) {
                let error = DatagramError(messageTooLongTo: request.remote, mtu: UInt32(clamping: request.value))
                channel.queue(error, quoted: UnsafeRawBufferPointer(start: nil, count: 0), at: now)
            }
            if !replies.answer(request.reply, { _ in 0 }) { requests.countMalformed() }
        case .datagramOutput, .datagramClose:
            guard sockets.resolves(request.handle, as: .datagram), let channel = client.datagramViews[request.handle.slot] else { return }
            sendDatagrams(of: channel, for: client, now: now) // a close sends what was queued before it, as Linux had
            if request.kind == .datagramClose {
                sockets.release(request.handle)
                client.datagramViews[request.handle.slot] = nil
            }
        case .connect:
            // The core's own view of the socket's slot, on the hold the application took
            // for it when it sent this record.
            guard sockets.resolves(request.handle, as: .stream), client.streamViews[request.handle.slot] == nil,
                  let channel = SocketChannel(adopting: request.handle.slot, in: sockets) else {
                requests.countMalformed()
                return
            }
            client.streamViews[request.handle.slot] = channel
            guard var configuration = request.options.configuration(from: tcp.configuration),
                  request.localPort == 0
                    || portTable?.isHeld(request.localPort, families: request.remote.address.isIPv4 ? .ipv4 : .ipv6, by: client.id) ?? true
            else {
                requests.countMalformed()
                channel.publish([.failed, .closed], error: EINVAL)
                return
            }
            // The engine's buffers are the rings' (whose sizes the slot's words gave): its
            // window never promises more than the receive ring holds.
            configuration.receiveBufferSize = min(configuration.receiveBufferSize, channel.receive.capacity)
            configuration.sendBufferSize = min(configuration.sendBufferSize, channel.send.capacity)
            connect(channel, to: request.remote, localPort: request.localPort == 0 ? nil : request.localPort,
                    configuration: configuration, reuse: request.reuse(uid: client.uid), for: client.id, now: now)
        case .output, .window, .shutdownWrite, .close, .setOption:
            guard let channel = client.streamView(request.handle) else { return }
            handle(request, on: channel, from: client, now: now)
        }
    }

    /// A record's message for every core, this one included: the last core to finish
    /// answers `client`'s reply slot `reply`. This core does its part now; another core's
    /// full port is tried again next turn: a core waiting on another's port could wait on
    /// one waiting on its own.
    ///
    /// An honest client waits for each such answer in a reply slot of its own, so it never
    /// has more of them in flight than it has slots. A record past that is a flood (the
    /// slots' words are the client's to forge): it is counted as faulty and dropped, so no
    /// client fills the other cores' ports or this core's outbox with its messages.
    func onEveryCore(answering reply: UInt32, for client: ClientOnCore, now: Instant, _ message: (Completion) -> CoreMessage) {
        let inFlight = client.fanOutsInFlight, replies = client.replies
        guard inFlight.value < ReplyBoard.capacity else {
            client.requests.countMalformed()
            return
        }
        inFlight.increment()
        // Counted down before the answer: an asker that sees it and asks again is not
        // refused for the question it just had answered.
        let message = message(Completion(count: ports.count) {
            inFlight.decrement()
            replies.answer(reply) { _ in 0 }
        })
        for other in ports.indices where other != core { sendOrKeep(message, to: other) }
        handle(message, now: now)
    }

    func handle(_ request: Request, on channel: SocketChannel, from client: ClientOnCore, now: Instant) {
        switch request.kind {
        case .output:
            // Settled with the turn's batch: a close or another write later in the same
            // drain goes out with this data (a response and its FIN in one segment).
            channel.clear(.outputRequested)
            if let socket = channel.socket { tcp.settleWithBatch(socket, now: now, host: host, sink: &sink) }
        case .window:
            channel.clear(.windowRequested)
            if let socket = channel.socket { tcp.settleWithBatch(socket, now: now, host: host, sink: &sink) }
        case .shutdownWrite:
            guard let socket = channel.socket else { return }
            socket.shutdownWrite(now: now)
            tcp.settle(socket, now: now, host: host, sink: &sink)
        case .setOption:
            // Settled at once: TCP_NODELAY or uncorking sends what waits, as Linux's does.
            guard let socket = channel.socket, let option = request.option else { return }
            var applied = false
            socket.updateConnection { applied = option.apply(request.value, to: &$0, now: now) }
            if !applied { client.requests.countMalformed() }
            tcp.settle(socket, now: now, host: host, sink: &sink)
        case .close:
            // The application's last word on this socket: its handle goes with it, and
            // this core's view lives on only in the connection, until it ends.
            defer {
                client.sockets.release(request.handle)
                client.streamViews[request.handle.slot] = nil
            }
            end(channel, abort: request.abort, now: now)
        case .connect, .query, .datagramOutput, .datagramClose, .listen, .stopListening, .datagramBind, .datagramUnbind,
             .datagramJoin, .datagramLeave, .datagramLocalError,
             .reservePort, .releasePort:
            return // handled above
        }
    }

    /// Ends `channel`'s connection as close() does: a reset (`abort`), or a FIN after
    /// what was written.
    func end(_ channel: SocketChannel, abort: Bool, now: Instant) {
        guard let socket = channel.socket else { return }
        if abort {
            tcp.abort(socket, now: now, host: host, sink: &sink)
        } else {
            socket.close(now: now)
            tcp.settle(socket, now: now, host: host, sink: &sink)
        }
    }

    /// An active open, born on this core: the application sent it here because the bound
    /// 4-tuple hashes here, or (unbound) it lets this core pick a port that hashes here.
    func connect(_ channel: SocketChannel, to remote: Endpoint, localPort: UInt16?, configuration: TCPConfiguration,
                 reuse: PortReuse, for client: UInt32, now: Instant) {
        // StreamSocket.connect refused a destination without a route before sending this.
        let core = self.core, steering = self.steering, portTable = self.portTable
        let socket: TCPSocket
        // The source the program hashed the connection with; IPv6's must be ready (past
        // duplicate address detection), as Linux takes no tentative source. The record is
        // the client's: a destination its library would have refused is refused here too.
        let local: IPAddress
        if let v6 = remote.address.v6 {
            guard !v6.isMulticast, !v6.isUnspecified else { channel.publish([.failed, .closed], error: ENETUNREACH); return }
            guard let source = host.configuration.ipv6Source(for: v6), host.ipv6.isPreferred(source) else {
                channel.publish([.failed, .closed], error: EADDRNOTAVAIL)
                return
            }
            local = IPAddress(source)
        } else {
            local = IPAddress(host.address)
        }
        do {
            socket = try tcp.connect(from: local, to: remote, now: now, localPort: localPort,
                                     configuration: configuration, channel: channel, reuse: reuse,
                                     acceptable: { steering.owner(of: $0) == core && portTable?.isReserved($0.local.port) != true })
        } catch {
            channel.publish([.failed, .closed], error: error == .addressInUse ? EADDRINUSE : EADDRNOTAVAIL)
            return
        }
        socket.client = client
        tcp.settle(socket, now: now, host: host, sink: &sink) // the caller attached the channel to this core
    }
}

extension ProtocolLoop {
    /// Sends the datagrams a UDP socket's threads queued, as whole records: a 24-byte
    /// header (length, destination port and address) and the payload. A run of records to
    /// one destination with one length (a sender at full speed) goes as one frame the
    /// kernel cuts into the datagrams, where the link takes UDP segmentation: one write
    /// for up to 64 datagrams instead of one each.
    func sendDatagrams(of channel: DatagramChannel, for client: ClientOnCore?, now: Instant) {
        channel.takeOutputRequest()
        let ring = channel.outgoing
        // What was committed when the core came: records committed after it ask again (the
        // request above was cleared), so one call ends even while the application writes.
        let committed = ring.held
        // Read once per drain: what setsockopt set before these sends. Datagrams to IPv4
        // peers carry the IP-level pair (an IPv4 socket's one pair is in both words).
        let marking = channel.marking, mappedMarking = channel.mappedMarking, multicast = channel.multicast
        var sent = 0
        while sent < committed, let first = DatagramRecord.read(ring, at: 0, held: committed - sent) {
            var count = 1, span = DatagramRecord.headerLength + first.length
            // Not to our own address or a group: a looped run would have to be cut again.
            // A run only of datagrams that fit a frame each (larger ones leave in fragments).
            if host.offloads.udpSegmentation && first.length > 0 && !host.isOurs(first.destination.address)
                && !first.destination.address.isMulticast
                && UDPHeader.length + first.length <= host.unfragmentedPayload(ipv6: !first.destination.address.isIPv4) {
                // IPv4's total length counts its header; IPv6's payload length does not.
                let room = Int(UInt16.max) - UDPHeader.length - (first.destination.address.isIPv4 ? IPv4Header.minimumLength : 0)
                let limit = min(Host.datagramsPerFrame, room / first.length)
                while count < limit, let next = DatagramRecord.read(ring, at: span, held: committed - sent),
                      next.length == first.length, next.destination == first.destination, next.marking == first.marking {
                    count += 1
                    span += DatagramRecord.headerLength + next.length
                }
            }
            let isIPv4 = first.destination.address.isIPv4
            let (marked, multicastMarked) = first.marking.applied(to: isIPv4 ? mappedMarking : marking,
                                                                  multicast: isIPv4 ? multicast.sendingIPv4 : multicast.sendingIPv6)
            _ = host.sendUDP(from: channel.port, address: channel.boundAddress, to: first.destination, datagrams: count, each: first.length,
                             marking: marked, multicast: multicastMarked, now: now, sink: &sink) { out in
                var at = DatagramRecord.headerLength
                for index in 0..<count {
                    let place = index * first.length
                    ring.copy(from: at, count: first.length,
                              into: UnsafeMutableRawBufferPointer(rebasing: out[place..<(place + first.length)]))
                    at += DatagramRecord.headerLength + first.length
                }
            }
            ring.release(span)
            sent += span
        }
        // Bytes left of what was committed are not a whole record (records are committed
        // whole): the application wrote over its ring. They are dropped, so the ring cannot
        // stall on them.
        if sent < committed {
            ring.release(committed - sent)
            client?.requests.countMalformed()
        }
        // Positions the application side could not have left count against its client too.
        if let client, ring.impossiblePositions != channel.positionFaultsSeen {
            client.requests.countMalformed(ring.impossiblePositions &- channel.positionFaultsSeen)
            channel.positionFaultsSeen = ring.impossiblePositions
        }
        channel.doorbell.ring() // send space freed
    }
}
