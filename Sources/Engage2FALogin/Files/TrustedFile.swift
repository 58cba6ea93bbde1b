import CEngageSys

/// Why a file that 2FA depends on was not trusted. Each case names the path and the check that failed,
/// so the system log tells the admin exactly what to fix.
public enum TrustedFileError: Error, Equatable, CustomStringConvertible {
    case missing(path: String)
    case symbolicLink(path: String)
    case notRegularFile(path: String)
    case wrongOwner(path: String, owner: uid_t, expected: [uid_t])
    case tooPermissive(path: String, mode: mode_t)
    case tooLarge(path: String, size: Int, limit: Int)
    case system(path: String, SystemError)

    public var path: String {
        switch self {
        case .missing(let path), .symbolicLink(let path), .notRegularFile(let path), .wrongOwner(let path, _, _),
            .tooPermissive(let path, _), .tooLarge(let path, _, _), .system(let path, _):
            path
        }
    }

    public var description: String {
        switch self {
        case .missing(let path): "\(path): does not exist"
        case .symbolicLink(let path): "\(path): is a symbolic link (refused: it could point anywhere)"
        case .notRegularFile(let path): "\(path): is not a regular file"
        case .wrongOwner(let path, let owner, let expected):
            "\(path): owned by uid \(owner), expected \(expected.map(String.init).joined(separator: " or "))"
        case .tooPermissive(let path, let mode):
            "\(path): mode \(String(mode & 0o7777, radix: 8)) lets group or others access it (expected 600)"
        case .tooLarge(let path, let size, let limit): "\(path): \(size) bytes, more than the \(limit) allowed"
        case .system(let path, let error): "\(path): \(error)"
        }
    }
}

/// Reads a file that decides who may log in: never through a symbolic link (O_NOFOLLOW), and only
/// if fstat(2) of the opened descriptor shows a regular file with an expected owner, no access for
/// group or others, and a bounded size.
///
/// - Parameters:
///   - owners: uids that may own the file.
///   - groupOtherMask: mode bits that must be clear (0o077: private; 0o022: not writable by others).
public func readTrustedFile(
    _ path: String, owners: [uid_t], maxSize: Int, groupOtherMask: mode_t = 0o077
) throws(TrustedFileError) -> [UInt8] {
    var version: FileVersion? = nil
    return try readTrustedFile(path, owners: owners, maxSize: maxSize, groupOtherMask: groupOtherMask, version: &version)
}

/// The same, also giving the version of the file read (from the fstat of the descriptor it was read from).
public func readTrustedFile(
    _ path: String, owners: [uid_t], maxSize: Int, groupOtherMask: mode_t = 0o077, version: inout FileVersion?
) throws(TrustedFileError) -> [UInt8] {
    let fd = path.withCString { cPath in retryOnInterrupt { open(cPath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) } }
    guard fd >= 0 else {
        switch errno {
        case ENOENT: throw .missing(path: path)
        case ELOOP: throw .symbolicLink(path: path)
        default: throw .system(path: path, SystemError("open"))
        }
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw .system(path: path, SystemError("fstat")) }
    guard info.st_mode & mode_t(S_IFMT) == mode_t(S_IFREG) else { throw .notRegularFile(path: path) }
    guard owners.contains(info.st_uid) else { throw .wrongOwner(path: path, owner: info.st_uid, expected: owners) }
    guard info.st_mode & groupOtherMask == 0 else { throw .tooPermissive(path: path, mode: info.st_mode) }
    guard Int(info.st_size) <= maxSize else { throw .tooLarge(path: path, size: Int(info.st_size), limit: maxSize) }
    version = FileVersion(info)

    // Sized by fstat, one byte more to notice growth; not by the limit, which would mean zeroing
    // 64–256 KiB on every login for files that are a few hundred bytes.
    let capacity = min(Int(info.st_size), maxSize) + 1
    var readError: Int32 = 0
    var contents = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
        while count < capacity {
            let got = retryOnInterrupt { read(fd, buffer.baseAddress! + count, capacity - count) }
            if got < 0 { readError = lastErrno(); return }
            count += got
            // All of what fstat saw: done without a second read(2) to be told of the end. The files
            // that matter are replaced by rename, so the inode behind this descriptor does not grow.
            if got == 0 || count == capacity - 1 { return }
        }
    }
    if readError != 0 { throw .system(path: path, SystemError("read", errno: readError)) }
    var filled = contents.count
    if filled == capacity && capacity <= maxSize {
        // Grew since fstat: read on, still bounded by the limit.
        var chunk = [UInt8](repeating: 0, count: 4096)
        while filled <= maxSize {
            let got = chunk.withUnsafeMutableBytes { buffer in retryOnInterrupt { read(fd, buffer.baseAddress!, buffer.count) } }
            if got < 0 { throw .system(path: path, SystemError("read")) }
            if got == 0 { break }
            contents.append(contentsOf: chunk[..<got])
            filled += got
        }
    }
    // The file grew between fstat and read: still bounded.
    guard filled <= maxSize else { throw .tooLarge(path: path, size: filled, limit: maxSize) }
    return contents
}

