import CNetMPLinux
import Glibc
import NetMPWire

/// TUN_F_* offload bits for TUNSETOFFLOAD (include/uapi/linux/if_tun.h).
public struct TAPOffloads: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let checksum = TAPOffloads(rawValue: 0x01)
    public static let tso4 = TAPOffloads(rawValue: 0x02)
    public static let tso6 = TAPOffloads(rawValue: 0x04)
    public static let tsoECN = TAPOffloads(rawValue: 0x08)
    public static let ufo = TAPOffloads(rawValue: 0x10)
}

/// A TAP device attached by name: one file descriptor per queue (IFF_MULTI_QUEUE), each
/// owned by one protocol thread. Closing the device detaches every queue; a TAP that was
/// not made persistent disappears with its last queue.
public final class TAPDevice {
    public let name: String
    public let queues: [TAPQueue]
    public let virtioHeader: Bool

    /// Attaches `queueCount` queues of TAP `name`. An absent device is created only when
    /// `create` says so: the stack attaches to the device the user named and never makes one
    /// in whatever namespace it happens to run in.
    /// A multiqueue-capable device is attached with IFF_MULTI_QUEUE; a single-queue device
    /// (made without `multi_queue`) is accepted when one queue is asked for. With
    /// `virtioHeader`, every frame carries a virtio-net header and the device's offloads are
    /// reset to `offloads`: a persistent TAP keeps the flags of its previous user.
    public init(name: String, queueCount: Int = 1, create: Bool = false, virtioHeader: Bool = true,
                offloads: TAPOffloads = []) throws(LinkError) {
        precondition(queueCount >= 1)
        guard create || netmp_interface_index(name) > 0 else { throw .noSuchDevice(name) }
        var fds: [Int32] = []
        var actualName = name
        let flags: Int32 = virtioHeader ? NETMP_TAP_VNET_HDR : 0
        for index in 0..<queueCount {
            var result = Self.attach(name, flags: flags | NETMP_TAP_MULTI_QUEUE, actual: &actualName)
            if index == 0 && result == -EINVAL && queueCount == 1 {
                result = Self.attach(name, flags: flags, actual: &actualName) // a single-queue device
            }
            guard result >= 0 else {
                fds.forEach { _ = close($0) }
                throw .openFailed(device: name, errno: -result)
            }
            fds.append(result)
        }
        if virtioHeader {
            for fd in fds {
                let r1 = netmp_tap_set_vnet_header_size(fd, Int32(VirtioNetHeader.length))
                let r2 = netmp_tap_set_offload(fd, offloads.rawValue)
                guard r1 == 0, r2 == 0 else {
                    fds.forEach { _ = close($0) }
                    throw .ioctlFailed(what: r1 != 0 ? "TUNSETVNETHDRSZ" : "TUNSETOFFLOAD", errno: -(r1 != 0 ? r1 : r2))
                }
            }
        }
        self.name = actualName
        self.virtioHeader = virtioHeader
        self.offloads = virtioHeader ? offloads : []
        queues = fds.enumerated().map { TAPQueue(fd: $1, index: $0, virtioHeader: virtioHeader) }
    }

    /// The offloads in force (TUNSETOFFLOAD's flags the kernel accepted).
    public private(set) var offloads: TAPOffloads

    /// The offload sets netmp asks for, best first: checksum with TSO for both families,
    /// then IPv4 only, then checksum alone, then nothing (TUN_F_CSUM must come with TSO).
    public static let offloadPreferences: [TAPOffloads] = [[.checksum, .tso4, .tso6], [.checksum, .tso4], [.checksum], []]

    /// Turns on the best of `preferences` the kernel accepts, on every queue (the flags are
    /// the device's), and returns it; a refusal falls back to the next set.
    @discardableResult
    public func negotiateOffloads(_ preferences: [TAPOffloads] = TAPDevice.offloadPreferences) -> TAPOffloads {
        guard virtioHeader else { return [] }
        for wanted in preferences {
            if queues.allSatisfy({ netmp_tap_set_offload($0.fd, wanted.rawValue) == 0 }) {
                offloads = wanted
                return wanted
            }
        }
        offloads = []
        return []
    }

