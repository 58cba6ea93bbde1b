import CEngageSys

public enum StateError: Error, Equatable, CustomStringConvertible {
    case directory(path: String, message: String)
    case file(TrustedFileError)
    case corrupt(path: String, line: Int, message: String)
    case lockTimeout(path: String, seconds: Int)
    case lock(path: String, SystemError)
    case fileSizeLimit(bytes: Int64)

    public var description: String {
        switch self {
        case .directory(let path, let message): "\(displayText(path)): \(message)"
        case .file(let error): "\(error)"
        case .corrupt(let path, let line, let message): "\(displayText(path)):\(line): \(message)"
        case .lockTimeout(let path, let seconds): "\(displayText(path)): still locked by another process after \(seconds) s"
        case .lock(let path, let error): "\(displayText(path)): \(error)"
        case .fileSizeLimit(let bytes): "the caller's file size limit (RLIMIT_FSIZE, \(bytes) bytes) could stop the state from being written; refusing"
        }
    }
}

/// The one store of what root keeps about users, in the manner of pam_faillock's tally directory, and
/// the per-user transaction every change goes through:
///
///     state_dir/users/             root, 0711: users reach their own file by name, list nothing
///     state_dir/users/UID.state    replay and lockout state, deadlines, revocations, used recovery
///                                  codes (root:the user's group, 0640: users may read their own
///                                  situation, never write it, nor see anyone else's)
///     state_dir/users/UID.lock     flock(2) target (root, 0600: no other user can open it, so no
///                                  user can take it and hold a login up)
///
/// Keyed by uid, not by the name typed at the login: two names of one uid share one replay state and
/// one lockout budget. A transaction (``transaction(account:devices:_:)``) takes the user's lock, with
/// a timeout, re-reads the state and the user's device file, runs the decision, writes the state
/// atomically if it changed and releases the lock. The device file has one writer of its own, the user
/// (engage2fa-enroll, under its own lock beside the file); the module and engage2fa-admin never write
/// it, and read it again under this lock, so a device removed while a login waits at its prompt is
/// refused, and nothing in root's state can be lost by a rewrite of the user's file.
public struct StateStore: Sendable {
    public let directory: String
    let usersDirectory: String
    /// The smallest RLIMIT_FSIZE under which state is written: far above any state file.
    static let minimumFileSizeLimit = 1 << 20
    /// How long a transaction waits for another one of the same user before failing.
    public var lockTimeoutSeconds = 5
    /// Who must own everything here: this process's user (root in the module), asked once.
    private let owner: uid_t

    public init(directory: String) {
        self.directory = directory
        owner = geteuid()
        usersDirectory = directory + "/users"
    }

    /// `users/UID.EXTENSION`.
    private func userPath(uid: uid_t, _ fileExtension: StaticString) -> String {
        var path = ByteWriter(capacity: usersDirectory.utf8.count + 20)
        path.write(string: usersDirectory)
        path.write("/")
        path.write(Int64(uid))
        path.write(".")
        path.write(fileExtension)
        return path.text
    }

    public func statePath(uid: uid_t) -> String { userPath(uid: uid, "state") }

    /// Creates `state_dir` and its `users` folder (mode 755) if missing, and checks that both are
    /// directories owned by this process's user that nobody else can write to.
    public func prepare() throws(StateError) {
        try prepareDirectory(directory, mode: 0o755)
        // Searchable, not listable: a user opens their own state by its name, but cannot watch (inotify)
        // or list what is written here.
        try prepareDirectory(usersDirectory, mode: 0o711)
    }