/// What stat(2) says of a file's identity and its last change. Two equal versions of one path are the same
/// inode with the same owner, mode and size, changed last at the same instant: ctime is set by the kernel
/// on every write, chmod, chown and link change, and no one but root (setting the clock) can set it back.
public struct FileVersion: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var mode: UInt32
    var owner: UInt32
    /// mtime and ctime, in nanoseconds since the epoch.
    var modifiedNanoseconds: Int64
    var changedNanoseconds: Int64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        mode = UInt32(info.st_mode)
        owner = UInt32(info.st_uid)
        modifiedNanoseconds = Int64(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_mtim.tv_nsec)
        changedNanoseconds = Int64(info.st_ctim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_ctim.tv_nsec)
    }

    /// The version of what is at `path` now, without following a final symbolic link (as the O_NOFOLLOW
    /// open of a read would not); nil if there is nothing.
    static func current(_ path: String) -> FileVersion? {
        var info = stat()
        guard path.withCString({ lstat($0, &info) }) == 0 else { return nil }
        return FileVersion(info)
    }
}

/// Replaces a file atomically: a new file beside it (O_EXCL, never following links), written,
/// fsync'd, renamed over the old one, and the directory fsync'd. A crash at any point leaves
/// either the old or the new file; a leftover temporary file is ignored by every reader.
///
/// - Parameters:
///   - owner: if given, the new file is chowned to it (root writing a user's file).
///   - syncDirectory: whether to fsync the directory after the rename, so that the rename itself
///     survives a power cut. The file's own fsync (before the rename) is never skipped: without it a
///     crash can leave an empty file, which would lock its user out.
public func writeFileAtomically(
    _ path: String, contents: [UInt8], mode: mode_t = 0o600, owner: (uid: uid_t, gid: gid_t)? = nil,
    syncDirectory: Bool = true
) throws(TrustedFileError) {
    let suffix: [UInt8]
    do { suffix = try secureRandomBytes(6) } catch { throw .system(path: path, error) }
    // DIRECTORY/.NAME.tmp-RANDOM, beside the file.
    var pathBytes = path
    let temporary = pathBytes.withUTF8 { bytes in
        let nameStart = (bytes.lastIndex(of: UInt8(ascii: "/")) ?? -1) + 1
        var out = ByteWriter(capacity: bytes.count + 20)
        out.bytes.append(contentsOf: bytes[..<nameStart])
        out.write(".")
        out.bytes.append(contentsOf: bytes[nameStart...])
        out.write(".tmp-")
        out.write(string: hexString(suffix))
        return out.text
    }
    let fd = temporary.withCString { cPath in retryOnInterrupt { open(cPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode) } }
    guard fd >= 0 else { throw .system(path: temporary, SystemError("open")) }
    var renamed = false
    defer { if !renamed { _ = temporary.withCString { unlink($0) } } }
    do throws(TrustedFileError) {
        defer { close(fd) }
        var written = 0
        while written < contents.count {
            let result = contents.withUnsafeBytes { buffer in
                retryOnInterrupt { write(fd, buffer.baseAddress! + written, contents.count - written) }
            }
            guard result > 0 else { throw .system(path: temporary, SystemError("write")) }
            written += result
        }
        // The umask may have narrowed the mode; fchmod sets exactly what was asked.
        guard fchmod(fd, mode) == 0 else { throw .system(path: temporary, SystemError("fchmod")) }
        if let owner, fchown(fd, owner.uid, owner.gid) != 0 {
            throw .system(path: temporary, SystemError("fchown"))
        }
        guard retryOnInterrupt({ fsync(fd) }) == 0 else { throw .system(path: temporary, SystemError("fsync")) }
    } catch {
        throw error
    }
    guard temporary.withCString({ from in path.withCString { to in rename(from, to) } }) == 0 else { throw .system(path: path, SystemError("rename")) }
    renamed = true
    if syncDirectory { fsyncDirectory(splitPath(path).directory) }
}

/// fsync(2) of a directory, so a rename in it survives a power cut. Failure only weakens durability.
func fsyncDirectory(_ directory: String) {
    let fd = directory.withCString { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    guard fd >= 0 else { return }
    _ = fsync(fd)
    close(fd)
}

func splitPath(_ path: String) -> (directory: String, name: String) {
    let bytes = path.utf8
    guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return (".", path) }
    let directory = bytes[..<slash]
    return (directory.isEmpty ? "/" : String(decoding: directory, as: UTF8.self), String(decoding: bytes[bytes.index(after: slash)...], as: UTF8.self))
}

package func hexString(_ bytes: some Collection<UInt8>) -> String {
    let digits: StaticString = "0123456789abcdef"
    let out = [UInt8](unsafeUninitializedCapacity: bytes.count * 2) { buffer, count in
        for byte in bytes {
            buffer[count] = digits.utf8Start[Int(byte >> 4)]
            buffer[count + 1] = digits.utf8Start[Int(byte & 15)]
            count += 2
        }
    }
    return String(decoding: out, as: UTF8.self)
}

func parseHex<Bytes: Collection>(_ text: Bytes) -> [UInt8]? where Bytes.Element == UInt8 {
    let bytes = Array(text)
    guard bytes.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count / 2)
    var index = 0
    while index < bytes.count {
        guard let high = hexValue(bytes[index]), let low = hexValue(bytes[index + 1]) else { return nil }
        out.append(high << 4 | low)
        index += 2
    }
    return out
}

