import CNetMPLinux
import Glibc
import NetMPChannel

/// Linux's calls for the channel (ChannelCalls): a futex wake, an eventfd write and
/// sched_yield, all raw system calls (in a client, write() is the shim's). Installed by
/// whatever in a process first maps channel memory (RegionFile), sleeps on a word or polls a
/// doorbell, all of which is here in NetMPSystem: a process that wakes anyone has done one
/// of them first.
public enum LinuxChannelCalls {
    /// Touch to install (once per process; later touches cost a load).
    public static let installed: Void = ChannelCalls.install(ChannelCalls(
        wakeSleepers: { address in _ = netmp_futex_wake(address, Int32.max) },
        ring: { eventfd in _ = netmp_doorbell_ring(eventfd) },
        yield: { _ = sched_yield() }))
}
