import Synchronization

/// A producing core's own positions in a ring whose readers it does not trust (in the
/// stack service the ring's control block is a client's memory): it publishes its tail
/// and never reads it back, and takes the readers' head only when it moved forward and
/// not past what was published, counting any other value as impossible. Positions that no
/// reader and producer could have left (written before the producer came) start the ring
/// empty. So nothing a client writes makes the producer write past the free space, or
/// trap. A receive ring, a datagram queue and an accept queue keep one each.
struct ProducerPositions {
    // The ring's words are its holder's (passed to each call): a receive ring is made per
    // socket on each side of the stack service, and keeps no copies of its pointers.
    /// What the producer published.
    private(set) var tail: Int
    /// The readers' head as the producer last took it.
    private(set) var consumed: Int
    /// Times the head was somewhere no reader could have put it.
    private(set) var impossible = 0

    init(tail tailWord: UnsafeMutablePointer<Atomic<Int>>, head headWord: UnsafeMutablePointer<Atomic<Int>>, capacity: Int) {
        tail = tailWord.pointee.load(ordering: .acquiring)
        consumed = headWord.pointee.load(ordering: .acquiring)
        if !(0...capacity).contains(tail &- consumed) { consumed = tail }
    }

    /// The readers' head (at `headWord`), taken if it moved forward and not past the tail.
    mutating func takeHead(_ headWord: UnsafeMutablePointer<Atomic<Int>>) -> Int {
        let head = headWord.pointee.load(ordering: .acquiring)
        if head != consumed {
            if head &- consumed > 0 && tail &- head >= 0 { consumed = head } else { impossible &+= 1 }
        }
        return consumed
    }

    /// Published and not yet taken by readers, as the producer sees it.
    mutating func unread(_ headWord: UnsafeMutablePointer<Atomic<Int>>) -> Int { tail &- takeHead(headWord) }

    /// Makes `count` more published, at `tailWord`.
    mutating func publish(_ count: Int, at tailWord: UnsafeMutablePointer<Atomic<Int>>) {
        tail &+= count
        tailWord.pointee.store(tail, ordering: .releasing)
    }
}
