import Synchronization

/// Where a view of a client's doorbell on the stack's side reads the eventfd it rings: the
/// stack process's own copy of the bell it put into the client's placeholder (the stack
/// process's DoorbellDescriptors), never a number read from the client's memory.
public protocol BellCopies: AnyObject, Sendable {
    /// The word (the descriptor + 1, 0 for none) for the doorbell in `slot`; nil for a
    /// slot past the table.
    func word(_ slot: UInt32) -> UnsafeMutablePointer<Atomic<Int32>>?
}
