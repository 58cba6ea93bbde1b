// The one layer between the core and the kernel's file-system calls, in the manner of apple/swift-system:
// a descriptor type that owns what it opened, errors as values, permissions as an option set, stat
// results as a type. Every open(2) here adds O_CLOEXEC (nothing leaks into a program the host runs)
// and O_NOFOLLOW (no symbolic link is followed unless asked), and every call interrupted by a signal
// is retried, so no caller sees EINTR. The calls come from CEngageSys's C declarations, the same in
// the Embedded and the ordinary build (the Glibc overlay exists only in the latter), and no mode bit
// is spelled outside this file.

import CEngageSys

// close(2), read(2) and rename(2) under names the methods below do not shadow.
@inline(__always) private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
@inline(__always) private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
@inline(__always) private func systemRename(_ from: UnsafePointer<CChar>, _ to: UnsafePointer<CChar>) -> Int32 { rename(from, to) }

// MARK: Permissions, types, status

/// The permission bits of a mode (st_mode & 07777), as swift-system's `FilePermissions`.
public struct FilePermissions: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: mode_t

    public init(rawValue: mode_t) { self.rawValue = rawValue & 0o7777 }

    public static var ownerRead: FilePermissions { FilePermissions(rawValue: 0o400) }
    public static var ownerWrite: FilePermissions { FilePermissions(rawValue: 0o200) }
    public static var ownerExecute: FilePermissions { FilePermissions(rawValue: 0o100) }
    public static var groupRead: FilePermissions { FilePermissions(rawValue: 0o040) }
    public static var groupWrite: FilePermissions { FilePermissions(rawValue: 0o020) }
    public static var groupExecute: FilePermissions { FilePermissions(rawValue: 0o010) }
    public static var otherRead: FilePermissions { FilePermissions(rawValue: 0o004) }
    public static var otherWrite: FilePermissions { FilePermissions(rawValue: 0o002) }
    public static var otherExecute: FilePermissions { FilePermissions(rawValue: 0o001) }

    /// rw------- (600): a private file.
    public static var ownerReadWrite: FilePermissions { [.ownerRead, .ownerWrite] }
    /// rw-r----- (640): the owner writes, the file's group reads.
    public static var ownerReadWriteGroupRead: FilePermissions { [.ownerRead, .ownerWrite, .groupRead] }
    /// rw-r--r-- (644): the owner writes, everyone reads.
    public static var ownerReadWriteAllRead: FilePermissions { [.ownerRead, .ownerWrite, .groupRead, .otherRead] }
    /// rwxr-xr-x (755): a directory everyone may list, only its owner change.
    public static var directoryAllRead: FilePermissions { FilePermissions(rawValue: 0o755) }
    /// rwx--x--x (711): a directory everyone may pass through by name, nobody but its owner list.
    public static var directoryAllSearch: FilePermissions { FilePermissions(rawValue: 0o711) }
    /// Every group and other bit: none of them may be set on a private file.
    public static var groupOrOthersAny: FilePermissions { FilePermissions(rawValue: 0o077) }
    /// Group and other write: none may be set on a file only its owner may change.
    public static var groupOrOthersWrite: FilePermissions { [.groupWrite, .otherWrite] }

    /// rwx of owner, group and others (without setuid, setgid, sticky).
    public var accessBits: FilePermissions { FilePermissions(rawValue: rawValue & 0o777) }

    /// The group and other bits among these as chmod(1)'s letters: "w", "rwx".
    public var groupAndOtherLetters: String {
        var text = ""
        if !isDisjoint(with: [.groupRead, .otherRead]) { text += "r" }
        if !isDisjoint(with: [.groupWrite, .otherWrite]) { text += "w" }
        if !isDisjoint(with: [.groupExecute, .otherExecute]) { text += "x" }
        return text
    }

    /// Octal, as chmod(1) takes it ("644", "1777").
    public var description: String { String(rawValue, radix: 8) }
}

/// The type of a file (st_mode & S_IFMT).
public enum FileType: Equatable, Sendable {
    case regular, directory, symbolicLink, other

    init(mode: mode_t) {
        // S_IFMT and its values: the Glibc overlay and the C headers both declare the names, which
        // makes them ambiguous outside Embedded Swift.
        switch mode & 0o170000 {
        case 0o100000: self = .regular
        case 0o040000: self = .directory
        case 0o120000: self = .symbolicLink
        default: self = .other
        }
    }
}

