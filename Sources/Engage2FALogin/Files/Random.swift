import CEngageSys

/// Bytes from the kernel's CSPRNG (getrandom(2)), the only source of secrets, salts and ids.
public func secureRandomBytes(_ count: Int) throws(SystemError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var filled = 0
    while filled < count {
        let result = bytes.withUnsafeMutableBytes { buffer in valueOrErrno { e2f_getrandom(buffer.baseAddress! + filled, count - filled) } }
        switch result {
        case .success(let got): filled += got
        case .failure(let error): throw SystemError("getrandom", error)
        }
    }
    return bytes
}
