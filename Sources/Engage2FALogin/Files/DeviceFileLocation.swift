import CEngageSys

/// Where one user's device file is, and with whose rights it is read and written.
///
/// In the user's home it is opened with the user's file-system identity and must be owned by the user.
/// Elsewhere (admin-managed storage under a root-owned directory) it is opened as root and may be
/// owned by root or the user; a rewrite keeps its owner.
public struct DeviceFileLocation: Sendable {
    public var account: Account
    public var path: String
    public var isInHome: Bool

    public init(account: Account, config: Config) {
        self.account = account
        path = config.secretFilePath(user: account.name, home: account.home)
        isInHome = Config.isInside(home: account.home, path: path)
    }

    var owners: [uid_t] { isInHome || account.uid == 0 ? [account.uid] : [account.uid, 0] }

    /// The user's devices; nil if the file does not exist. A missing file in a directory that is itself
    /// missing or cannot be searched (a home on an NFS server that is away) is an error, not "no devices".
    public func load() throws(CoreError) -> DeviceFile? {
        func read() throws(CoreError) -> DeviceFile? {
            let file: DeviceFile?
            do throws(DeviceFileError) { file = try DeviceFile.load(path: path, owners: owners) } catch { throw .deviceFile(error) }
            guard let file else {
                let (directory, _) = splitPath(path)
                do throws(Errno) { _ = try FileStatus(path: directory, followSymbolicLinks: true) } catch {
                    throw .file(.system(path: directory, SystemError("stat (the directory of the device file)", error)))
                }
                return nil
            }
            return file
        }
        return isInHome ? try withFileSystemIdentity(of: account) { () throws(CoreError) in try read() } : try read()
    }

    /// `PATH.lock` beside the device file: the lock of its writers (engage2fa-enroll run by the user, or by
    /// root for the user). Created with the user's identity in a home, so only the user (and root) can
    /// take it; the module and engage2fa-admin never wait for it longer than a moment.
    var lockPath: String { path + ".lock" }

    /// The device file's own transaction: under its lock (waiting at most `timeoutSeconds`), re-read the
    /// file, let `body` change it, and replace it atomically if it changed. nil from `body`'s file means
    /// there was none.
    public func update<Result>(
        timeoutSeconds: Int = 5, _ body: (inout DeviceFile) throws(CoreError) -> Result
    ) throws(CoreError) -> Result {
        try withLock(timeoutSeconds: timeoutSeconds) { () throws(CoreError) -> Result in
            let original = try load() ?? DeviceFile()
            var file = original
            let result = try body(&file)
            if file != original { try save(file) }
            return result
        }
    }

    /// Removes the device file under its lock, waiting at most `timeoutSeconds` (the lock is the user's:
    /// an admin command never waits on it for long), without reading it: a file that does not parse goes
    /// too. A missing file is fine.
    public func remove(timeoutSeconds: Int = 2) throws(CoreError) {
        try withLock(timeoutSeconds: timeoutSeconds) { () throws(CoreError) in
            try withIdentity { () throws(CoreError) in
                do throws(Errno) { try FileSystem.remove(path) } catch .noSuchFileOrDirectory {} catch {
                    throw .file(.system(path: path, SystemError("unlink", error)))
                }
            }
        }
    }

    private func withLock<Result>(timeoutSeconds: Int, _ body: () throws(CoreError) -> Result) throws(CoreError) -> Result {
        let lock = try withIdentity { () throws(CoreError) -> FileDescriptor in
            do throws(Errno) { return try FileDescriptor.open(lockPath, .readWrite, options: .create, permissions: .ownerReadWrite) } catch {
                throw .file(.system(path: lockPath, SystemError("open", error)))
            }
        }
        return try lock.closeAfter { () throws(CoreError) -> Result in
            do throws(Errno) { try lock.lockExclusively(timeoutSeconds: timeoutSeconds) } catch {
                if error == .wouldBlock { throw .state(.lockTimeout(path: lockPath, seconds: timeoutSeconds)) }
                throw .state(.lock(path: lockPath, SystemError("flock", error)))
            }
            return try body()
        }
    }

    private func withIdentity<Result>(_ body: () throws(CoreError) -> Result) throws(CoreError) -> Result {
        isInHome ? try withFileSystemIdentity(of: account, body) : try body()
    }

    /// Replaces the file atomically (mode 600).
    public func save(_ file: DeviceFile) throws(CoreError) {
        let contents = file.serialized()
        if isInHome {
            // Created under the user's fsuid and fsgid, the new file is the user's without a chown.
            try withFileSystemIdentity(of: account) { () throws(CoreError) in
                do throws(TrustedFileError) { try writeFileAtomically(path, contents: contents) } catch { throw .file(error) }
            }
            return
        }
        let existing = try? FileStatus(path: path, followSymbolicLinks: true)
        let owner = existing.map { (uid: $0.owner, gid: $0.group) } ?? (uid: account.uid, gid: account.gid)
        do { try writeFileAtomically(path, contents: contents, owner: effectiveUserID() == 0 ? owner : nil) } catch { throw .file(error) }
    }
}
