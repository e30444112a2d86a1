import Glibc

/// A pthread mutex, for the few places off the data path that need mutual exclusion
/// (a doorbell's pollers, the port table, a socket's setup). Not Synchronization.Mutex:
/// ThreadSanitizer understands pthread mutexes, and the runtime's stress tests run under it.
public final class PthreadLock: @unchecked Sendable {
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    public init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    public func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
