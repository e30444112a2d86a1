import CNetMPLinux
import Glibc
import NetMPChannel

extension CoreWakePage {
    /// A page for `cores` cores; `shared`: in a memfd, sealed so that only this mapping
    /// writes it.
    public convenience init?(cores: Int, shared: Bool = false) {
        precondition(cores > 0)
        let bytes = Self.bytes(cores: cores)
        var fd: Int32? = nil
        if shared {
            guard let made = try? RegionFile.made("netmp-cores", bytes: bytes, sealedAtSize: false) else { return nil }
            fd = made
        }
        let file = RegionFile(descriptor: fd)
        // The stack's own mapping is made before the seal, which refuses every later one
        // that could write.
        guard let mapped = try? file.map(at: 0, bytes: bytes) else { return nil }
        guard fd.map({ netmp_seal_read_only($0) == 0 }) ?? true else {
            file.unmap(mapped, bytes: bytes)
            return nil
        }
        self.init(cores: cores, memory: mapped, mapping: file)
    }

    /// The page in memfd `fd`, for `cores` cores (which this object then holds, dup'ed),
    /// mapped read-only; nil if the memfd is smaller than that.
    public convenience init?(mapping fd: Int32, cores: Int) {
        var status = stat()
        guard cores > 0, fstat(fd, &status) == 0, Int(status.st_size) >= Self.bytes(cores: cores),
              let own = try? RegionFile.duplicate(fd) else { return nil }
        let file = RegionFile(descriptor: own)
        let mapped = mmap(nil, Self.bytes(cores: cores), PROT_READ, MAP_SHARED, own, 0)
        guard let mapped, mapped != MAP_FAILED else { return nil }
        self.init(cores: cores, memory: mapped, mapping: file)
    }
}
