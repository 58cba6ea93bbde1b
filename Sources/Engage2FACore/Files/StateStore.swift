#if canImport(Glibc)
import Glibc
#else
import CEngageSys
#endif

/// Replay protection for one device: the newest step accepted.
public struct DeviceUsage: Equatable, Sendable {
    public var lastStep: Int64
    public var lastUsed: Int64

    public init(lastStep: Int64, lastUsed: Int64) {
        self.lastStep = lastStep
        self.lastUsed = lastUsed
    }
}

/// What the module remembers about one user, in `state_dir`, where users cannot edit it.
public struct UserState: Equatable, Sendable {
    /// Consecutive wrong codes since the last success or lockout.
    public var failures = 0
    /// Unix time until which no code is asked for; 0 when not locked.
    public var lockedUntil: Int64 = 0
    /// By device id.
    public var devices: DeviceUsages = [:]

    public init() {}

    /// Seconds of lockout left. A clock that went backwards never stretches a lockout beyond
    /// `lockoutSeconds` from now.
    public func lockoutRemaining(now: Int64, lockoutSeconds: Int) -> Int64 {
        guard lockedUntil > now else { return 0 }
        return min(lockedUntil - now, Int64(lockoutSeconds))
    }

    /// A clock that went backwards leaves a lockout ending further ahead than `lockoutSeconds`:
    /// bring it back to at most that, so that nobody stays locked out longer than the policy says.
    public mutating func clampLockout(now: Int64, lockoutSeconds: Int) {
        if lockedUntil > now + Int64(lockoutSeconds) { lockedUntil = now + Int64(lockoutSeconds) }
    }

    /// Counts a wrong code; returns true when this one starts a lockout.
    public mutating func recordFailure(now: Int64, maxFailures: Int, lockoutSeconds: Int) -> Bool {
        failures += 1
        guard failures >= maxFailures else { return false }
        failures = 0
        lockedUntil = now + Int64(lockoutSeconds)
        return true
    }

    public mutating func recordSuccess(deviceID: String?, step: Int64?, now: Int64) {
        failures = 0
        lockedUntil = 0
        if let deviceID, let step { devices[deviceID] = DeviceUsage(lastStep: step, lastUsed: now) }
    }

    static let header: StaticString = "engage2fa-state 1"
    static let maxSize = 16 * 1024

    public func serialized() -> [UInt8] {
        var out = ByteWriter(capacity: 64 + 64 * devices.count)
        out.write(Self.header)
        out.write("\nfailures count=")
        out.write(failures)
        out.write(" locked-until=")
        out.write(lockedUntil)
        out.write("\n")
        for (id, usage) in devices.sortedByID() {
            out.write("device id=")
            out.write(string: id)
            out.write(" last-step=")
            out.write(usage.lastStep)
            out.write(" last-used=")
            out.write(usage.lastUsed)
            out.write("\n")
        }
        return out.bytes
    }

    /// Parses a state file (format version 1); any deviation is an error naming the line.
    public static func parse(_ bytes: [UInt8], path: String) throws(StateError) -> UserState {
        try bytes.withUnsafeBufferPointer { (buffer) throws(StateError) in try parse(buffer: buffer, path: path) }
    }

