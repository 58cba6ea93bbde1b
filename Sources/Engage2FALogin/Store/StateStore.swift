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

/// Why a directory of root's (state_dir, users/, the activation record's) cannot be trusted, nil if it can:
/// not a directory, another owner, or writable by others. One copy for the state and the activation record.
@inline(never)
func untrustedDirectoryProblem(_ status: FileStatus, owner: uid_t, expected permissions: FilePermissions) -> String? {
    if status.type != .directory { return "is not a directory (or is a symbolic link)" }
    if status.owner != owner { return messageString("owned by uid \(status.owner), expected \(owner)") }
    if !status.permissions.isDisjoint(with: .groupOrOthersWrite) {
        return messageString("mode \(status.permissions) lets others write to it (expected \(permissions))")
    }
    return nil
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
    /// `directory/users` as NUL-terminated bytes: every path of the store starts with them, and the directory's
    /// check of a login needs no String (`+` costs three times as much in the module).
    private let usersDirectoryCPath: [UInt8]
    /// `directory/users`, for a message or a directory to create.
    var usersDirectory: String { String(decoding: usersDirectoryCPath.dropLast(), as: UTF8.self) }
    /// The smallest RLIMIT_FSIZE under which state is written: far above any state file.
    static let minimumFileSizeLimit = 1 << 20
    /// How long a transaction waits for another one of the same user before failing.
    public var lockTimeoutSeconds = 5
    /// Who must own everything here: this process's user (root in the module), asked once.
    private let owner: uid_t

    public init(directory: String) {
        self.directory = directory
        owner = effectiveUserID()
        var path: [UInt8] = []
        path.reserveCapacity(directory.utf8.count + 7)
        path.appendText(directory)
        path.appendLiteral("/users")
        path.append(0)
        usersDirectoryCPath = path
    }

    /// `users/UID.EXTENSION` (`users/.UID.EXTENSION` when `hidden`).
    private func userPath(uid: uid_t, _ fileExtension: StaticString, hidden: Bool = false) -> String {
        usersPath(name: nil, uid: uid, fileExtension, hidden: hidden)
    }

    /// `users/NAME.state`, where older versions kept a user's state.
    private func legacyStatePath(name: String) -> String {
        var name = name
        return name.withUTF8 { usersPath(name: $0, uid: 0, "state", hidden: false) }
    }

    /// `users/[.]STEM.EXTENSION` (STEM: `name`, or else `uid` in decimal), written straight into the String's
    /// storage: its one allocation. Not inlined: one copy serves every path of the store.
    @inline(never)
    private func usersPath(name: UnsafeBufferPointer<UInt8>?, uid: uid_t, _ fileExtension: StaticString, hidden: Bool) -> String {
        String(unsafeUninitializedCapacity: usersPathCapacity(name: name)) { writeUsersPath(name: name, uid: uid, fileExtension, hidden: hidden, into: $0.baseAddress!) }
    }

    /// The same path as a NUL-terminated C string on the stack, handed to `call` (a system call, whose result
    /// is returned): no String is made for a path that only an error message would name.
    @inline(never)
    private func withUsersCPath(name: UnsafeBufferPointer<UInt8>?, uid: uid_t, _ fileExtension: StaticString, hidden: Bool,
                                _ call: (UnsafePointer<CChar>) -> Int32) -> Int32 {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: usersPathCapacity(name: name)) { buffer in
            _ = writeUsersPath(name: name, uid: uid, fileExtension, hidden: hidden, into: buffer.baseAddress!)
            return call(UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
    }

    /// Room for `users/.STEM.EXTENSION` and its NUL: a uid has at most 10 digits, an extension at most 9 bytes.
    @inline(__always)
    private func usersPathCapacity(name: UnsafeBufferPointer<UInt8>?) -> Int { usersDirectoryCPath.count - 1 + (name?.count ?? 10) + 14 }

    /// Writes `users/[.]STEM.EXTENSION` and a NUL at `out` (`usersPathCapacity` bytes); returns the path's length.
    private func writeUsersPath(name: UnsafeBufferPointer<UInt8>?, uid: uid_t, _ fileExtension: StaticString, hidden: Bool,
                                into out: UnsafeMutablePointer<UInt8>) -> Int {
        return usersDirectoryCPath.withUnsafeBufferPointer { directory in
            var end = UnsafeMutableRawPointer(out)
            func append(_ start: UnsafeRawPointer?, _ count: Int) {
                if let start { end.copyMemory(from: start, byteCount: count) }
                end += count
            }
            let separator: StaticString = "/.", dot: StaticString = "."
            append(directory.baseAddress, directory.count - 1)
            append(separator.utf8Start, hidden ? 2 : 1)
            if let name {
                append(name.baseAddress, name.count)
            } else {
                var digits = 1, rest = uid / 10
                while rest > 0 { digits += 1; rest /= 10 }
                rest = uid
                end += digits
                var digit = end
                repeat {
                    digit -= 1
                    digit.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10), as: UInt8.self)
                    rest /= 10
                } while rest > 0
            }
            append(dot.utf8Start, 1)
            append(fileExtension.utf8Start, fileExtension.utf8CodeUnitCount)
            end.storeBytes(of: 0, as: UInt8.self)
            return end - UnsafeMutableRawPointer(out)
        }
    }

    public func statePath(uid: uid_t) -> String { userPath(uid: uid, "state") }

    /// Creates `state_dir` and its `users` folder (mode 755) if missing, and checks that both are
    /// directories owned by this process's user that nobody else can write to.
    public func prepare() throws(StateError) {
        try prepareDirectory(directory, permissions: .directoryAllRead)
        // Searchable, not listable: a user opens their own state by its name, but cannot watch (inotify)
        // or list what is written here.
        // Already as it must be (every login after the first): checked without making its path's String.
        if let status = try? FileStatus(cPath: usersDirectoryCPath), status.permissions.accessBits == .directoryAllSearch,
           untrustedDirectoryProblem(status, owner: owner, expected: .directoryAllSearch) == nil {
            return
        }
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
        if let problem = untrustedDirectoryProblem(status, owner: owner, expected: permissions) { throw .directory(path: path, message: problem) }
    }

    /// The user's state without taking the lock (for decisions made before a prompt, and listings); a
    /// user never seen has an empty state. Before the first write under a uid, the state an older
    /// version kept under the user's name is read, so that replay protection survives the upgrade.
    public func read(account: Account) throws(StateError) -> UserState {
        try read(account: account, statePath: statePath(uid: account.uid))
    }

    /// The same, at the account's `statePath(uid:)` (a login builds it once for its read and its transaction).
    func read(account: Account, statePath path: String) throws(StateError) -> UserState {
        do {
            return try readState(path)
        } catch .file(.missing) {
            // Not for a name of digits only: users/1063.state may be uid 1063's, not user "1063"'s. Nothing there
            // (lstat: ENOENT), as on every host installed since, is told without making the path's String.
            var name = account.name
            let legacyMayExist = name.withUTF8 { name in
                isSafeUserName(bytes: name) && !name.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
                    && withUsersCPath(name: name, uid: 0, "state", hidden: false) { FileSystem.statusError($0) } != Errno.noSuchFileOrDirectory.rawValue
            }
            guard legacyMayExist else { return UserState() }
            do { return try readState(legacyStatePath(name: account.name)) } catch .file(.missing) { return UserState() }
        }
    }

    private func readState(_ path: String) throws(StateError) -> UserState {
        let bytes: [UInt8]
        do {
            // Root's own file (or the owner of state_dir's, in tests): never writable by anyone else.
            bytes = try readTrustedFile(path, owners: FileOwners(0, or: owner == 0 ? nil : owner), maxSize: UserState.maxSize, forbidden: .groupOrOthersWrite)
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
        try transaction(account: account, statePath: statePath(uid: account.uid), devices: location, unchangedSince: snapshot, body)
    }

    /// The same, for a caller that has the account's `statePath(uid:)` already (a login: its read before the prompt).
    func transaction<Result>(
        account: Account, statePath path: String, devices location: DeviceFileLocation?, unchangedSince snapshot: DeviceFileSnapshot? = nil,
        _ body: (inout UserState, DeviceFile?) throws(CoreError) -> Result
    ) throws(CoreError) -> Result {
        let lock: FileDescriptor
        // Each of the user's paths built once for the whole transaction.
        do {
            try prepare()
            lock = try acquireLock(uid: account.uid)
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
        // The temporary file's name is made as a String only for a message.
        func failure(_ call: String, _ error: Errno) -> TrustedFileError {
            .system(path: userPath(uid: account.uid, "state.tmp", hidden: true), SystemError(call, error))
        }
        var openError = Errno(rawValue: 0)
        let opened = withUsersCPath(name: nil, uid: account.uid, "state.tmp", hidden: true) { temporary in
            do throws(Errno) { return try FileDescriptor.open(cPath: temporary, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite).rawValue } catch {
                openError = error
                return -1
            }
        }
        guard opened >= 0 else { throw failure("open", openError) }
        let file = FileDescriptor(rawValue: opened)
        try file.closeAfter { () throws(TrustedFileError) in
            do throws(Errno) { try file.setPermissions(.ownerReadWrite) } catch { throw failure("fchmod", error) }
            do throws(Errno) { try file.writeAll(contents) } catch { throw failure("write", error) }
            do throws(Errno) { try file.sync() } catch { throw failure("fsync", error) }
            let renamed = path.withCString { destination in
                withUsersCPath(name: nil, uid: account.uid, "state.tmp", hidden: true) { temporary in FileSystem.renameError(temporary, to: destination) }
            }
            guard renamed == 0 else { throw .system(path: path, SystemError("rename", Errno(rawValue: renamed))) }
            // Committed. Readable now by the user's own tools (engage2fa-enroll list/status), never by others.
            if owner == 0 { try? file.setOwner(0, group: account.gid) }
            try? file.setPermissions(.ownerReadWriteGroupRead)
        }
    }

    /// Opens `users/UID.lock` and takes it.
    private func acquireLock(uid: uid_t) throws(StateError) -> FileDescriptor {
        var openError = Errno(rawValue: 0)
        let opened = withUsersCPath(name: nil, uid: uid, "lock", hidden: false) { path in
            do throws(Errno) { return try FileDescriptor.open(cPath: path, .readWrite, options: .create, permissions: .ownerReadWrite).rawValue } catch {
                openError = error
                return -1
            }
        }
        guard opened >= 0 else { throw .lock(path: userPath(uid: uid, "lock"), SystemError("open", openError)) }
        let file = FileDescriptor(rawValue: opened)
        do throws(Errno) {
            try file.lockExclusively(timeoutSeconds: lockTimeoutSeconds)
        } catch {
            file.close()
            if error == .wouldBlock { throw .lockTimeout(path: userPath(uid: uid, "lock"), seconds: lockTimeoutSeconds) }
            throw .lock(path: userPath(uid: uid, "lock"), SystemError("flock", error))
        }
        return file
    }
}
