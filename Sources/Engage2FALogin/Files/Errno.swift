import CEngageSys

/// An error number from a failed system call, as swift-system's `Errno`, with the call that failed.
public struct SystemError: Error, Equatable, CustomStringConvertible {
    public var call: String
    public var errno: Int32

    public init(_ call: String, errno: Int32 = lastErrno()) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call): \(String(cString: strerror(errno)))"
    }
}

/// Retries a system call interrupted by a signal (EINTR).
@inline(__always)
package func retryOnInterrupt<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}

/// errno(3) of the calling thread.
@inline(__always)
public func lastErrno() -> Int32 { errno }

/// A failure of the core's file and state operations, as one typed error: the PAM module is built
/// with Embedded Swift, which has no `any Error`.
public enum CoreError: Error, Equatable, CustomStringConvertible {
    case file(TrustedFileError)
    case deviceFile(DeviceFileError)
    case state(StateError)
    case system(SystemError)
    case deviceName(DeviceNameError)

    public var description: String {
        switch self {
        case .file(let error): error.description
        case .deviceFile(let error): error.description
        case .state(let error): error.description
        case .system(let error): error.description
        case .deviceName(let error): error.description
        }
    }
}
