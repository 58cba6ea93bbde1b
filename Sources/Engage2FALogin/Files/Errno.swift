// Errors of system calls as values, for the file-system layer (FileSystem.swift) and its callers.

import CEngageSys

/// An error number (errno(3)) as a value, as swift-system's `Errno`.
public struct Errno: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// errno(3) of the calling thread, right after a call failed (through CEngageSys: errno is a C
    /// macro, which only the Glibc overlay, missing in Embedded Swift, would import).
    @inline(__always)
    public static var current: Errno { Errno(rawValue: e2f_errno()) }

    public static var noSuchFileOrDirectory: Errno { Errno(rawValue: ENOENT) }
    public static var fileExists: Errno { Errno(rawValue: EEXIST) }
    public static var tooManySymbolicLinkLevels: Errno { Errno(rawValue: ELOOP) }
    public static var notDirectory: Errno { Errno(rawValue: ENOTDIR) }
    public static var wouldBlock: Errno { Errno(rawValue: EWOULDBLOCK) }
    public static var interrupted: Errno { Errno(rawValue: EINTR) }
    public static var permissionDenied: Errno { Errno(rawValue: EACCES) }
    public static var notPermitted: Errno { Errno(rawValue: EPERM) }
    public static var noSpace: Errno { Errno(rawValue: ENOSPC) }
    public static var diskQuotaExceeded: Errno { Errno(rawValue: EDQUOT) }
    public static var readOnlyFileSystem: Errno { Errno(rawValue: EROFS) }
    public static var resultOutOfRange: Errno { Errno(rawValue: ERANGE) }

    /// strerror(3).
    public var description: String { String(cString: strerror(rawValue)) }
}

/// A failed system call: which one, and its error number.
public struct SystemError: Error, Equatable, CustomStringConvertible {
    public var call: String
    public var errno: Errno

    public init(_ call: String, _ errno: Errno = .current) {
        self.call = call
        self.errno = errno
    }

    public var description: String { MessageText("\(call): \(errno)").text }
}

/// Calls `body` again while it fails with EINTR; -1 becomes the error it set (swift-system's
/// `valueOrErrno(retryOnInterrupt:)`).
@inline(__always)
func valueOrErrno<T: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ body: () -> T) -> Result<T, Errno> {
    while true {
        let result = body()
        guard result == -1 else { return .success(result) }
        let error = Errno.current
        if retryOnInterrupt && error == .interrupted { continue }
        return .failure(error)
    }
}

/// `valueOrErrno`, thrown.
@inline(__always)
func systemCall<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> T {
    switch valueOrErrno(body) {
    case .success(let value): return value
    case .failure(let error): throw error
    }
}

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
