/// A queue whose one consumer takes items one at a time (the cores' message ports and
/// request rings): draining a bounded batch is the same for all of them.
public protocol SingleConsumerQueue {
    associatedtype Item
    /// The consumer only: the next item, if one is published.
    func receive() -> Item?
}

extension SingleConsumerQueue {
    /// The consumer only: handles up to `limit` items; returns how many. Inlinable, so a
    /// core's drain of its own port or ring is specialised, not a witness-table call per item.
    @discardableResult @inlinable
    public func drain(limit: Int = 512, _ handle: (Item) -> Void) -> Int {
        var count = 0
        while count < limit, let item = receive() {
            handle(item)
            count += 1
        }
        return count
    }
}
