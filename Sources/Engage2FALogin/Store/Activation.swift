import CEngageSys

/// When 2FA took effect on this host. Written once, the first time a decision is made at or after
/// `start_date`, and never removed by the software: from then on 2FA stays mandatory.
public struct ActivationRecord: Equatable, Sendable {
    /// The start date that took effect.
    public var activatedAt: Int64
    /// When the module first noticed, and wrote this record.
    public var recordedAt: Int64
    /// The policy file it was written for (nil in records older versions wrote).
    public var configPath: String?
    /// The policy's state_dir then: where replay state, lockouts and revocations are, when the policy
    /// file can no longer be used (nil in records older versions wrote).
    public var stateDirectory: String?

    public init(activatedAt: Int64, recordedAt: Int64, configPath: String? = nil, stateDirectory: String? = nil) {
        self.activatedAt = activatedAt
        self.recordedAt = recordedAt
        self.configPath = configPath
        self.stateDirectory = stateDirectory
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

    /// `root/activation.d`, where the record of a policy file named by config= is (nil for the default file's).
    private let recordDirectory: String?

    public init(configPath: String, root: String = ActivationStore.defaultRoot, owner: uid_t = 0) {
        self.root = root
        self.configPath = configPath
        self.owner = owner
        if configPath.hasSameBytes(as: Config.defaultPath) {
            recordDirectory = nil
            recordPath = root + "/activation"
        } else {
            // One buffer for the directory and the record in it, the digest and its hex made in place.
            var path = ByteWriter(capacity: root.utf8.count + 78)
            path.write(string: root)
            path.write("/activation.d")
            recordDirectory = path.text
            path.write("/")
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
                path.bytes.append(contentsOf: UnsafeBufferPointer(start: hex, count: 2 * digestSize))
            }
            recordPath = path.text
        }
    }

    static let header: StaticString = "engage2fa-activation 1"

    /// Whether 2FA was ever activated for this policy file.
    public func read() -> ActivationState {
        if let state = directoryState(root) { return state }
        if let recordDirectory, let state = directoryState(recordDirectory) { return state }
        return Self.readRecord(recordPath, owners: [owner])
    }

    /// Why the record cannot be in `directory` (nil if it can be): not there, unreadable or untrusted.
    private func directoryState(_ directory: String) -> ActivationState? {
        let status: FileStatus
        do throws(Errno) {
            status = try FileStatus(path: directory, followSymbolicLinks: false)
        } catch .noSuchFileOrDirectory {
            // A directory that is not there holds no record: its parent is root's (/var/lib).
            return .never
        } catch {
            return .unreadable(reason: messageString("\(displayText(directory)): \(SystemError("lstat", error))"))
        }
        if let problem = untrustedDirectoryProblem(status) { return .unreadable(reason: messageString("\(displayText(directory)): \(problem)")) }
        return nil
    }

    /// Reads a record at `path`: missing is `.never`; anything else that is not a record, from the
    /// expected owner, not writable by others, is `.unreadable`.
    static func readRecord(_ path: String, owners: [uid_t]) -> ActivationState {
        let bytes: [UInt8]
        do {
            bytes = try readTrustedFile(path, owners: owners, maxSize: 4096, forbidden: .groupOrOthersWrite)
        } catch .missing {
            return .never
        } catch {
            return .unreadable(reason: error.description)
        }
        let fields = parseRecord(bytes.span)
        guard let fields else { return .unreadable(reason: messageString("\(displayText(path)): not an activation record")) }
        guard let activatedAt = fields.activatedAt, let recordedAt = fields.recordedAt else {
            return .unreadable(reason: messageString("\(displayText(path)): malformed activation record"))
        }
        let stateDirectory = fields.stateDirectory.flatMap { bytesStart($0.utf8, with: "/") && !hasDotDotComponent($0) ? $0 : nil }
        return .active(ActivationRecord(activatedAt: activatedAt, recordedAt: recordedAt, configPath: fields.config, stateDirectory: stateDirectory))
    }

    /// The fields of a record's second line; nil if the first is not the header.
    private static func parseRecord(_ bytes: Span<UInt8>) -> (activatedAt: Int64?, recordedAt: Int64?, config: String?, stateDirectory: String?)? {
        let firstEnd = bytes.position(of: 0x0A, in: 0..<bytes.count)
        guard bytes.spells(0..<firstEnd, Self.header), firstEnd < bytes.count else { return nil }
        let second = firstEnd + 1..<bytes.position(of: 0x0A, in: firstEnd + 1..<bytes.count)
        var activatedAt: Int64? = nil
        var recordedAt: Int64? = nil
        var config: String? = nil
        var stateDirectory: String? = nil
        // The words between single spaces, found in place (no array of their ranges).
        var start = second.lowerBound
        while start < second.upperBound {
            let word = start..<bytes.position(of: UInt8(ascii: " "), in: start..<second.upperBound)
            start = word.upperBound + 1
            let equals = bytes.position(of: UInt8(ascii: "="), in: word)
            guard equals < word.upperBound else { continue }
            let key = word.lowerBound..<equals, valueText = equals + 1..<word.upperBound
            if bytes.spells(key, "config") { config = bytes.percentDecoded(valueText); continue }
            if bytes.spells(key, "state-dir") { stateDirectory = bytes.percentDecoded(valueText); continue }
            let value = bytes.integer(valueText).flatMap { (0...UserState.maxTime).contains($0) ? $0 : nil }
            if bytes.spells(key, "activated-at") { activatedAt = value }
            if bytes.spells(key, "recorded-at") { recordedAt = value }
        }
        return (activatedAt, recordedAt, config, stateDirectory)
    }

    private func untrustedDirectoryProblem(_ status: FileStatus) -> String? {
        if status.type != .directory { return "is not a directory (or is a symbolic link)" }
        if status.owner != owner { return messageString("owned by uid \(status.owner), expected \(owner)") }
        if !status.permissions.isDisjoint(with: .groupOrOthersWrite) { return messageString("mode \(status.permissions) lets others write to it (expected 755)") }
        return nil
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
            if let problem = untrustedDirectoryProblem(status) { throw .directory(path: directory, message: problem) }
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
        let state = readRecord(stateDirectory + "/activation", owners: [0])
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
