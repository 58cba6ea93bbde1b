import CEngageSys

/// Why a file that 2FA depends on was not trusted. Each case names the path and the check that failed,
/// so the system log tells the admin exactly what to fix.
public enum TrustedFileError: Error, Equatable, CustomStringConvertible {
    case missing(path: String)
    case symbolicLink(path: String)
    case notRegularFile(path: String)
    case wrongOwner(path: String, owner: uid_t, expected: FileOwners)
    /// The file's permissions include some of `forbidden`, the bits the rule for this file allows
    /// nobody but its owner.
    case tooPermissive(path: String, permissions: FilePermissions, forbidden: FilePermissions)
    case tooLarge(path: String, size: Int, limit: Int)
    case system(path: String, SystemError)

    public var path: String {
        switch self {
        case .missing(let path), .symbolicLink(let path), .notRegularFile(let path), .wrongOwner(let path, _, _),
            .tooPermissive(let path, _, _), .tooLarge(let path, _, _), .system(let path, _):
            path
        }
    }

    /// Optimized for size: built only when a login is denied or a command fails.
    @_optimize(size)
    public var description: String {
        let text: MessageText = switch self {
        case .missing(let path): "\(path): does not exist"
        case .symbolicLink(let path): "\(path): is a symbolic link (refused: it could point anywhere)"
        case .notRegularFile(let path): "\(path): is not a regular file"
        case .wrongOwner(let path, let owner, let expected): "\(path): owned by uid \(owner), expected \(expected.text)"
        case .tooPermissive(let path, let permissions, let forbidden):
            "\(path): mode \(permissions) lets group or others \(forbidden == .groupOrOthersWrite ? "write to" : "access") it (only its owner may: chmod go-\(forbidden.groupAndOtherLetters))"
        case .tooLarge(let path, let size, let limit): "\(path): \(size) bytes, more than the \(limit) allowed"
        case .system(let path, let error): "\(path): \(error.call): \(error.errno)"
        }
        return text.text
    }
}

/// The one or two uids that may own a trusted file (the user, and root). Held inline: an array of them
/// would be an allocation at every read of the login (three a login).
public struct FileOwners: Equatable, Sendable, ExpressibleByArrayLiteral {
    public var first: uid_t
    public var second: uid_t?

    public init(_ first: uid_t, or second: uid_t? = nil) {
        self.first = first
        self.second = second
    }

    /// `[uid]` or `[uid, other]`; a list of more than two is a programming error.
    public init(arrayLiteral owners: uid_t...) {
        precondition(owners.count == 1 || owners.count == 2, "a trusted file has one or two owners")
        self.init(owners[0], or: owners.count == 2 ? owners[1] : nil)
    }

    public func contains(_ uid: uid_t) -> Bool { uid == first || uid == second }

    /// "0 or 1000".
    var text: MessageText {
        guard let second else { return "\(first)" }
        return "\(first) or \(second)"
    }
}

/// Reads a file that decides who may log in: never through a symbolic link (O_NOFOLLOW), and only
/// if fstat(2) of the opened descriptor shows a regular file with an expected owner, none of the
/// `forbidden` permissions, and a bounded size.
///
/// - Parameters:
///   - owners: uids that may own the file.
///   - forbidden: permissions that must be clear (`.groupOrOthersAny`: private; `.groupOrOthersWrite`:
///     nobody but its owner may change it).
public func readTrustedFile(
    _ path: String, owners: FileOwners, maxSize: Int, forbidden: FilePermissions = .groupOrOthersAny
) throws(TrustedFileError) -> [UInt8] {
    var version: FileVersion? = nil
    return try readTrustedFile(path, owners: owners, maxSize: maxSize, forbidden: forbidden, version: &version)
}

