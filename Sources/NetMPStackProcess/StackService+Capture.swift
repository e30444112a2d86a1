import CNetMPChannel
import CNetMPLinux
import Glibc
import NetMPWire

extension StackService {
    /// A `netmp capture` asks: the stack's own uid and root may (a capture shows every
    /// program's traffic, as tcpdump needs CAP_NET_RAW), one at a time.
    func startCapture(_ fd: Int32, _ request: netmp_capture_request, output: Int32?, pid: Int32, uid: uid_t) {
        guard let output else {
            log.info("stack: process \(pid) asked for a capture without a file")
            return refuse(fd, EPROTO)
        }
        guard uid == getuid() || uid == 0 else {
            close(output)
            log.info("stack: process \(pid) of uid \(uid) asked for a capture; refused")
            return refuse(fd, EACCES)
        }
        guard capture == nil else {
            close(output)
            return refuse(fd, EBUSY)
        }
        var text = request.filter
        let filterText = withUnsafeBytes(of: &text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let filter: CaptureFilter
        do { filter = try CaptureFilter(filterText) } catch {
            close(output)
            return refuse(fd, EINVAL)
        }
        let options = CaptureSession.Options(filter: filter, snapLength: Int(request.snap_length),
                                             packetLimit: request.packet_limit, byteLimit: request.byte_limit)
        do { capture = (fd, try stack.startCapture(into: output, options: options)) } catch {
            log.info("stack: capture for process \(pid): \(error)")
            if case .capture(let e) = error { return refuse(fd, e) }
            return refuse(fd, ENOMEM)
        }
        log.info("stack: process \(pid) captures\(filterText.isEmpty ? "" : " '\(filterText)'")")
        var reply = netmp_attach_reply()
        reply.version = UInt32(NETMP_ATTACH_VERSION)
        _ = netmp_message_send(fd, &reply, Int32(MemoryLayout<netmp_attach_reply>.size), nil, 0)
    }

    /// The stack's own capture (NETMP_CAPTURE), into `path`, until the stack ends.
    public func capture(to path: String, options: CaptureSession.Options) throws(StackProcessError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .capture(errno: errno) }
        capture = (nil, try stack.startCapture(into: fd, options: options))
    }

    /// Ends the capture: the cores stop writing into it, its file is complete, and the
    /// asker (if any) gets the summary.
    func endCapture() {
        guard let (asker, session) = capture else { return }
        capture = nil
        let summary = stack.stopCapture(session)
        log.info("stack: capture ended: \(summary.written) packets written, \(summary.dropped) dropped")
        guard let asker else { return }
        var message = netmp_capture_summary()
        message.version = UInt32(NETMP_ATTACH_VERSION)
        message.error = summary.writeError
        message.written = summary.written
        message.dropped = summary.dropped
        message.bytes = summary.bytes
        message.limit_reached = summary.limitReached ? 1 : 0
        _ = netmp_message_send(asker, &message, Int32(MemoryLayout<netmp_capture_summary>.size), nil, 0)
        close(asker)
    }
}