    private static func parse(buffer bytes: UnsafeBufferPointer<UInt8>, path: String) throws(StateError) -> UserState {
        var state = UserState()
        var lineNumber = 0
        for line in Lines(bytes) {
            lineNumber += 1
            if lineNumber == 1 {
                guard bytesEqual(line, header) else { throw .corrupt(path: path, line: 1, message: "expected '\(header)'") }
                continue
            }
            let words = line.pieces(separatedBy: UInt8(ascii: " "), keepEmpty: false)
            guard let record = words.first else { continue }
            var count: Int64? = nil, lockedUntil: Int64? = nil, lastStep: Int64? = nil, lastUsed: Int64? = nil
            var id: ByteSlice? = nil
            for word in words.dropFirst() {
                guard let equals = word.firstIndex(of: UInt8(ascii: "=")), equals != word.startIndex, equals != word.endIndex - 1 else {
                    throw .corrupt(path: path, line: lineNumber, message: "malformed field '\(word.text)'")
                }
                let key = word[..<equals], valueText = word[(equals + 1)...]
                if bytesEqual(key, "id") { id = valueText; continue }
                guard let value = parseInteger(valueText) else { throw .corrupt(path: path, line: lineNumber, message: "bad number in '\(word.text)'") }
                if bytesEqual(key, "count") { count = value }
                else if bytesEqual(key, "locked-until") { lockedUntil = value }
                else if bytesEqual(key, "last-step") { lastStep = value }
                else if bytesEqual(key, "last-used") { lastUsed = value }
            }
            if bytesEqual(record, "failures"), let count, let lockedUntil, count >= 0, lastStep == nil, lastUsed == nil, id == nil {
                state.failures = Int(count)
                state.lockedUntil = lockedUntil
            } else if bytesEqual(record, "device"), let lastStep, let lastUsed, let id, id.count == 16, id.allSatisfy({ hexValue($0) != nil }),
                count == nil, lockedUntil == nil {
                state.devices[id.text] = DeviceUsage(lastStep: lastStep, lastUsed: lastUsed)
            } else {
                throw .corrupt(path: path, line: lineNumber, message: "unexpected record '\(line.text)'")
            }
        }
        return state
    }
}

/// Replay state by device id. A user has a handful of devices, so this is a list: a Dictionary would
/// hash with a per-process random seed, two getrandom(2) calls in every sshd connection, to find one entry.
public struct DeviceUsages: Equatable, Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: DeviceUsage)
    private var entries: [Element] = []

    public init(dictionaryLiteral elements: (String, DeviceUsage)...) {
        for (id, usage) in elements { self[id] = usage }
    }

    public subscript(id: String) -> DeviceUsage? {
        get { entries.first { $0.key == id }?.value }
        set {
            let index = entries.firstIndex { $0.key == id }
            switch (index, newValue) {
            case (let index?, let usage?): entries[index].value = usage
            case (let index?, nil): entries.remove(at: index)
            case (nil, let usage?): entries.append((id, usage))
            case (nil, nil): break
            }
        }
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }
    public func makeIterator() -> IndexingIterator<[Element]> { entries.makeIterator() }

    public func filter(_ isIncluded: (String, DeviceUsage) -> Bool) -> DeviceUsages {
        var kept = DeviceUsages()
        kept.entries = entries.filter { isIncluded($0.key, $0.value) }
        return kept
    }

    /// In id order, as the state file lists them.
    func sortedByID() -> [Element] {
        entries.count < 2 ? entries : entries.sorted { $0.key < $1.key }
    }

    /// The same ids with the same usage, in any order.
    public static func == (lhs: DeviceUsages, rhs: DeviceUsages) -> Bool {
        lhs.count == rhs.count && lhs.entries.allSatisfy { rhs[$0.key] == $0.value }
    }
}

public enum StateError: Error, Equatable, CustomStringConvertible {
    case invalidUserName(String)
    case directory(path: String, message: String)
    case file(TrustedFileError)
    case corrupt(path: String, line: Int, message: String)
    case lockTimeout(path: String, seconds: Int)
    case lock(path: String, SystemError)

    public var description: String {
        switch self {
        case .invalidUserName(let user): "refusing to keep state for invalid user name '\(user)'"
        case .directory(let path, let message): "\(path): \(message)"
        case .file(let error): "\(error)"
        case .corrupt(let path, let line, let message): "\(path):\(line): \(message)"
        case .lockTimeout(let path, let seconds): "\(path): still locked by another login after \(seconds) s"
        case .lock(let path, let error): "\(path): \(error)"
        }
    }
}

/// The module's own files under `state_dir` (root, 0700), in the manner of pam_faillock's tally
/// directory: per user a small state file and a lock file, and one activation record.
///
///     state_dir/activation          the ratchet: when 2FA took effect
///     state_dir/users/NAME.state    replay and lockout state (replaced atomically)
///     state_dir/users/NAME.lock     flock(2) target, held across read–check–write
///
/// A login holds only its own user's lock, so logins of different users never wait for each other.
/// The lock file is never removed: a lock dies with the process that held it, so a crash leaves
/// nothing that blocks the next login.
public struct StateStore: Sendable {
    public let directory: String
    let usersDirectory: String
    /// How long a login waits for another login of the same user before failing.
    public var lockTimeoutSeconds = 5

