import Glibc
import Synchronization

/// An integer counter shared between threads.
public final class AtomicCounter: @unchecked Sendable {
    let storage: Atomic<Int>
    public init(_ value: Int = 0) { storage = Atomic(value) }
    public var value: Int { storage.load(ordering: .acquiring) }
    @discardableResult public func increment() -> Int { storage.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue }
    @discardableResult public func decrement() -> Int { storage.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue }
}
