import Glibc
import NetMPChannel
import NetMPLink
import NetMPStack
import NetMPWire

/// Receiving in place. A frame read whole into the core's buffer has its payload copied
/// into the connection's receive ring, and the reader copies it out again: two copies in
/// the stack's direction where sending has one. But the frames of a stream come one after
/// another on its core, each in order behind the last: so the core reads the next frame
/// in two places, the headers the last in-order segment had into its buffer and the rest
/// straight into that connection's receive ring, at its readable end. When the frame is
/// that connection's next segment, its payload is stored already (ReceiveRing.write finds
/// it in place) and only the reader's copy is left. Another connection's segment is copied
/// from where it landed to its own ring; anything else has what landed copied back behind
/// the headers and is received whole. Either way a wrong guess costs the one copy every
/// frame used to cost.
///
/// Bytes that land in a client's ring before the core knows whose they are may be another
/// connection's, and the client can read and write its ring while they are there. So the
/// core lands only while the stack serves one program (its processes are one client; the
/// stack process's own region, client 0, holds no program's sockets): what lands is that
/// program's or nobody's, and another program's data never passes through its memory. Two
/// programs side by side are received as before. The ring's client must also be one that
/// could capture the link's frames anyway (the stack's own uid, or root: `netmp capture`'s
/// rule). Nothing lands while a capture or the fault injector, which need the frame whole,
/// is on, nor past data held out of order, which lies in the same free space.
extension ProtocolLoop {
    /// The least free space worth landing in: a smaller zone would leave most frames to
    /// be copied back.
    static let landingMinimum = 16 * 1024
    /// The least payload after which the same connection's next frame is expected: a
    /// stream's segments are full ones, while requests and answers (a web server's
    /// connections) are small, cheap to copy, and seldom followed by more of the same.
    static let streamingPayload = 1024

    /// What one read brought: nothing waiting, a frame received where it landed, or a
    /// frame whole in the buffer (`frame`) for `arrived`.
    enum Read {
        case nothing
        case taken
        case whole(VirtioNetHeader, UnsafeRawBufferPointer)
    }

    /// Reads one frame from the queue, landing its payload if a connection is expected.
    func readFrame(now: Instant) throws(LinkError) -> Read {
        tcp.inOrderArrival = nil // a forwarded or looped frame's, not this one's
        guard let (ring, split, zone) = landingPlace() else {
            guard let (header, frame) = try queue.receive(into: buffer) else { return .nothing }
            return .whole(header, frame)
        }
        let read: (header: VirtioNetHeader, length: Int)?
        do { read = try queue.receive(into: buffer, split: split, landing: zone) } catch {
            ring.landed(zone.count) // a frame may have come, under a header that could not be read
            throw error
        }
        guard let (header, length) = read else { return .nothing }
        let start = queue.headroom, front = start + split
        let frame = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + length)])
        guard length > split else { return .whole(header, frame) }
        let landed = min(length - split, zone.count)
        // What the ring's memory held, as a write would count it: a socket table keeps a
        // slot's pages for the next socket only if its rings wrote little (SocketTable.keepTouched).
        ring.landed(landed)
        let payload = UnsafeRawBufferPointer(rebasing: zone[0..<landed])
        if length - split == landed {
            let head = UnsafeRawBufferPointer(rebasing: buffer[start..<front])
            if ownsSegment(in: head),
               host.receiveSplit(head: head, payload: payload, marks: ArrivalMarks(header, frameLength: length),
                                 now: now, sink: &sink) {
                // In place only if it was the expected connection's next data; another's,
                // or data stored further on, was copied from the zone to its place.
                if let arrival = tcp.inOrderArrival, arrival.socket.channel.receive === ring,
                   arrival.payload.baseAddress == UnsafeRawPointer(zone.baseAddress) {
                    framesLanded &+= 1
                } else {
                    landingMisses &+= 1
                }
                followInOrderArrival(split: split)
                return .taken
            }
        }
        // Not the expected segment: the frame whole again, behind its headers (anything past
        // the zone was read there already).
        UnsafeMutableRawBufferPointer(rebasing: buffer[front..<(front + landed)]).copyMemory(from: payload)
        landingMisses &+= 1
        return .whole(header, frame)
    }

    /// The ring, the frame's headers' length and the free space the next frame's payload
    /// may land in; nil when nothing may land.
    func landingPlace() -> (ReceiveRing, Int, UnsafeMutableRawBufferPointer)? {
        guard let socket = landingSocket, sink.capture == nil, sink.faults == nil else { return nil }
        let split = landingSplit
        guard socket.state.acceptsData, servesOneProgram(socket.client) else { landingSocket = nil; return nil }
        guard !socket.connection.holdsOutOfOrderData else { return nil }
        let ring = socket.channel.receive
        guard let zone = ring.landingZone(limit: buffer.count - queue.headroom - split, minimum: Self.landingMinimum) else {
            return nil
        }
        return (ring, split, zone)
    }

    /// Whether `client` is the one program this core serves (every core serves every
    /// attached client): the only client, or the only one beside client 0.
    func servesOneProgram(_ client: UInt32) -> Bool {
        clients.count == 1 || (clients.count == 2 && client != 0 && clientsByID[0] != nil)
    }

    /// Whether this core owns the TCP segment whose headers are `head` (one core, or the
    /// connection's by the steering hash); another core's goes to it whole.
    func ownsSegment(in head: UnsafeRawBufferPointer) -> Bool {
        switch steering.target(of: head, localAddress: host.address) {
        case .arrivalCore: return true
        case .owner(let owner): return owner == core
        case .everyCore: return false
        }
    }

    /// After a frame: the connection that took in-order data from it is expected next,
    /// with headers as long as this frame's (`split`, or where its payload began in
    /// `frame`), if its client may be landed on.
    func followInOrderArrival(split: Int? = nil, frame: UnsafeRawBufferPointer? = nil) {
        guard let (socket, payload) = tcp.inOrderArrival, let start = payload.baseAddress else { return }
        tcp.inOrderArrival = nil
        guard payload.count >= Self.streamingPayload else { return }
        var headers = split
        if headers == nil, let frame, let base = frame.baseAddress, start >= base, start < base + frame.count {
            headers = start - base
        }
        guard let headers, headers > 0 else { return }
        if landingSocket === socket && landingSplit == headers { return }
        guard servesOneProgram(socket.client), let client = clientsByID[socket.client],
              client.uid == 0 || client.uid == stackUID else {
            landingSocket = nil; return
        }
        landingSocket = socket
        landingSplit = headers
    }
}
