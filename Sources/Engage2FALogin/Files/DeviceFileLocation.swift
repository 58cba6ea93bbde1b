import CEngageSys

/// Where one user's device file is, and with whose rights it is read and written.
///
/// In the user's home it is opened with the user's file-system identity and must be owned by the user.
/// Elsewhere (admin-managed storage under a root-owned directory) it is opened as root and may be
/// owned by root or the user; a rewrite keeps its owner.
public struct DeviceFileLocation: Sendable {
    /// How long a file must have been left alone before a read for that read to be used again (see
    /// ``load(unlessUnchangedSince:)``): ten clock ticks at the coarsest.
    static let settledNanoseconds: Int64 = 100_000_000

    public var account: Account
    public var path: String
    public var isInHome: Bool

    public init(account: Account, config: Config) {
        self.init(account: account, secretPath: config.secretPath)
    }

    /// The same from the policy's `secret_path` alone (a login reads no more of the policy to find it).
    init(account: Account, secretPath: String) {
        self.account = account
        path = Config.expand(secretPath, user: account.name, home: account.home)
        isInHome = Config.isInside(home: account.home, path: path)
    }

    var owners: FileOwners { FileOwners(account.uid, or: isInHome || account.uid == 0 ? nil : 0) }

    /// The user's devices; nil if the file does not exist. A missing file in a directory that is itself
    /// missing or cannot be searched (a home on an NFS server that is away) is an error, not "no devices".
    public func load() throws(CoreError) -> DeviceFile? { try loadSnapshot().file }

    /// The user's devices as `load()` reads them, with what is needed to tell later whether the file changed.
    public func loadSnapshot() throws(CoreError) -> DeviceFileSnapshot {
        func read() throws(CoreError) -> DeviceFileSnapshot {
            // Before the file is opened: any change made after its fstat is stamped later than this.
            let readAt = currentTimeNanoseconds()
            var version: FileVersion? = nil
            let file: DeviceFile?
            do throws(DeviceFileError) { file = try DeviceFile.load(path: path, owners: owners, version: &version) } catch { throw .deviceFile(error) }
            guard let file else {
                let (directory, _) = splitPath(path)
                do throws(Errno) { _ = try FileStatus(path: directory, followSymbolicLinks: true) } catch {
                    throw .file(.system(path: directory, SystemError("stat (the directory of the device file)", error)))
                }
                return DeviceFileSnapshot(file: nil, version: nil, readAt: readAt)
            }
            return DeviceFileSnapshot(file: file, version: version, readAt: readAt)
        }
        return isInHome ? try withFileSystemIdentity(of: account) { () throws(CoreError) in try read() } : try read()
    }

    /// The devices again, under a lock (the state transaction's): the snapshot's own if the file is provably
    /// the one it was read from, unchanged; otherwise read anew with `load()`. Provably unchanged: the same
    /// inode, owner, mode, size, mtime and ctime as the fstat of the snapshot's read, and that ctime older
    /// than the read by more than `settledNanoseconds`. The kernel stamps every change with the time it is
    /// made, at a clock tick's granularity (at most 10 ms), so a change made after the read has a newer
    /// ctime than a file left alone for 100 ms before it; one changed just before the read (two changes
    /// within one tick could carry the same stamp) is always read again. A file replaced (enroll's rename,
    /// an admin's reset, a restored backup) is another inode. Revocations live in root's state, which the
    /// transaction always reads again.
    public func load(unlessUnchangedSince snapshot: DeviceFileSnapshot?) throws(CoreError) -> DeviceFile? {
        guard let snapshot, let version = snapshot.version, version.changedNanoseconds + Self.settledNanoseconds < snapshot.readAt else {
            return try load()
        }
        // With the rights the read had: a failure to take them is a mismatch, and load() reports it.
        let current = isInHome
            ? (try? withFileSystemIdentity(of: account) { () throws(CoreError) in FileVersion.current(path) }) ?? nil
            : FileVersion.current(path)
        return current == version ? snapshot.file : try load()
    }
}

/// A device file as read once: its devices, and the version of the file they came from.
public struct DeviceFileSnapshot: Sendable {
    public var file: DeviceFile?
    var version: FileVersion?
    /// When the read began (nanoseconds since the epoch).
    var readAt: Int64

}