    private func prepareDirectory(_ path: String, mode: mode_t) throws(StateError) {
        var info = stat()
        if path.withCString({ lstat($0, &info) }) != 0 {
            guard errno == ENOENT else { throw .directory(path: path, message: "\(SystemError("lstat"))") }
            if path.withCString({ mkdir($0, mode) }) != 0 && errno != EEXIST {
                throw .directory(path: path, message: "cannot create: \(SystemError("mkdir"))")
            }
            guard path.withCString({ lstat($0, &info) }) == 0 else { throw .directory(path: path, message: "\(SystemError("lstat"))") }
        }
        // Exactly that mode, whatever the caller's umask or an older version made it (users/ was 0700, then
        // 0755): users read their own state here and list nothing. One that others can write to is not
        // mended but refused below: what they may have left in it cannot be trusted.
        if info.st_mode & 0o777 != mode, info.st_mode & 0o022 == 0, info.st_uid == owner, info.st_mode & mode_t(S_IFMT) == mode_t(S_IFDIR),
            path.withCString({ chmod($0, mode) }) == 0 {
            info.st_mode = (info.st_mode & ~0o7777) | mode
        }
        guard info.st_mode & mode_t(S_IFMT) == mode_t(S_IFDIR) else { throw .directory(path: path, message: "is not a directory (or is a symbolic link)") }
        guard info.st_uid == owner else { throw .directory(path: path, message: "owned by uid \(info.st_uid), expected \(owner)") }
        guard info.st_mode & 0o022 == 0 else {
            throw .directory(path: path, message: "mode \(String(info.st_mode & 0o7777, radix: 8)) lets others write to it (expected \(String(mode, radix: 8)))")
        }
    }