/// What stat(2) says of a file, as far as this code base asks.
public struct FileStatus: Equatable, Sendable {
    public var type: FileType
    public var permissions: FilePermissions
    public var owner: uid_t
    public var group: gid_t
    public var size: Int
    public var device: UInt64
    public var inode: UInt64

    @inline(__always)
    init(_ info: stat) {
        type = FileType(mode: info.st_mode)
        permissions = FilePermissions(rawValue: info.st_mode)
        owner = info.st_uid
        group = info.st_gid
        size = Int(info.st_size)
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    /// stat(2), or lstat(2) when not following a final symbolic link (both as fstatat(2)).
    public init(path: String, followSymbolicLinks: Bool) throws(Errno) {
        var info = stat()
        if let error = path.withCString({ fileStatus($0, followSymbolicLinks: followSymbolicLinks, into: &info) }) { throw error }
        self.init(info)
    }

    /// lstat(2) of a path kept as NUL-terminated bytes.
    public init(cPath: [UInt8]) throws(Errno) {
        var info = stat()
        if let error = cPath.withUnsafeBytes({ fileStatus($0.baseAddress!.assumingMemoryBound(to: CChar.self), followSymbolicLinks: false, into: &info) }) {
            throw error
        }
        self.init(info)
    }
}

/// stat(2) or lstat(2) of a NUL-terminated path into `info`; the error, if any. One copy for both kinds of path.
@inline(never)
private func fileStatus(_ cPath: UnsafePointer<CChar>, followSymbolicLinks: Bool, into info: inout stat) -> Errno? {
    if case .failure(let error) = valueOrErrno({ e2f_stat(cPath, &info, followSymbolicLinks ? 1 : 0) }) { return error }
    return nil
}

// MARK: Descriptors

/// An open file descriptor, as swift-system's `FileDescriptor`: the opener closes it, with `close()`
/// or, better, `closeAfter`.
public struct FileDescriptor: Equatable, Sendable {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// open(2)'s flags beyond the access mode. O_CLOEXEC and O_NOFOLLOW are always added, unless
    /// `followSymbolicLink` is given.
    public struct OpenOptions: OptionSet, Sendable {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static var create: OpenOptions { OpenOptions(rawValue: O_CREAT) }
        /// With `create`: fail if the name exists (O_EXCL).
        public static var exclusiveCreate: OpenOptions { OpenOptions(rawValue: O_CREAT | O_EXCL) }
        public static var truncate: OpenOptions { OpenOptions(rawValue: O_TRUNC) }
        public static var directory: OpenOptions { OpenOptions(rawValue: O_DIRECTORY) }
        /// No waiting on a FIFO or device someone put in the file's place (O_NONBLOCK).
        public static var nonBlocking: OpenOptions { OpenOptions(rawValue: O_NONBLOCK) }
        /// A terminal opened does not become the process's controlling one (O_NOCTTY).
        public static var noControllingTerminal: OpenOptions { OpenOptions(rawValue: O_NOCTTY) }
        /// Leaves O_NOFOLLOW out.
        public static var followSymbolicLink: OpenOptions { OpenOptions(rawValue: 1 << 30) }

        @inline(__always)
        var flags: Int32 {
            let follow = OpenOptions.followSymbolicLink.rawValue
            return (rawValue & ~follow) | O_CLOEXEC | (rawValue & follow != 0 ? 0 : O_NOFOLLOW)
        }
    }

    public enum AccessMode: Int32, Sendable {
        case readOnly, writeOnly, readWrite

        var flags: Int32 {
            switch self {
            case .readOnly: O_RDONLY
            case .writeOnly: O_WRONLY
            case .readWrite: O_RDWR
            }
        }
    }

    /// open(2).
    public static func open(
        _ path: String, _ mode: AccessMode, options: OpenOptions = [], permissions: FilePermissions = []
    ) throws(Errno) -> FileDescriptor {
        let flags = mode.flags | options.flags
        let fd = try path.withCString { cPath in valueOrErrno { e2f_open(cPath, flags, permissions.rawValue) } }.get()
        return FileDescriptor(rawValue: fd)
    }

    /// open(2) of a NUL-terminated C string (a path built on the stack: no String made for the kernel's sake).
    public static func open(
        cPath: UnsafePointer<CChar>, _ mode: AccessMode, options: OpenOptions = [], permissions: FilePermissions = []
    ) throws(Errno) -> FileDescriptor {
        let flags = mode.flags | options.flags
        return FileDescriptor(rawValue: try systemCall { e2f_open(cPath, flags, permissions.rawValue) })
    }