    public let activationPath: String
    /// Who must own everything here: this process's user (root in the module), asked once.
    private let owner: uid_t

    public init(directory: String) {
        self.directory = directory
        owner = geteuid()
        usersDirectory = directory + "/users"
        activationPath = directory + "/activation"
    }

    public func statePath(user: String) -> String {
        var path = userFilePrefix(user)
        path.write("state")
        return path.text
    }

    /// `users/NAME.` under the state directory, to which each of the user's files adds its extension.
    private func userFilePrefix(_ user: String) -> ByteWriter {
        var path = ByteWriter(capacity: usersDirectory.utf8.count + user.utf8.count + 8)
        path.write(string: usersDirectory)
        path.write("/")
        path.write(string: user)
        path.write(".")
        return path
    }

    /// One user's state and lock files, named once for all the steps of a login.
    public struct UserFiles: Sendable {
        public let statePath: String
        let lockPath: String
    }

    public func files(user: String) throws(StateError) -> UserFiles {
        guard isValidUserName(user) else { throw .invalidUserName(user) }
        var path = userFilePrefix(user)
        let prefixLength = path.bytes.count
        path.write("state")
        let statePath = path.text
        path.bytes.removeSubrange(prefixLength...)
        path.write("lock")
        return UserFiles(statePath: statePath, lockPath: path.text)
    }

    /// Creates `state_dir` and its `users` folder (mode 700) if missing, and checks that both are
    /// directories owned by this process's user that nobody else can write to.
    public func prepare() throws(StateError) {
        try prepareDirectory(directory)
        try prepareDirectory(usersDirectory)
    }

    private func prepareDirectory(_ path: String) throws(StateError) {
        var info = stat()
        if path.withCString({ lstat($0, &info) }) != 0 {
            guard errno == ENOENT else { throw .directory(path: path, message: "\(SystemError("lstat"))") }
            if path.withCString({ mkdir($0, 0o700) }) != 0 && errno != EEXIST {
                throw .directory(path: path, message: "cannot create: \(SystemError("mkdir"))")
            }
            guard path.withCString({ lstat($0, &info) }) == 0 else { throw .directory(path: path, message: "\(SystemError("lstat"))") }
        }
        guard info.st_mode & mode_t(S_IFMT) == mode_t(S_IFDIR) else { throw .directory(path: path, message: "is not a directory (or is a symbolic link)") }
        guard info.st_uid == owner else { throw .directory(path: path, message: "owned by uid \(info.st_uid), expected \(owner)") }
        guard info.st_mode & 0o022 == 0 else {
            throw .directory(path: path, message: "mode \(String(info.st_mode & 0o7777, radix: 8)) lets others write to it (expected 700)")
        }
    }

    /// The user's state without taking the lock (for listings); a user never seen has an empty state.
    public func read(user: String) throws(StateError) -> UserState {
        try read(files(user: user))
    }

    public func read(_ files: UserFiles) throws(StateError) -> UserState {
        let path = files.statePath
        let bytes: [UInt8]
        do {
            bytes = try readTrustedFile(path, owners: [owner], maxSize: UserState.maxSize)
        } catch .missing {
            return UserState()
        } catch {
            throw .file(error)
        }
        return try UserState.parse(bytes, path: path)
    }

    /// Runs `body` on the user's state under the user's exclusive lock and saves what it changed
    /// before the lock is released, so two logins can never both accept the same code.
    public func update<Result>(user: String, _ body: (inout UserState) throws(CoreError) -> Result) throws(CoreError) -> Result {
        let files: UserFiles
        do { files = try self.files(user: user) } catch { throw .state(error) }
        return try update(files, body)
    }

