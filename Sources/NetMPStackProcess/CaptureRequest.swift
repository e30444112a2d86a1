import CNetMPChannel
import CNetMPLinux
import Glibc
import NetMPChannel
import NetMPWire

/// `netmp capture`'s side of the door: it asks the stack process for a capture and waits
/// for its summary.
public enum CaptureRequest {
    /// Asks the stack serving `door` to capture into `output` (a descriptor this process
    /// opened; the stack gets a copy). On success, the connection: the capture runs until
    /// it is shut down or closed, or until the stack ends it (a limit), and then carries
    /// the summary (`summary`).
    public static func send(door: String, output: Int32, options: CaptureSession.Options) -> Result<Int32, AttachError> {
        var request = netmp_capture_request()
        request.hello = netmp_attach_hello(version: UInt32(NETMP_ATTACH_VERSION), request: UInt32(NETMP_HELLO_CAPTURE), client: 0, process: 0)
        request.snap_length = UInt32(options.snapLength)
        request.packet_limit = options.packetLimit
        request.byte_limit = options.byteLimit
        let text = Array((options.filter?.description ?? "").utf8)
        guard text.count < MemoryLayout.size(ofValue: request.filter) else { return .failure(.refused(errno: E2BIG)) }
        withUnsafeMutableBytes(of: &request.filter) { $0.copyBytes(from: text) }
        let fd = netmp_attach_connect(door)
        guard fd >= 0 else { return .failure(.noStack(errno: -fd)) }
        var given = output
        let sent = netmp_message_send(fd, &request, Int32(MemoryLayout<netmp_capture_request>.size), &given, 1)
        guard sent >= 0 else { close(fd); return .failure(.noStack(errno: -sent)) }
        var reply = netmp_attach_reply()
        var count: Int32 = 0
        let received = netmp_message_receive(fd, &reply, Int32(MemoryLayout<netmp_attach_reply>.size), nil, 0, &count)
        guard received == MemoryLayout<netmp_attach_reply>.size else {
            close(fd)
            return .failure(received <= 0 ? .noStack(errno: received < 0 ? -received : ECONNRESET) : .malformed("\(received) bytes"))
        }
        guard reply.error == 0 else { close(fd); return .failure(.refused(errno: reply.error)) }
        return .success(fd)
    }

    /// Waits for the summary the stack sends as the capture on `connection` ends (after
    /// a shutdown of it, or a limit), and closes the connection. Nil if the stack ended
    /// without one.
    public static func summary(_ connection: Int32) -> CaptureSession.Summary? {
        defer { close(connection) }
        var message = netmp_capture_summary()
        var count: Int32 = 0
        let received = netmp_message_receive(connection, &message, Int32(MemoryLayout<netmp_capture_summary>.size), nil, 0, &count)
        guard received == MemoryLayout<netmp_capture_summary>.size else { return nil }
        return CaptureSession.Summary(written: message.written, dropped: message.dropped, bytes: message.bytes,
                                      limitReached: message.limit_reached != 0, writeError: message.error)
    }
}
