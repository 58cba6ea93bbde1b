import CEngageSys

/// When 2FA took effect on this host. Written once, the first time a decision is made at or after
/// `start_date`, and never removed by the software: from then on 2FA stays mandatory.
public struct ActivationRecord: Equatable, Sendable {
    /// The start date that took effect.
    public var activatedAt: Int64
    /// When the module first noticed, and wrote this record.
    public var recordedAt: Int64
    /// The policy file it was written for (nil in records older versions wrote).
    public var configPath: String? {
        get { decoded(configRange, checkingDirectory: false) }
        set { configRange = newValue.map { appendEncoded($0) } }
    }
    /// The policy's state_dir then: where replay state, lockouts and revocations are, when the policy
    /// file can no longer be used (nil in records older versions wrote, or if the file's is not an absolute
    /// path without `..`).
    public var stateDirectory: String? {
        get { decoded(stateDirectoryRange, checkingDirectory: stateDirectoryIsRead) }
        set {
            stateDirectoryRange = newValue.map { appendEncoded($0) }
            stateDirectoryIsRead = false
        }
    }

    /// The text fields percent-encoded, as a record file has them (a read record's are the file's bytes),
    /// decoded only when asked for: a login needs neither unless its policy file is broken.
    private var texts: [UInt8] = []
    private var configRange: Range<Int>? = nil
    private var stateDirectoryRange: Range<Int>? = nil
    /// Whether the state directory is the one a file named, checked when asked for.
    private var stateDirectoryIsRead = false

    public init(activatedAt: Int64, recordedAt: Int64, configPath: String? = nil, stateDirectory: String? = nil) {
        self.activatedAt = activatedAt
        self.recordedAt = recordedAt
        self.configPath = configPath
        self.stateDirectory = stateDirectory
    }

    /// A record read from `file`, with its config= and state-dir= values where they are in it.
    fileprivate init(activatedAt: Int64, recordedAt: Int64, file: [UInt8], configRange: Range<Int>?, stateDirectoryRange: Range<Int>?) {
        self.activatedAt = activatedAt
        self.recordedAt = recordedAt
        texts = file
        self.configRange = configRange
        self.stateDirectoryRange = stateDirectoryRange
        stateDirectoryIsRead = true
    }

    /// The text field at `range`, decoded; with `checkingDirectory`, nil unless an absolute path without `..`.
    /// Not inlined: asked for rarely, from several places.
    @inline(never)
    private func decoded(_ range: Range<Int>?, checkingDirectory: Bool) -> String? {
        guard let range, let text = texts.span.percentDecoded(range) else { return nil }
        return !checkingDirectory || bytesStart(text.utf8, with: "/") && !hasDotDotComponent(text) ? text : nil
    }

    /// Not inlined: a field is set rarely (a new record, a legacy one moved), from several places.
    @inline(never)
    private mutating func appendEncoded(_ text: String) -> Range<Int> {
        let start = texts.count
        texts.appendText(percentEncode(text))
        return start..<texts.count
    }

    /// The same times and fields, however each is kept.
    public static func == (lhs: ActivationRecord, rhs: ActivationRecord) -> Bool {
        lhs.activatedAt == rhs.activatedAt && lhs.recordedAt == rhs.recordedAt && lhs.configPath == rhs.configPath
            && lhs.stateDirectory == rhs.stateDirectory
    }
}

/// What could be learnt about activation.
public enum ActivationState: Equatable, Sendable {
    case never
    case active(ActivationRecord)
    /// A record, or the directory it is kept in, that cannot be read or trusted. Only this software
    /// writes it, so it is treated as active: a record that a user could have removed proves nothing.
    case unreadable(reason: String)
}