/// The same, also giving the version of the file read (from the fstat of the descriptor it was read from).
public func readTrustedFile(
    _ path: String, owners: FileOwners, maxSize: Int, forbidden: FilePermissions = .groupOrOthersAny, version: inout FileVersion?
) throws(TrustedFileError) -> [UInt8] {
    let file: FileDescriptor
    do {
        file = try FileDescriptor.open(path, .readOnly, options: [.noControllingTerminal, .nonBlocking])
    } catch .noSuchFileOrDirectory {
        throw .missing(path: path)
    } catch .tooManySymbolicLinkLevels {
        throw .symbolicLink(path: path)
    } catch {
        throw .system(path: path, SystemError("open", error))
    }
    return try file.closeAfter { () throws(TrustedFileError) in
        // One fstat for the checks and the version: the descriptor's file cannot change identity in between.
        let info: stat
        do throws(Errno) { info = try file.rawStatus() } catch { throw .system(path: path, SystemError("fstat", error)) }
        let status = FileStatus(info)
        guard status.type == .regular else { throw .notRegularFile(path: path) }
        guard owners.contains(status.owner) else { throw .wrongOwner(path: path, owner: status.owner, expected: owners) }
        guard status.permissions.isDisjoint(with: forbidden) else {
            throw .tooPermissive(path: path, permissions: status.permissions, forbidden: forbidden)
        }
        guard status.size <= maxSize else { throw .tooLarge(path: path, size: status.size, limit: maxSize) }
        version = FileVersion(info)
        let contents: [UInt8]
        do throws(Errno) { contents = try file.readAll(expectedSize: status.size, limit: maxSize, trustingExpectedSize: true) } catch {
            throw .system(path: path, SystemError("read", error))
        }
        // The file grew between fstat and read: still bounded.
        guard contents.count <= maxSize else { throw .tooLarge(path: path, size: contents.count, limit: maxSize) }
        return contents
    }
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
        guard path.withCString({ e2f_stat($0, &info, 0) }) == 0 else { return nil }
        return FileVersion(info)
    }

    /// Every field equal, compared without branches: the derived `==` became a memcmp(3) call, one more
    /// symbol for the module to bind at every dlopen.
    public static func == (a: FileVersion, b: FileVersion) -> Bool {
        (a.device ^ b.device) | (a.inode ^ b.inode) | UInt64(bitPattern: a.size ^ b.size)
            | UInt64(a.mode ^ b.mode) | UInt64(a.owner ^ b.owner)
            | UInt64(bitPattern: a.modifiedNanoseconds ^ b.modifiedNanoseconds) | UInt64(bitPattern: a.changedNanoseconds ^ b.changedNanoseconds) == 0
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
    _ path: String, contents: [UInt8], permissions: FilePermissions = .ownerReadWrite, owner: (uid: uid_t, gid: gid_t)? = nil,
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
        out.writeHex(suffix)
        return out.text
    }
    let file: FileDescriptor
    do { file = try FileDescriptor.open(temporary, .writeOnly, options: .exclusiveCreate, permissions: permissions) } catch {
        throw .system(path: temporary, SystemError("open", error))
    }
    do throws(TrustedFileError) {
        try file.closeAfter { () throws(TrustedFileError) in
            do throws(Errno) { try file.writeAll(contents) } catch { throw .system(path: temporary, SystemError("write", error)) }
            // The umask may have narrowed the mode; fchmod sets exactly what was asked.
            do throws(Errno) { try file.setPermissions(permissions) } catch { throw .system(path: temporary, SystemError("fchmod", error)) }
            if let owner {
                do throws(Errno) { try file.setOwner(owner.uid, group: owner.gid) } catch { throw .system(path: temporary, SystemError("fchown", error)) }
            }
            do throws(Errno) { try file.sync() } catch { throw .system(path: temporary, SystemError("fsync", error)) }
        }
        do throws(Errno) { try FileSystem.rename(temporary, to: path) } catch { throw .system(path: path, SystemError("rename", error)) }
    } catch {
        try? FileSystem.remove(temporary)
        throw error
    }
    if syncDirectory { FileSystem.syncDirectory(splitPath(path).directory) }
}

/// The directory and the name of `path` (over its bytes in place: the String views' generic slicing costs ~600 bytes of code).
func splitPath(_ path: String) -> (directory: String, name: String) {
    var bytes = path
    return bytes.withUTF8 { bytes in
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return (".", path) }
        let directory = slash == 0 ? "/" : String(decoding: UnsafeBufferPointer(rebasing: bytes[..<slash]), as: UTF8.self)
        return (directory, String(decoding: UnsafeBufferPointer(rebasing: bytes[(slash + 1)...]), as: UTF8.self))
    }
}

public func hexString(_ bytes: some Collection<UInt8>) -> String {
    var out = ByteWriter(capacity: bytes.count * 2)
    out.writeHex(Array(bytes))
    return out.text
}

/// The bytes `text` spells in hex (either case), or nil.
public func parseHex<Bytes: Collection>(_ text: Bytes) -> [UInt8]? where Bytes.Element == UInt8 {
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