    /// openat(2): `name`, a NUL-terminated C string, relative to this directory.
    public func open(at name: UnsafePointer<CChar>, _ mode: AccessMode, options: OpenOptions = []) throws(Errno) -> FileDescriptor {
        let flags = mode.flags | options.flags
        return FileDescriptor(rawValue: try systemCall { e2f_openat(rawValue, name, flags) })
    }

    /// The root directory, opened for `open(at:)`.
    public static func openRootDirectory() throws(Errno) -> FileDescriptor {
        try open("/", .readOnly, options: [.directory, .followSymbolicLink])
    }

    /// close(2). Not retried on EINTR: Linux has closed the descriptor by then.
    public func close() {
        _ = systemClose(rawValue)
    }

    /// Runs `body`, then closes the descriptor, whether `body` returned or threw.
    @inline(__always)
    public func closeAfter<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        defer { close() }
        return try body()
    }

    /// fstat(2) (as fstatat(2) of the descriptor).
    public func status() throws(Errno) -> FileStatus {
        FileStatus(try rawStatus())
    }

    /// fstat(2)'s whole result, for what FileStatus does not keep (FileVersion's times).
    func rawStatus() throws(Errno) -> stat {
        var info = stat()
        _ = try systemCall { e2f_fstat(rawValue, &info) }
        return info
    }

    /// fstatat(2) of `name` in this directory, not following a final symbolic link (AT_SYMLINK_NOFOLLOW).
    public func status(at name: UnsafePointer<CChar>) throws(Errno) -> FileStatus {
        var info = stat()
        _ = try systemCall { fstatat(rawValue, name, &info, AT_SYMLINK_NOFOLLOW) }
        return FileStatus(info)
    }

