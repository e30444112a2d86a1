import CNetMPLinux
import NetMPChannel

/// A doorbell's pollers (poll, select and epoll in the program's threads): their count under
/// a lock, the naming of a placeholder to the stack, and the emptying of the eventfd. The
/// channel keeps the words and the ring; these make system calls, so they live here.
extension Doorbell {
    /// The pollers' lock, made by the first poller (Doorbell.pollersLock keeps it).
    var lock: PthreadLock {
        if let kept = UnsafeRawPointer(bitPattern: pollersLock.load(ordering: .acquiring)) {
            return Unmanaged<PthreadLock>.fromOpaque(kept).takeUnretainedValue()
        }
        let fresh = PthreadLock()
        let made = Unmanaged.passRetained(fresh)
        let (won, current) = pollersLock.compareExchange(expected: 0, desired: UInt(bitPattern: made.toOpaque()),
                                                         ordering: .acquiringAndReleasing)
        if won { return fresh }
        made.release()
        return Unmanaged<PthreadLock>.fromOpaque(UnsafeRawPointer(bitPattern: current)!).takeUnretainedValue()
    }

    /// A poller arrives; it must check readiness after this and before sleeping.
    /// `placeholder`: the descriptor it sleeps on, when `placeheld` (its number as the
    /// program passed it: another may have been closed since).
    public func enter(through placeholder: Int32 = -1) {
        _ = LinuxChannelCalls.installed
        if let naming, let slot, !named.load(ordering: .acquiring), placeheld, placeholder >= 0 {
            // Named before this poller counts: a core that sees the poller then finds the
            // stack's bell, or the stack rings the bell as it makes it.
            if !named.exchange(true, ordering: .acquiringAndReleasing), !name(slot, through: placeholder, naming) {
                named.store(false, ordering: .releasing)
            }
        }
        lock.locked { _ = pollers.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent) }
    }

    /// Hands the placeholder to the stack, with the common bell in it: the stack puts a
    /// bell of its own into it (`netmp_bell_into`) and rings that. Only placeholders are
    /// named: the stack takes nothing else.
    private func name(_ slot: UInt32, through placeholder: Int32, _ naming: @Sendable (UInt32, Int32, UInt32) -> Bool) -> Bool {
        guard placeheld, netmp_placeholder_join(placeholder, fd) == 0 else { return false }
        return naming(slot, placeholder, names.pointee.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue)
    }

    /// A poller leaves; `rung`: its sleep saw the eventfd readable. The last poller to
    /// leave empties the eventfd when one saw it so: a level-triggered sleep (poll) would
    /// otherwise end at once next time. epoll registers the eventfd edge-triggered, where a
    /// count left over wakes nobody, so an epoll member leaving (a connection closed under
    /// nginx) costs no read; a count nobody saw waits for the poll() that sees it.
    /// `placeholder` as for `enter`; -1 when the poller's number no longer names the
    /// socket, and the count stays for a later poller (the common bell is never emptied:
    /// other sockets' pollers may not have seen it yet).
    public func leave(rung: Bool, through placeholder: Int32 = -1) {
        lock.locked {
            if rung { countSeen = true }
            if pollers.pointee.wrappingSubtract(1, ordering: .sequentiallyConsistent).newValue == 0 && countSeen {
                if !placeheld {
                    countSeen = false
                    let fd = self.fd
                    if fd >= 0 { _ = netmp_doorbell_drain(fd) }
                } else if placeholder >= 0 {
                    countSeen = false
                    _ = netmp_placeholder_drain(placeholder)
                }
            }
        }
    }
}