    static func attach(_ name: String, flags: Int32, actual: inout String) -> Int32 {
        var buffer = [CChar](repeating: 0, count: 16)
        let fd = netmp_tap_attach(name, flags, &buffer)
        if fd >= 0 { actual = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return fd
    }

    /// Attaches or detaches every queue (TUNSETQUEUE): a detached queue stays open but the
    /// device steers no frame to it. Needs no privilege, unlike opening a queue.
    /// Every queue is tried; the first failure is thrown after.
    public func setQueuesEnabled(_ enabled: Bool) throws(LinkError) {
        var failure: Int32 = 0
        for queue in queues {
            let r = netmp_tap_set_queue_enabled(queue.fd, enabled ? 1 : 0)
            if r != 0 && failure == 0 { failure = -r }
        }
        if failure != 0 { throw .ioctlFailed(what: "TUNSETQUEUE", errno: failure) }
    }

    /// Makes the device pick each frame's queue with the eBPF program `instructions` (a
    /// socket filter returning the queue's index; TUNSETSTEERINGEBPF), or with its own flow
    /// table and hash again (nil). The program stays with the device until replaced, also
    /// after this process ends: a stack sets or clears it when it attaches. Loading needs
    /// CAP_BPF or CAP_SYS_ADMIN where unprivileged BPF is off; a program the verifier
    /// refuses throws with the verifier's last words.
    public func setSteering(_ instructions: [UInt64]?) throws(LinkError) {
        guard let instructions else {
            let r = netmp_tap_set_steering(queues[0].fd, -1)
            guard r == 0 else { throw .ioctlFailed(what: "TUNSETSTEERINGEBPF", errno: -r) }
            return
        }
        var log = [CChar](repeating: 0, count: 1 << 16)
        let program = instructions.withUnsafeBufferPointer {
            netmp_bpf_load_socket_filter($0.baseAddress, Int32($0.count), &log, UInt32(log.count))
        }
        guard program >= 0 else {
            let said = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                .split(separator: "\n").suffix(2).joined(separator: "; ")
            throw .ioctlFailed(what: "BPF_PROG_LOAD" + (said.isEmpty ? "" : " (\(said))"), errno: -program)
        }
        defer { close(program) } // the device holds the program
        let r = netmp_tap_set_steering(queues[0].fd, program)
        guard r == 0 else { throw .ioctlFailed(what: "TUNSETSTEERINGEBPF", errno: -r) }
    }

    /// Keeps the device after the last queue closes (what `ip tuntap add` does).
    public func setPersistent(_ persistent: Bool) throws(LinkError) {
        let r = netmp_tap_set_persistent(queues[0].fd, persistent ? 1 : 0)
        guard r == 0 else { throw .ioctlFailed(what: "TUNSETPERSIST", errno: -r) }
    }

    /// The kernel side's MAC address (not netmp's: netmp's MAC is its own, on the frames).
    public func kernelMAC() throws(LinkError) -> MACAddress {
        var octets = [UInt8](repeating: 0, count: 6)
        let r = netmp_interface_mac(name, &octets)
        guard r == 0 else { throw .ioctlFailed(what: "SIOCGIFHWADDR", errno: -r) }
        return MACAddress(octets)
    }

    public func setKernelMAC(_ mac: MACAddress) throws(LinkError) {
        let r = netmp_interface_set_mac(name, mac.octets)
        guard r == 0 else { throw .ioctlFailed(what: "SIOCSIFHWADDR", errno: -r) }
    }

    deinit { queues.forEach { _ = close($0.fd) } }
}

/// One queue of a TAP device: one frame per read or write (readv/writev do not batch on a
/// TAP). Non-blocking: the owner polls `fd`.
public struct TAPQueue: Sendable {
    public let fd: Int32
    public let index: Int
    public let virtioHeader: Bool

    /// A queue over any descriptor that carries one frame per read and write: a TAP queue,
    /// or in tests one end of a SEQPACKET socket pair standing in for the wire.
    public init(fd: Int32, index: Int, virtioHeader: Bool) {
        self.fd = fd; self.index = index; self.virtioHeader = virtioHeader
    }

    /// Bytes in front of each frame in a receive buffer.
    public var headroom: Int { virtioHeader ? VirtioNetHeader.length : 0 }