    /// The user's state without taking the lock (for decisions made before a prompt, and listings); a
    /// user never seen has an empty state. Before the first write under a uid, the state an older
    /// version kept under the user's name is read, so that replay protection survives the upgrade.
    public func read(account: Account) throws(StateError) -> UserState {
        let path = statePath(uid: account.uid)
        do {
            return try readState(path)
        } catch .file(.missing) {
            // Not for a name of digits only: users/1063.state may be uid 1063's, not user "1063"'s.
            guard isSafeUserName(account.name), !account.name.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return UserState()
            }
            do { return try readState(usersDirectory + "/" + account.name + ".state") } catch .file(.missing) { return UserState() }
        }
    }

    private func readState(_ path: String) throws(StateError) -> UserState {
        let bytes: [UInt8]
        do {
            // Root's own file (or the owner of state_dir's, in tests): never writable by anyone else.
            bytes = try readTrustedFile(path, owners: owner == 0 ? [0] : [0, owner], maxSize: UserState.maxSize, groupOtherMask: 0o022)
        } catch {
            throw .file(error)
        }
        return try UserState.parse(bytes, path: path)
    }

    /// The per-user transaction: under the user's lock, the state and (when `devices` is given) the
    /// device file are read again, `body` decides on them, and a changed state is written atomically
    /// before the lock is released. So two logins never both accept one code, a recovery code is used
    /// once, and an admin's reset and a login never lose each other's change.
    ///
    /// - Parameters:
    ///   - devices: where the user's devices are; nil when the change does not depend on them.
    ///   - unchangedSince: the devices as read before (a login's, before its prompt): used again instead of
    ///     a second read if the file is provably unchanged (``DeviceFileLocation/load(unlessUnchangedSince:)``).
    public func transaction<Result>(
        account: Account, devices location: DeviceFileLocation?, unchangedSince snapshot: DeviceFileSnapshot? = nil,
        _ body: (inout UserState, DeviceFile?) throws(CoreError) -> Result
    ) throws(CoreError) -> Result {
        let lock: Int32
        do {
            try prepare()
            lock = try acquireLock(path: userPath(uid: account.uid, "lock"))
        } catch { throw .state(error) }
        defer { close(lock) }  // closing the descriptor releases the flock
        let original: UserState
        do { original = try read(account: account) } catch { throw .state(error) }
        let file = try location?.load(unlessUnchangedSince: snapshot)
        var state = original
        let result = try body(&state, file)
        if state != original {
            // No directory fsync: losing the newest rename to a power cut can only bring back a replay
            // step or failure count from seconds before the crash, and a code that old has expired by the
            // time the host is back. It halves the disk flushes of every login.
            try withFileSizeLimitLifted(atLeast: Self.minimumFileSizeLimit) { () throws(CoreError) in
                do throws(TrustedFileError) {
                    try writeState(state.serialized(), account: account)
                } catch {
                    throw .state(.file(error))
                }
            }
        }
        return result
    }

    /// Replaces the user's state file: `users/.UID.state.tmp` (one name per user: only the lock holder
    /// writes it, and a copy left by a killed writer is truncated, never piled up), written root-only,
    /// fsync'd and renamed over the state file; only then, through the same descriptor, opened to the
    /// user's group. Nothing the user can read shows what a login decided before it is committed: a
    /// user who stops or kills their own setuid login (su, sudo) cannot learn a code was wrong and keep
    /// the failure from being counted. No directory fsync (see ``transaction(account:devices:_:)``).
    private func writeState(_ contents: [UInt8], account: Account) throws(TrustedFileError) {
        let path = statePath(uid: account.uid)
        let temporary = userPath(uid: account.uid, "state.tmp").replacingLastComponentPrefixedWithDot()
        let fd = temporary.withCString { cPath in retryOnInterrupt { open(cPath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600) } }
        guard fd >= 0 else { throw .system(path: temporary, SystemError("open")) }
        defer { close(fd) }
        guard fchmod(fd, 0o600) == 0 else { throw .system(path: temporary, SystemError("fchmod")) }
        var written = 0
        while written < contents.count {
            let result = contents.withUnsafeBytes { buffer in retryOnInterrupt { write(fd, buffer.baseAddress! + written, contents.count - written) } }
            guard result > 0 else { throw .system(path: temporary, SystemError("write")) }
            written += result
        }
        guard retryOnInterrupt({ fsync(fd) }) == 0 else { throw .system(path: temporary, SystemError("fsync")) }
        guard temporary.withCString({ from in path.withCString { to in rename(from, to) } }) == 0 else { throw .system(path: path, SystemError("rename")) }
        // Committed. Readable now by the user's own tools (engage2fa-enroll list/status), never by others.
        if owner == 0 { _ = fchown(fd, 0, account.gid) }
        _ = fchmod(fd, 0o640)
    }

    private func acquireLock(path: String) throws(StateError) -> Int32 {
        let fd = path.withCString { cPath in retryOnInterrupt { open(cPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) } }
        guard fd >= 0 else { throw .lock(path: path, SystemError("open")) }
        let error = waitForLock(fd, timeoutSeconds: lockTimeoutSeconds)
        guard error == 0 else {
            close(fd)
            if error == EWOULDBLOCK { throw .lockTimeout(path: path, seconds: lockTimeoutSeconds) }
            throw .lock(path: path, SystemError("flock", errno: error))
        }
        return fd
    }
}

/// flock(2) LOCK_EX on `fd`, retried without blocking every 2 ms for at most `timeoutSeconds`, so that
/// no holder, however it got the lock, can hang the caller. 0 when taken; EWOULDBLOCK after the
/// timeout, or flock's error.
package func waitForLock(_ fd: Int32, timeoutSeconds: Int) -> Int32 {
    var waitedMicroseconds = 0
    while flock(fd, LOCK_EX | LOCK_NB) != 0 {
        let error = lastErrno()
        guard error == EWOULDBLOCK || error == EINTR else { return error }
        guard waitedMicroseconds < timeoutSeconds * 1_000_000 else { return EWOULDBLOCK }
        usleep(2_000)
        waitedMicroseconds += 2_000
    }
    return 0
}

extension String {
    /// `DIR/NAME` as `DIR/.NAME`: the hidden name readers skip.
    fileprivate func replacingLastComponentPrefixedWithDot() -> String {
        var bytes = Array(utf8)
        let slash = bytes.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0
        bytes.insert(UInt8(ascii: "."), at: slash)
        return String(decoding: bytes, as: UTF8.self)
    }
}