/// Where the ratchet is kept: a place compiled into the module, never one named by the policy file it
/// protects, so that no damage to that file (deleted, made writable, a typo in `state_dir`) can make the
/// module look for the record somewhere else and find none.
///
///     /var/lib/engage2fa/activation                the policy file /etc/engage2fa.conf
///     /var/lib/engage2fa/activation.d/SHA256(PATH)  a policy file named by config=PATH
///
/// The record and every directory from /var/lib/engage2fa down to it must be owned by root, not writable
/// by group or others, and not symbolic links — on reading as on writing. It is not secret (mode 644),
/// so that `engage2fa-enroll status` and unprivileged PAM callers see whether 2FA is active.
public struct ActivationStore: Sendable {
    /// The compiled-in directory (the package creates it root:root 0755).
    public static let defaultRoot = "/var/lib/engage2fa"

    public let root: String
    public let configPath: String
    public let recordPath: String
    /// Who must own the record and its directories: root (tests name another owner with another root).
    let owner: uid_t

    /// `root/activation.d`, where the record of a policy file named by config= is, as a NUL-terminated C
    /// string (the bytes `recordPath` was made from: no String of its own); empty for the default file's.
    private let recordDirectoryPath: [UInt8]
    private let recordDirectoryLength: Int

    public init(configPath: String, root: String = ActivationStore.defaultRoot, owner: uid_t = 0) {
        self.root = root
        self.configPath = configPath
        self.owner = owner
        if configPath.hasSameBytes(as: Config.defaultPath) {
            recordDirectoryPath = []
            recordDirectoryLength = 0
            recordPath = root + "/activation"
        } else {
            // One buffer for the directory and the record in it, the digest and its hex made in place.
            var path = ByteWriter(capacity: root.utf8.count + 78)
            path.write(string: root)
            path.write("/activation.d/")
            recordDirectoryLength = path.bytes.count - 1
            var hasher = SHA256()
            var config = configPath
            config.withUTF8 { hasher.update(UnsafeRawBufferPointer($0)) }
            // The digest and its hex on the stack, the hex appended in one piece.
            let digestSize = SHA256Compression.digestSize
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 3 * digestSize) { buffer in
                let hex = buffer.baseAddress!, digest = hex + 2 * digestSize
                hasher.finalize(into: digest)
                let digits: StaticString = "0123456789abcdef"
                for index in 0..<digestSize {
                    hex[2 * index] = digits.utf8Start[Int(digest[index] >> 4)]
                    hex[2 * index + 1] = digits.utf8Start[Int(digest[index] & 15)]
                }
                path.bytes.append(contentsOf: UnsafeRawBufferPointer(start: hex, count: 2 * digestSize))
            }
            recordPath = path.text
            path.bytes[recordDirectoryLength] = 0
            recordDirectoryPath = path.bytes
        }
    }

    /// `root/activation.d` (nil for the default file's record).
    private var recordDirectory: String? { recordDirectoryLength == 0 ? nil : directoryName(isRecordDirectory: true) }

    /// The directory's name, for a message (not inlined: only an error or a new record needs it).
    @inline(never)
    private func directoryName(isRecordDirectory: Bool) -> String {
        isRecordDirectory ? String(decoding: recordDirectoryPath[..<recordDirectoryLength], as: UTF8.self) : root
    }

    static let header: StaticString = "engage2fa-activation 1"

    /// Whether 2FA was ever activated for this policy file.
    public func read() -> ActivationState {
        if let state = directoryState(isRecordDirectory: false) { return state }
        if recordDirectoryLength > 0, let state = directoryState(isRecordDirectory: true) { return state }
        return Self.readRecord(recordPath, owners: FileOwners(owner))
    }

    /// Why the record cannot be in `root` or the record directory (nil if it can be): not there, unreadable
    /// or untrusted.
    private func directoryState(isRecordDirectory: Bool) -> ActivationState? {
        let status: FileStatus
        do throws(Errno) {
            if isRecordDirectory { status = try FileStatus(cPath: recordDirectoryPath) } else { status = try FileStatus(path: root, followSymbolicLinks: false) }
        } catch .noSuchFileOrDirectory {
            // A directory that is not there holds no record: its parent is root's (/var/lib).
            return .never
        } catch {
            return .unreadable(reason: messageString("\(displayText(directoryName(isRecordDirectory: isRecordDirectory))): \(SystemError("lstat", error))"))
        }
        if let problem = untrustedDirectoryProblem(status, owner: owner, expected: .directoryAllRead) { return .unreadable(reason: messageString("\(displayText(directoryName(isRecordDirectory: isRecordDirectory))): \(problem)")) }
        return nil
    }

    /// Reads a record at `path`: missing is `.never`; anything else that is not a record, from the
    /// expected owner, not writable by others, is `.unreadable`.
    static func readRecord(_ path: String, owners: FileOwners) -> ActivationState {
        let bytes: [UInt8]
        do {
            bytes = try readTrustedFile(path, owners: owners, maxSize: 4096, forbidden: .groupOrOthersWrite)
        } catch .missing {
            return .never
        } catch {
            return .unreadable(reason: error.description)
        }
        guard let fields = parseRecord(bytes.span) else { return .unreadable(reason: messageString("\(displayText(path)): not an activation record")) }
        guard let activatedAt = fields.activatedAt, let recordedAt = fields.recordedAt else {
            return .unreadable(reason: messageString("\(displayText(path)): malformed activation record"))
        }
        return .active(ActivationRecord(activatedAt: activatedAt, recordedAt: recordedAt, file: bytes, configRange: fields.config, stateDirectoryRange: fields.stateDirectory))
    }

    /// The fields of a record's second line (the text fields as where their values are); nil if the first is not the header.
    private static func parseRecord(_ bytes: Span<UInt8>) -> (activatedAt: Int64?, recordedAt: Int64?, config: Range<Int>?, stateDirectory: Range<Int>?)? {
        let firstEnd = bytes.position(of: 0x0A, in: 0..<bytes.count)
        guard bytes.spells(0..<firstEnd, Self.header), firstEnd < bytes.count else { return nil }
        let second = firstEnd + 1..<bytes.position(of: 0x0A, in: firstEnd + 1..<bytes.count)
        var activatedAt: Int64? = nil
        var recordedAt: Int64? = nil
        var config: Range<Int>? = nil
        var stateDirectory: Range<Int>? = nil
        // The words between single spaces, found in place (no array of their ranges).
        var start = second.lowerBound
        while start < second.upperBound {
            let word = start..<bytes.position(of: UInt8(ascii: " "), in: start..<second.upperBound)
            start = word.upperBound + 1
            let equals = bytes.position(of: UInt8(ascii: "="), in: word)
            guard equals < word.upperBound else { continue }
            let key = word.lowerBound..<equals, valueText = equals + 1..<word.upperBound
            if bytes.spells(key, "config") { config = valueText; continue }
            if bytes.spells(key, "state-dir") { stateDirectory = valueText; continue }
            let value = bytes.integer(valueText).flatMap { (0...UserState.maxTime).contains($0) ? $0 : nil }
            if bytes.spells(key, "activated-at") { activatedAt = value }
            if bytes.spells(key, "recorded-at") { recordedAt = value }
        }
        return (activatedAt, recordedAt, config, stateDirectory)
    }

    /// Writes the record once (root only); an existing record is never replaced.
    public func record(_ record: ActivationRecord) throws(StateError) {
        for directory in [root] + (recordDirectory.map { [$0] } ?? []) {
            var status: FileStatus
            do throws(Errno) {
                status = try FileStatus(path: directory, followSymbolicLinks: false)
            } catch .noSuchFileOrDirectory {
                do throws(Errno) {
                    do throws(Errno) { try FileSystem.makeDirectory(directory, permissions: .directoryAllRead) } catch .fileExists {}
                    status = try FileStatus(path: directory, followSymbolicLinks: false)
                } catch {
                    throw .directory(path: directory, message: messageString("cannot create: \(SystemError("mkdir", error))"))
                }
                // The caller's umask (sudo keeps it) must not make the record unreadable to users.
                if status.permissions.accessBits != .directoryAllRead, status.owner == owner, status.type == .directory {
                    try? FileSystem.setPermissions(directory, .directoryAllRead)
                    status.permissions = .directoryAllRead
                }
            } catch {
                throw .directory(path: directory, message: messageString("cannot create: \(SystemError("mkdir", error))"))
            }
            if let problem = untrustedDirectoryProblem(status, owner: owner, expected: .directoryAllRead) { throw .directory(path: directory, message: problem) }
        }
        if case .active = read() { return }
        var text = ByteWriter(capacity: 256)
        text.write(Self.header)
        text.write("\nactivated-at=")
        text.write(record.activatedAt)
        text.write(" recorded-at=")
        text.write(record.recordedAt)
        if let configPath = record.configPath {
            text.write(" config=")
            text.write(string: percentEncode(configPath))
        }
        if let stateDirectory = record.stateDirectory {
            text.write(" state-dir=")
            text.write(string: percentEncode(stateDirectory))
        }
        text.write("\n# The policy file ")
        text.write(string: displayText(configPath))
        text.write(" took effect at activated-at (")
        text.write(string: localDateTimeText(record.activatedAt))
        text.write(").\n# 2FA stays enforced even if start_date is later removed or moved, or the policy file is broken:\n")
        text.write("# that is the point. Removing this file by hand is the only way back.\n")
        do { try writeFileAtomically(recordPath, contents: text.bytes, permissions: .ownerReadWriteAllRead) } catch { throw .file(error) }
    }

    /// The record an older version kept in `state_dir/activation`. It only ever adds enforcement: a
    /// record there counts (and is copied to the compiled-in place); its absence proves nothing.
    public static func readLegacy(stateDirectory: String, configPath: String) -> ActivationState {
        let state = readRecord(stateDirectory + "/activation", owners: FileOwners(0))
        // The default state_dir holds the compiled-in record of /etc/engage2fa.conf: it is the legacy record
        // of another policy file only if an older version wrote it (no config= in it), never if it names
        // another file.
        if case .active(let record) = state, let owner = record.configPath, !owner.hasSameBytes(as: configPath) { return .never }
        if case .unreadable(let reason) = state, reason.utf8.count > 0, effectiveUserID() != 0 {
            // An unprivileged caller cannot look into root's state_dir: that proves nothing either way.
            return .never
        }
        return state
    }

    public static func legacyPath(stateDirectory: String) -> String { stateDirectory + "/activation" }

    /// Whether 2FA was ever activated for this policy file, as the module and the commands both decide it:
    /// the compiled-in record; where there is none, a trusted record an older version left in
    /// `stateDirectory` (returned as `legacy` too, named for this policy file, so that a privileged caller
    /// copies it to the compiled-in place). An old record that cannot be trusted adds nothing: the
    /// compiled-in record is the ratchet, and junk in a state_dir others could write must not lock anyone out.
    public func readIncludingLegacy(stateDirectory: String) -> (state: ActivationState, legacy: ActivationRecord?) {
        let state = read()
        guard case .never = state, case .active(var legacy) = Self.readLegacy(stateDirectory: stateDirectory, configPath: configPath) else {
            return (state, nil)
        }
        legacy.configPath = configPath
        legacy.stateDirectory = legacy.stateDirectory ?? stateDirectory
        return (.active(legacy), legacy)
    }
}

extension Span where Element == UInt8 {
    /// Where the first `byte` in `range` is, or `range.upperBound`: memchr(3), not a checked loop a byte at a time.
    fileprivate func position(of byte: UInt8, in range: Range<Int>) -> Int {
        guard !range.isEmpty else { return range.upperBound }
        return withUnsafeBufferPointer { buffer in
            let start = UnsafeRawPointer(buffer.baseAddress!)
            guard let found = memchr(start + range.lowerBound, Int32(byte), range.count) else { return range.upperBound }
            return UnsafeRawPointer(found) - start
        }
    }
}