    /// readlinkat(2) of `name` in this directory: the link's target, of at most `limit` - 1 bytes
    /// (a target that fills the buffer may have been cut, and is refused as ERANGE).
    public func symbolicLinkTarget(at name: UnsafePointer<CChar>, limit: Int = 4096) throws(Errno) -> [UInt8] {
        var failure: Errno? = nil
        let target = [UInt8](unsafeUninitializedCapacity: limit) { buffer, count in
            let got = readlinkat(rawValue, name, UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self), limit)
            if got < 0 { failure = .current } else if got >= limit { failure = .resultOutOfRange } else { count = got }
        }
        if let failure { throw failure }
        return target
    }

    /// read(2) into `buffer`; the number of bytes read, 0 at the end of the file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try systemCall { systemRead(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// The file's contents, read(2) until its end or until more than `limit` bytes are in (then
    /// `limit` + 1 bytes come back: the caller tells the file is too large by the count).
    ///
    /// - Parameter expectedSize: the size fstat(2) saw, which sizes the buffer (not the limit: that
    ///   would mean zeroing up to 256 KiB on every login for files of a few hundred bytes). With
    ///   `trustingExpectedSize`, reading stops once that many bytes are in, without another read(2)
    ///   to be told of the end: the files that matter are replaced by rename(2), never grown in place.
    @inline(__always)
    public func readAll(expectedSize: Int, limit: Int, trustingExpectedSize: Bool = false) throws(Errno) -> [UInt8] {
        let capacity = min(max(expectedSize, 0), limit) + 1
        var failure: Errno? = nil
        var contents = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            while count < capacity {
                let got: Int
                do throws(Errno) { got = try read(into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[count...]))) } catch {
                    failure = error
                    return
                }
                count += got
                if got == 0 || (trustingExpectedSize && count == capacity - 1) { return }
            }
        }
        if let failure { throw failure }
        guard contents.count == capacity && capacity <= limit else { return contents }
        // Grew since fstat: read on, still bounded by the limit.
        var chunk = [UInt8](repeating: 0, count: 4096)
        while contents.count <= limit {
            let wanted = min(chunk.count, limit + 1 - contents.count)
            let got = try chunk.withUnsafeMutableBytes { buffer in valueOrErrno { systemRead(rawValue, buffer.baseAddress, wanted) } }.get()
            if got == 0 { break }
            contents.append(contentsOf: chunk[..<got])
        }
        return contents
    }

    /// write(2) of all of `bytes`, however many calls that takes.
    public func writeAll(_ bytes: [UInt8]) throws(Errno) {
        let failure = bytes.withUnsafeBytes { buffer -> Errno? in
            var written = 0
            while written < buffer.count {
                switch valueOrErrno({ write(rawValue, buffer.baseAddress! + written, buffer.count - written) }) {
                case .success(let result) where result > 0: written += result
                // A write of nothing to a regular file is a full disk that did not say so.
                case .success: return .noSpace
                case .failure(let error): return error
                }
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// fsync(2).
    public func sync() throws(Errno) {
        _ = try systemCall { fsync(rawValue) }
    }

    /// fchmod(2): exactly these permissions, whatever the umask made of the ones given to open.
    public func setPermissions(_ permissions: FilePermissions) throws(Errno) {
        _ = try systemCall { fchmod(rawValue, permissions.rawValue) }
    }

    /// fchown(2).
    public func setOwner(_ owner: uid_t, group: gid_t) throws(Errno) {
        _ = try systemCall { fchown(rawValue, owner, group) }
    }

    /// flock(2) LOCK_EX, retried without blocking every 2 ms for at most `timeoutSeconds`, so that no
    /// holder, however it got the lock, can hang the caller: `.wouldBlock` after the timeout. Closing
    /// the descriptor releases the lock.
    public func lockExclusively(timeoutSeconds: Int) throws(Errno) {
        var waitedMicroseconds = 0
        while flock(rawValue, LOCK_EX | LOCK_NB) != 0 {
            let error = Errno.current
            guard error == .wouldBlock || error == .interrupted else { throw error }
            guard waitedMicroseconds < timeoutSeconds * 1_000_000 else { throw .wouldBlock }
            e2f_sleep_milliseconds(2)
            waitedMicroseconds += 2_000
        }
    }
}

// MARK: Paths

/// Calls on paths that open nothing.
public enum FileSystem {
    /// mkdir(2).
    public static func makeDirectory(_ path: String, permissions: FilePermissions) throws(Errno) {
        _ = try path.withCString { cPath in valueOrErrno { mkdir(cPath, permissions.rawValue) } }.get()
    }

    /// chmod(2).
    public static func setPermissions(_ path: String, _ permissions: FilePermissions) throws(Errno) {
        _ = try path.withCString { cPath in valueOrErrno { chmod(cPath, permissions.rawValue) } }.get()
    }

    /// unlink(2).
    public static func remove(_ path: String) throws(Errno) {
        _ = try path.withCString { cPath in valueOrErrno { unlink(cPath) } }.get()
    }

    /// rename(2): atomically replaces `destination`.
    public static func rename(_ source: String, to destination: String) throws(Errno) {
        _ = try source.withCString { from in destination.withCString { to in valueOrErrno { systemRename(from, to) } } }.get()
    }

    /// rename(2) between NUL-terminated C strings: 0, or the errno.
    static func renameError(_ source: UnsafePointer<CChar>, to destination: UnsafePointer<CChar>) -> Int32 {
        if case .failure(let error) = valueOrErrno({ systemRename(source, destination) }) { return error.rawValue }
        return 0
    }

    /// lstat(2) of a NUL-terminated C string: 0, or the errno (ENOENT: nothing there).
    static func statusError(_ path: UnsafePointer<CChar>) -> Int32 {
        var info = stat()
        return fileStatus(path, followSymbolicLinks: false, into: &info)?.rawValue ?? 0
    }

    /// fsync(2) of a directory, so a rename in it survives a power cut. Failure only weakens durability.
    public static func syncDirectory(_ path: String) {
        guard let directory = try? FileDescriptor.open(path, .readOnly, options: [.directory, .followSymbolicLink]) else { return }
        directory.closeAfter { _ = try? directory.sync() }
    }
}

// MARK: Identity

/// geteuid(2): root in the PAM module of a login service.
public func effectiveUserID() -> uid_t { geteuid() }

/// getuid(2): who started this process (the user of a setuid su or sudo).
public func realUserID() -> uid_t { getuid() }

/// Runs `body` with the file-system identity setfsuid(2)/setfsgid(2) gives, so that files are opened
/// with that user's rights, and puts the previous identity back afterwards.
@inline(__always)
func withFileSystemIDs<Result>(uid: uid_t, gid: gid_t, _ body: () throws(CoreError) -> Result) throws(CoreError) -> Result {
    var previousUID: uid_t = 0
    var previousGID: gid_t = 0
    guard e2f_setfsgid(gid, &previousGID) == 0 else {
        e2f_restorefsgid(previousGID)
        throw .system(SystemError("setfsgid", .notPermitted))
    }
    guard e2f_setfsuid(uid, &previousUID) == 0 else {
        e2f_restorefsuid(previousUID)
        e2f_restorefsgid(previousGID)
        throw .system(SystemError("setfsuid", .notPermitted))
    }
    defer {
        e2f_restorefsuid(previousUID)
        e2f_restorefsgid(previousGID)
    }
    return try body()
}
