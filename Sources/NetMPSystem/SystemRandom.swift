import CNetMPLinux

/// Secrets from the kernel's CSPRNG, for the pure layers that need keys (RFC 6528 ISNs).
public enum SystemRandom {
    public static func secret() -> (UInt64, UInt64) {
        var secret = (UInt64(0), UInt64(0))
        let ok = withUnsafeMutableBytes(of: &secret) { netmp_random($0.baseAddress, UInt($0.count)) == 0 }
        precondition(ok, "getrandom failed")
        return secret
    }
}
