/// The memory a shared region (ClientRegion) or a page (CoreWakePage) lies in, as the process
/// that made or mapped it reaches it: NetMPSystem's RegionFile, over a memfd or anonymous
/// memory. The region asks it to map its strides as sockets first use them, and to give
/// back a freed socket's pages, which the host's last hold on a socket can cause; the
/// mapping holds the memfd until the region is gone.
public protocol RegionMapping: AnyObject, Sendable {
    /// The memfd, for memory that can be mapped again; nil for anonymous memory.
    var descriptor: Int32? { get }
    /// `bytes` of the memory from `offset`, mapped readable and writable.
    func map(at offset: Int, bytes: Int) throws(ClientRegion.MemoryError) -> UnsafeMutableRawPointer
    /// Gives back a mapping `map` made.
    func unmap(_ address: UnsafeMutableRawPointer, bytes: Int)
    /// The pages of `bytes` from `offset`, mapped at `address`, read as zero from now on and
    /// cost nothing until touched again.
    func discard(at offset: Int, bytes: Int, mapped address: UnsafeMutableRawPointer)
}
