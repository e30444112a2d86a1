import CNetMPLinux
import Glibc
import Synchronization

/// How poll, select and epoll in other threads learn that a netmp socket changed: the
/// socket's file descriptor is an eventfd (the shim's design), and whoever changes the
/// socket's readiness rings it, but only while someone polls. A poller registers, checks
/// readiness, and only then sleeps in the kernel on the eventfd; the changer publishes the
/// change before it looks for pollers. Either the poller sees the change or the changer
/// sees the poller, so no wakeup is lost.
///
/// The eventfd is emptied only when the last poller leaves (under `lock`, which only
/// pollers take): emptying it while another poller sleeps on it could swallow that
/// poller's wakeup. Epoll registrations count as pollers for as long as they last, and
/// see the eventfd edge-triggered.
public final class Doorbell: @unchecked Sendable {
    let descriptor = Atomic<Int32>(-1)
    let pollers = Atomic<Int>(0)
    let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() { pthread_mutex_init(lock, nil) }
    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// The eventfd to ring (set once the shim made the socket's descriptor).
    public var fd: Int32 {
        get { descriptor.load(ordering: .acquiring) }
        set { descriptor.store(newValue, ordering: .releasing) }
    }

    /// Rings made while someone polled: a datagram socket's stand-in for "something
    /// arrived" (epoll's edge-triggered mode).
    public let rings = Atomic<Int>(0)

    /// After a change that may make the socket readable or writable, or end it.
    public func ring() {
        guard pollers.load(ordering: .sequentiallyConsistent) > 0 else { return }
        rings.add(1, ordering: .relaxed)
        let fd = descriptor.load(ordering: .acquiring)
        if fd >= 0 { _ = netmp_doorbell_ring(fd) }
    }

    /// A poller arrives; it must check readiness after this and before sleeping.
    public func enter() {
        pthread_mutex_lock(lock)
        pollers.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(lock)
    }

    /// A poller leaves; the last one empties the eventfd.
    public func leave() {
        pthread_mutex_lock(lock)
        if pollers.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 {
            let fd = descriptor.load(ordering: .acquiring)
            if fd >= 0 { _ = netmp_doorbell_drain(fd) }
        }
        pthread_mutex_unlock(lock)
    }
}
