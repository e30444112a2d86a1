/// Why a link operation failed, in words; errno only where the kernel gave one.
public enum LinkError: Error, Equatable, Sendable, CustomStringConvertible {
    case noSuchDevice(String)
    case openFailed(device: String, errno: Int32)
    case ioctlFailed(what: String, errno: Int32)
    case readFailed(errno: Int32)
    case writeFailed(errno: Int32)
    /// The device went away under us (deleted, or its namespace removed).
    case deviceGone
    case truncatedVirtioHeader
    case unknownGSOType(UInt8)

    public var description: String {
        switch self {
        case .noSuchDevice(let name): "no TAP device \(name) in this network namespace (Scripts/lab up makes one)"
        case .openFailed(let device, let e) where e == EINVAL:
            "cannot attach TAP device \(device): it is not a TAP device (\(errnoText(e)))"
        case .openFailed(let device, let e) where e == EBUSY:
            "cannot attach TAP device \(device): another program holds it and it is not multiqueue (\(errnoText(e)))"
        case .openFailed(let device, let e): "cannot attach TAP device \(device): \(errnoText(e))"
        case .ioctlFailed(let what, let e): "\(what) failed: \(errnoText(e))"
        case .readFailed(let e): "TAP read failed: \(errnoText(e))"
        case .writeFailed(let e): "TAP write failed: \(errnoText(e))"
        case .deviceGone: "the TAP device went away"
        case .truncatedVirtioHeader: "frame shorter than its virtio-net header"
        case .unknownGSOType(let t): "unknown virtio-net GSO type \(t)"
        }
    }
}

#if canImport(Glibc)
import Glibc
func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) + " (errno \(e))" }
#endif