    /// Reads one frame into `buffer`: the virtio header (if any) first, the frame after it.
    /// Returns nil when no frame is waiting.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(LinkError) -> (header: VirtioNetHeader, frame: UnsafeRawBufferPointer)? {
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 {
                let all = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                guard virtioHeader else { return (.none, all) }
                let header = try VirtioNetHeader(parsing: all)
                return (header, UnsafeRawBufferPointer(rebasing: all[VirtioNetHeader.length...]))
            }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            case EBADFD, EBADF, ENODEV, ENXIO: throw .deviceGone
            case let e: throw .readFailed(errno: e)
            }
        }
    }

    /// Reads one frame as `receive(into:)` does, but in two places: the frame's first
    /// `split` bytes (after the virtio header) into `buffer`, the next ones into `landing`
    /// (a receive ring's free space, where a TCP segment's payload may stay), and any that do
    /// not fit there into `buffer` again, as far along as they would be had `landing` been
    /// part of it: copying what landed back behind the first `split` bytes gives the
    /// frame whole. Returns the virtio header and the frame's length; nil when no frame is
    /// waiting. `landing` must fit in `buffer` behind the split (headroom, `split`, landing).
    public func receive(into buffer: UnsafeMutableRawBufferPointer, split: Int,
                        landing: UnsafeMutableRawBufferPointer) throws(LinkError) -> (header: VirtioNetHeader, length: Int)? {
        let front = headroom + split
        precondition(split > 0 && front + landing.count <= buffer.count, "landing past the receive buffer")
        let base = buffer.baseAddress!
        // Three iovecs on the stack: no allocation per frame.
        var vectors = (iovec(iov_base: base, iov_len: front),
                       iovec(iov_base: landing.baseAddress, iov_len: landing.count),
                       iovec(iov_base: base + front + landing.count, iov_len: buffer.count - front - landing.count))
        while true {
            let n = withUnsafeMutablePointer(to: &vectors) {
                $0.withMemoryRebound(to: iovec.self, capacity: 3) { readv(fd, $0, 3) }
            }
            if n >= 0 {
                guard virtioHeader else { return (.none, n) }
                // The virtio header is all in `buffer`'s front (split > 0).
                let header = try VirtioNetHeader(parsing: UnsafeRawBufferPointer(rebasing: buffer[0..<min(n, front)]))
                return (header, n - VirtioNetHeader.length)
            }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            case EBADFD, EBADF, ENODEV, ENXIO: throw .deviceGone
            case let e: throw .readFailed(errno: e)
            }
        }
    }

    /// Writes one frame (and its virtio header) in one system call; a `payload` left in
    /// place is gathered after `frame` by the same write.
    public func transmit(_ frame: UnsafeRawBufferPointer, offload: FrameOffload, payload: PayloadSpans = .none) throws(LinkError) {
        try transmit(frame, header: VirtioNetHeader(offload), payload: payload)
    }

    /// Writes one frame (and its virtio header) in one system call, `payload` after it.
    public func transmit(_ frame: UnsafeRawBufferPointer, header: VirtioNetHeader = .none,
                         payload: PayloadSpans = .none) throws(LinkError) {
        var headerBytes: (UInt64, UInt64) = (0, 0)
        while true {
            let n = withUnsafeMutableBytes(of: &headerBytes) { raw in
                header.emit(into: raw)
                // Up to four iovecs on the stack: no allocation per frame.
                func vector(_ bytes: UnsafeRawBufferPointer) -> iovec {
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                }
                var vectors = (vector(UnsafeRawBufferPointer(rebasing: raw[0..<VirtioNetHeader.length])), vector(frame),
                               vector(payload.first), vector(payload.second))
                let count = 2 + (payload.first.isEmpty ? 0 : 1) + (payload.second.isEmpty ? 0 : 1)
                return withUnsafeMutablePointer(to: &vectors) {
                    $0.withMemoryRebound(to: iovec.self, capacity: 4) { all in
                        virtioHeader ? writev(fd, all, Int32(count)) : writev(fd, all + 1, Int32(count - 1))
                    }
                }
            }
            if n >= 0 { return }
            switch errno {
            case EINTR: continue
            case EBADFD, EBADF, ENODEV, ENXIO, EIO: throw .deviceGone
            case let e: throw .writeFailed(errno: e)
            }
        }
    }
}
