import CEngageSys

/// Bytes from the kernel's CSPRNG (getrandom(2)), the only source of secrets, salts and ids.
public func secureRandomBytes(_ count: Int) throws(SystemError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var filled = 0
    while filled < count {
        let got = bytes.withUnsafeMutableBytes { e2f_getrandom($0.baseAddress! + filled, count - filled) }
        if got < 0 {
            if errno == EINTR { continue }
            throw SystemError("getrandom")
        }
        filled += got
    }
    return bytes
}
