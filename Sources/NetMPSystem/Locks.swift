import Glibc
import NetMPChannel
import Synchronization

/// An integer counter shared between threads.
public final class AtomicCounter: @unchecked Sendable {
    let storage: Atomic<Int>
    public init(_ value: Int = 0) { storage = Atomic(value) }
    public var value: Int { storage.load(ordering: .acquiring) }
    @discardableResult public func increment() -> Int { storage.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue }
    @discardableResult public func decrement() -> Int { storage.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue }
}

/// An object made once, by whichever thread asks first, and then shared: how a module that
/// may not see a type holds one for a module that does (NetworkStack's in-process client).
public final class OnceObject: @unchecked Sendable {
    private var object: AnyObject?
    private let lock = PthreadLock()
    public init() {}

    public func get<T: AnyObject>(_ make: () -> T) -> T {
        lock.locked {
            if let object { return object as! T }
            let made = make()
            object = made
            return made
        }
    }
}
