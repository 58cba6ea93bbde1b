import CEngageSys

public enum StateError: Error, Equatable, CustomStringConvertible {
    case directory(path: String, message: String)
    case file(TrustedFileError)
    case corrupt(path: String, line: Int, message: String)
    case lockTimeout(path: String, seconds: Int)
    case lock(path: String, SystemError)
    case fileSizeLimit(bytes: Int64)

    public var description: String {
        let text: MessageText
        switch self {
        case .directory(let path, let message): text = "\(displayText(path)): \(message)"
        case .file(let error): return error.description
        case .corrupt(let path, let line, let message): text = "\(displayText(path)):\(line): \(message)"
        case .lockTimeout(let path, let seconds): text = "\(displayText(path)): still locked by another process after \(seconds) s"
        case .lock(let path, let error): text = "\(displayText(path)): \(error)"
        case .fileSizeLimit(let bytes): text = "the caller's file size limit (RLIMIT_FSIZE, \(bytes) bytes) could stop the state from being written; refusing"
        }
        return text.text
    }
}

/// A message built by ``MessageText`` (one out-of-line append a piece, not an inlined String interpolation),
/// as the String an error keeps.
func messageString(_ message: MessageText) -> String { message.text }

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
        owner = effectiveUserID()
        usersDirectory = directory + "/users"
    }

    /// `users/UID.EXTENSION` (`users/.UID.EXTENSION` when `hidden`).
    private func userPath(uid: uid_t, _ fileExtension: StaticString, hidden: Bool = false) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 10) { digits in
            var start = 10, rest = uid
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            return usersPath(UnsafeBufferPointer(rebasing: digits[start...]), fileExtension, hidden: hidden)
        }
    }

    /// `users/NAME.state`, where older versions kept a user's state.
    private func legacyStatePath(name: String) -> String {
        var name = name
        return name.withUTF8 { usersPath($0, "state", hidden: false) }
    }

    /// `users/[.]STEM.EXTENSION`, written straight into the String's storage: its one allocation.
    /// Not inlined: one copy serves every path of the store.
    @inline(never)
    private func usersPath(_ stem: UnsafeBufferPointer<UInt8>, _ fileExtension: StaticString, hidden: Bool) -> String {
        var directory = usersDirectory
        return directory.withUTF8 { directory in
            let count = directory.count + 2 + (hidden ? 1 : 0) + stem.count + fileExtension.utf8CodeUnitCount
            return String(unsafeUninitializedCapacity: count) { buffer in
                var out = UnsafeMutableRawPointer(buffer.baseAddress!)
                func append(_ start: UnsafeRawPointer?, _ count: Int) {
                    if let start { out.copyMemory(from: start, byteCount: count) }
                    out += count
                }
                let separator: StaticString = "/.", dot: StaticString = "."
                append(directory.baseAddress, directory.count)
                append(separator.utf8Start, hidden ? 2 : 1)
                append(stem.baseAddress, stem.count)
                append(dot.utf8Start, 1)
                append(fileExtension.utf8Start, fileExtension.utf8CodeUnitCount)
                return count
            }
        }
    }

    public func statePath(uid: uid_t) -> String { userPath(uid: uid, "state") }

    /// Creates `state_dir` and its `users` folder (mode 755) if missing, and checks that both are
    /// directories owned by this process's user that nobody else can write to.
    public func prepare() throws(StateError) {
        try prepareDirectory(directory, permissions: .directoryAllRead)
        // Searchable, not listable: a user opens their own state by its name, but cannot watch (inotify)
        // or list what is written here.
        try prepareDirectory(usersDirectory, permissions: .directoryAllSearch)
    }

    private func prepareDirectory(_ path: String, permissions: FilePermissions) throws(StateError) {
        var status: FileStatus
        do throws(Errno) {
            status = try FileStatus(path: path, followSymbolicLinks: false)
        } catch .noSuchFileOrDirectory {
            do throws(Errno) { try FileSystem.makeDirectory(path, permissions: permissions) } catch .fileExists {} catch {
                throw .directory(path: path, message: messageString("cannot create: \(SystemError("mkdir", error))"))
            }
            do throws(Errno) { status = try FileStatus(path: path, followSymbolicLinks: false) } catch {
                throw .directory(path: path, message: SystemError("lstat", error).description)
            }
        } catch {
            throw .directory(path: path, message: SystemError("lstat", error).description)
        }
        // Exactly that mode, whatever the caller's umask or an older version made it (users/ was 0700, then
        // 0755): users read their own state here and list nothing. One that others can write to is not
        // mended but refused below: what they may have left in it cannot be trusted.
        if status.permissions.accessBits != permissions, status.permissions.isDisjoint(with: .groupOrOthersWrite), status.owner == owner,
            status.type == .directory, (try? FileSystem.setPermissions(path, permissions)) != nil {
            status.permissions = permissions
        }
        guard status.type == .directory else { throw .directory(path: path, message: "is not a directory (or is a symbolic link)") }
        guard status.owner == owner else { throw .directory(path: path, message: messageString("owned by uid \(status.owner), expected \(owner)")) }
        guard status.permissions.isDisjoint(with: .groupOrOthersWrite) else {
            throw .directory(path: path, message: messageString("mode \(status.permissions) lets others write to it (expected \(permissions))"))
        }
    }

    /// The user's state without taking the lock (for decisions made before a prompt, and listings); a
    /// user never seen has an empty state. Before the first write under a uid, the state an older
    /// version kept under the user's name is read, so that replay protection survives the upgrade.
    public func read(account: Account) throws(StateError) -> UserState {
        try read(account: account, statePath: statePath(uid: account.uid))
    }

    private func read(account: Account, statePath path: String) throws(StateError) -> UserState {
        do {
            return try readState(path)
        } catch .file(.missing) {
            // Not for a name of digits only: users/1063.state may be uid 1063's, not user "1063"'s.
            guard isSafeUserName(account.name), !account.name.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return UserState()
            }
            do { return try readState(legacyStatePath(name: account.name)) } catch .file(.missing) { return UserState() }
        }
    }

    private func readState(_ path: String) throws(StateError) -> UserState {
        let bytes: [UInt8]
        do {
            // Root's own file (or the owner of state_dir's, in tests): never writable by anyone else.
            bytes = try readTrustedFile(path, owners: owner == 0 ? [0] : [0, owner], maxSize: UserState.maxSize, forbidden: .groupOrOthersWrite)
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
        let lock: FileDescriptor
        // Each of the user's paths built once for the whole transaction.
        let path = statePath(uid: account.uid)
        do {
            try prepare()
            lock = try acquireLock(path: userPath(uid: account.uid, "lock"))
        } catch { throw .state(error) }
        // Closing the descriptor releases the flock.
        return try lock.closeAfter { () throws(CoreError) -> Result in
            let original: UserState
            do throws(StateError) { original = try read(account: account, statePath: path) } catch { throw .state(error) }
            let file = try location?.load(unlessUnchangedSince: snapshot)
            var state = original
            let result = try body(&state, file)
            if state != original {
                // No directory fsync: losing the newest rename to a power cut can only bring back a replay
                // step or failure count from seconds before the crash, and a code that old has expired by the
                // time the host is back. It halves the disk flushes of every login.
                try withFileSizeLimitLifted(atLeast: Self.minimumFileSizeLimit) { () throws(CoreError) in
                    do throws(TrustedFileError) {
                        try writeState(state.serialized(), to: path, account: account)
                    } catch {
                        throw .state(.file(error))
                    }
                }
            }
            return result
        }
    }

    /// Replaces the user's state file: `users/.UID.state.tmp` (one name per user: only the lock holder
    /// writes it, and a copy left by a killed writer is truncated, never piled up), written root-only,
    /// fsync'd and renamed over the state file; only then, through the same descriptor, opened to the
    /// user's group. Nothing the user can read shows what a login decided before it is committed: a
    /// user who stops or kills their own setuid login (su, sudo) cannot learn a code was wrong and keep
    /// the failure from being counted. No directory fsync (see ``transaction(account:devices:_:)``).
    private func writeState(_ contents: [UInt8], to path: String, account: Account) throws(TrustedFileError) {
        let temporary = userPath(uid: account.uid, "state.tmp", hidden: true)
        let file: FileDescriptor
        do { file = try FileDescriptor.open(temporary, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite) } catch {
            throw .system(path: temporary, SystemError("open", error))
        }
        try file.closeAfter { () throws(TrustedFileError) in
            do throws(Errno) { try file.setPermissions(.ownerReadWrite) } catch { throw .system(path: temporary, SystemError("fchmod", error)) }
            do throws(Errno) { try file.writeAll(contents) } catch { throw .system(path: temporary, SystemError("write", error)) }
            do throws(Errno) { try file.sync() } catch { throw .system(path: temporary, SystemError("fsync", error)) }
            do throws(Errno) { try FileSystem.rename(temporary, to: path) } catch { throw .system(path: path, SystemError("rename", error)) }
            // Committed. Readable now by the user's own tools (engage2fa-enroll list/status), never by others.
            if owner == 0 { try? file.setOwner(0, group: account.gid) }
            try? file.setPermissions(.ownerReadWriteGroupRead)
        }
    }

    private func acquireLock(path: String) throws(StateError) -> FileDescriptor {
        let file: FileDescriptor
        do { file = try FileDescriptor.open(path, .readWrite, options: .create, permissions: .ownerReadWrite) } catch {
            throw .lock(path: path, SystemError("open", error))
        }
        do throws(Errno) {
            try file.lockExclusively(timeoutSeconds: lockTimeoutSeconds)
        } catch {
            file.close()
            if error == .wouldBlock { throw .lockTimeout(path: path, seconds: lockTimeoutSeconds) }
            throw .lock(path: path, SystemError("flock", error))
        }
        return file
    }
}