    public func update<Result>(_ files: UserFiles, _ body: (inout UserState) throws(CoreError) -> Result) throws(CoreError) -> Result {
        let lock: Int32
        let original: UserState
        do {
            try prepare()
            lock = try acquireLock(path: files.lockPath)
        } catch { throw .state(error) }
        defer { close(lock) }  // closing the descriptor releases the flock
        let path = files.statePath
        do { original = try read(files) } catch { throw .state(error) }
        var state = original
        let result = try body(&state)
        if state != original {
            // No directory fsync: losing the newest rename to a power cut can only bring back a replay
            // step or failure count from seconds before the crash, and a code that old has expired by the
            // time the host is back. It halves the disk flushes of every login.
            do { try writeFileAtomically(path, contents: state.serialized(), syncDirectory: false) } catch {
                throw .state(.file(error))
            }
        }
        return result
    }

    /// Forgets the user's lockout (and, with `devices`, replay state): engage2fa-admin unlock and reset.
    public func clear(user: String, devices: Bool) throws(CoreError) {
        try update(user: user) { state in
            state.failures = 0
            state.lockedUntil = 0
            if devices { state.devices = [:] }
        }
    }

    private func acquireLock(path: String) throws(StateError) -> Int32 {
        let fd = path.withCString { cPath in retryOnInterrupt { open(cPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) } }
        guard fd >= 0 else { throw .lock(path: path, SystemError("open")) }
        var waitedMicroseconds = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let error = SystemError("flock")
                close(fd)
                throw .lock(path: path, error)
            }
            guard waitedMicroseconds < lockTimeoutSeconds * 1_000_000 else {
                close(fd)
                throw .lockTimeout(path: path, seconds: lockTimeoutSeconds)
            }
            usleep(2_000)
            waitedMicroseconds += 2_000
        }
        return fd
    }

    // MARK: The activation record

    static let activationHeader: StaticString = "engage2fa-activation 1"

    /// Whether 2FA was ever activated on this host.
    public func readActivation() -> ActivationState {
        let path = activationPath
        let bytes: [UInt8]
        do {
            bytes = try readTrustedFile(path, owners: [owner], maxSize: 4096, groupOtherMask: 0o022)
        } catch .missing {
            var info = stat()
            // The record is missing, but if the state directory itself cannot be looked at, we cannot know.
            if directory.withCString({ lstat($0, &info) }) != 0 && errno != ENOENT {
                return .unreadable(reason: "\(directory): \(SystemError("lstat"))")
            }
            return .never
        } catch {
            return .unreadable(reason: "\(error)")
        }
        let times: (activatedAt: Int64?, recordedAt: Int64?)? = bytes.withUnsafeBufferPointer { buffer in
            var lines = Lines(buffer)
            guard let first = lines.next(), bytesEqual(first, Self.activationHeader), let second = lines.next() else { return nil }
            var activatedAt: Int64? = nil
            var recordedAt: Int64? = nil
            var wordStart = second.startIndex
            for index in second.startIndex...second.endIndex where index == second.endIndex || second[index] == UInt8(ascii: " ") {
                let word = second[wordStart..<index]
                wordStart = index + 1
                guard let equals = word.firstIndex(of: UInt8(ascii: "=")) else { continue }
                if bytesEqual(word[..<equals], "activated-at") { activatedAt = parseInteger(word[(equals + 1)...]) }
                if bytesEqual(word[..<equals], "recorded-at") { recordedAt = parseInteger(word[(equals + 1)...]) }
            }
            return (activatedAt, recordedAt)
        }
        guard let times else { return .unreadable(reason: "\(path): not an activation record") }
        guard let activatedAt = times.activatedAt, let recordedAt = times.recordedAt else {
            return .unreadable(reason: "\(path): malformed activation record")
        }
        return .active(ActivationRecord(activatedAt: activatedAt, recordedAt: recordedAt))
    }

    /// Writes the activation record once; an existing record is never replaced.
    public func recordActivation(_ record: ActivationRecord) throws(StateError) {
        try prepare()
        if case .active = readActivation() { return }
        let text = "\(Self.activationHeader)\n" + "activated-at=\(record.activatedAt) recorded-at=\(record.recordedAt)\n"
            + "# 2FA took effect at activated-at (\(localDateTimeText(record.activatedAt))). It stays enforced even if\n"
            + "# start_date is later removed or moved: that is the point. Removing this file by hand is the only way back.\n"
        do { try writeFileAtomically(activationPath, contents: Array(text.utf8), mode: 0o644) } catch { throw .file(error) }
    }
}
