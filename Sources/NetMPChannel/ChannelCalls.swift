import Synchronization

/// The system calls the channel's own code needs, and the only ones: waking the sleepers on
/// a wait word, ringing an eventfd (a doorbell or a core's bell), and giving the CPU away
/// while another writer finishes its turn (sched_yield). The host publishes into rings and
/// so wakes, and it is held to the pure protocol's rule (no module doing I/O); so the
/// channel asks for these three through a table that the process installs once, before its
/// first wake (NetMPSystem's `LinuxChannelCalls`, from every place that maps a region,
/// sleeps on a word or polls a doorbell: a sleeper a process can wake is in memory the
/// process mapped, or one of its own threads, which installed the table as it went to sleep).
/// Everything else the channel's memory needs (mapping it, sleeping, the pollers' lock)
/// lives with the process's side too, in NetMPSystem.
///
/// C function pointers in memory that is never freed: a wake loads one word and calls, with
/// no reference counting between cores.
public struct ChannelCalls: Sendable {
    /// Wakes every thread asleep on the futex word at the address.
    public let wakeSleepers: @convention(c) (UnsafeMutablePointer<UInt32>) -> Void
    /// Adds one to the eventfd's count.
    public let ring: @convention(c) (Int32) -> Void
    /// Lets another thread run (a writer waiting for an earlier one to commit).
    public let yield: @convention(c) () -> Void

    public init(wakeSleepers: @convention(c) (UnsafeMutablePointer<UInt32>) -> Void,
                ring: @convention(c) (Int32) -> Void, yield: @convention(c) () -> Void) {
        self.wakeSleepers = wakeSleepers
        self.ring = ring
        self.yield = yield
    }

    static let table = Atomic<UInt>(0)

    /// Installs `calls` unless a table is installed already (the first stays: a process
    /// has one kernel). Safe from any thread, at any time.
    public static func install(_ calls: ChannelCalls) {
        let made = UnsafeMutablePointer<ChannelCalls>.allocate(capacity: 1)
        made.initialize(to: calls)
        if !table.compareExchange(expected: 0, desired: UInt(bitPattern: made), ordering: .acquiringAndReleasing).exchanged {
            made.deinitialize(count: 1)
            made.deallocate()
        }
    }

    public static var isInstalled: Bool { table.load(ordering: .acquiring) != 0 }

    /// The installed table. A wake with none installed is a process that made channel
    /// memory without NetMPSystem: stopped here, never a wakeup lost in silence.
    static var current: UnsafePointer<ChannelCalls> {
        guard let installed = UnsafePointer<ChannelCalls>(bitPattern: table.load(ordering: .acquiring)) else {
            preconditionFailure("netmp: a channel woke a sleeper before any ChannelCalls were installed")
        }
        return installed
    }

    /// A turn of a wait for another thread (an earlier writer's commit, a peer being
    /// written): the CPU is given away. With no table installed (the channel's memory made
    /// alone, as some tests do) the turn is spun: slower, never wrong.
    @inline(__always)
    static func yield() {
        if let installed = UnsafePointer<ChannelCalls>(bitPattern: table.load(ordering: .acquiring)) { installed.pointee.yield() }
    }
}
