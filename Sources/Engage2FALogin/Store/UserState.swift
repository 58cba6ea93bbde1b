import CEngageSys

/// Replay protection for one device: the newest step accepted.
public struct DeviceUsage: Equatable, Sendable {
    public var lastStep: Int64
    public var lastUsed: Int64

    public init(lastStep: Int64, lastUsed: Int64) {
        self.lastStep = lastStep
        self.lastUsed = lastUsed
    }
}

/// One recovery code consumed at a login: the set it belongs to (its salt) and the first bytes of its
/// hash. Kept in root's state so that using a code never needs a write to the user's home (a full home
/// or quota must not block the lost-phone path) and no rewrite of the device file can bring it back.
public struct RecoveryCodeUse: Equatable, Sendable {
    public var salt: [UInt8]
    public var hashPrefix: [UInt8]

    public init(salt: [UInt8], hashPrefix: [UInt8]) {
        self.salt = salt
        self.hashPrefix = hashPrefix
    }

    static let prefixLength = 8
}

/// What the module and engage2fa-admin keep about one user, in `state_dir`, where users cannot write.
public struct UserState: Equatable, Sendable {
    /// The same failures, lockout, replay state, deadline and revocations (ids compared as bytes).
    public static func == (lhs: UserState, rhs: UserState) -> Bool {
        lhs.failures == rhs.failures && lhs.lockedUntil == rhs.lockedUntil && lhs.devices == rhs.devices && lhs.deadline == rhs.deadline
            && lhs.revokedDevices.hasSameBytes(as: rhs.revokedDevices)
            && lhs.revokedRecoverySalts == rhs.revokedRecoverySalts && lhs.usedRecoveryCodes == rhs.usedRecoveryCodes
    }

    /// Consecutive wrong codes since the last success or lockout.
    public var failures = 0
    /// Unix time until which no code is asked for; 0 when not locked.
    public var lockedUntil: Int64 = 0
    /// By device id.
    public var devices = DeviceUsages()
    /// A personal deadline set by `engage2fa-admin extend` or `reset --deadline` (kept here, not in
    /// the policy file, which dpkg owns).
    public var deadline: PolicyDate? = nil
    /// Devices `engage2fa-admin reset` took away: their codes are refused whatever the device file says.
    public var revokedDevices: [String] = []
    /// Recovery-code sets (by salt) that `reset` took away.
    public var revokedRecoverySalts: [[UInt8]] = []
    /// Recovery codes used at a login.
    public var usedRecoveryCodes: [RecoveryCodeUse] = []

    public init() {}

    /// Seconds of lockout left. A clock that went backwards never stretches a lockout beyond
    /// `lockoutSeconds` from now.
    public func lockoutRemaining(now: Int64, lockoutSeconds: Int) -> Int64 {
        Self.lockoutRemaining(lockedUntil: lockedUntil, now: now, lockoutSeconds: lockoutSeconds)
    }

    /// The same for a lockout kept elsewhere (the fleet's directory).
    public static func lockoutRemaining(lockedUntil: Int64, now: Int64, lockoutSeconds: Int) -> Int64 {
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
        failures = min(failures, Self.maxFailureCount - 1) + 1
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

    /// The devices of `file` that still count: those `reset` did not take away.
    public func liveDevices(of file: DeviceFile?) -> [Device] {
        guard let file else { return [] }
        return revokedDevices.isEmpty ? file.devices : file.devices.filter { !revokedDevices.containsBytes(of: $0.id) }
    }

    /// The indices of the recovery codes of `file` that can still be used.
    public func liveRecoveryCodes(of file: DeviceFile?) -> [Int] {
        guard let recovery = file?.recovery, !revokedRecoverySalts.contains(recovery.salt) else { return [] }
        return recovery.hashes.indices.filter { index in
            let prefix = recovery.hashes[index].prefix(RecoveryCodeUse.prefixLength)
            return !usedRecoveryCodes.contains { $0.salt == recovery.salt && $0.hashPrefix.elementsEqual(prefix) }
        }
    }

    /// Bounds what is kept, newest first, so the file stays small. Revocations and used recovery codes
    /// are kept even when the device or code set is no longer in the file: a device file restored from
    /// a backup must not bring back a phone `reset` took away or a code already used.
    public mutating func prune(for file: DeviceFile?) {
        let ids = file?.devices.map { $0.id } ?? []
        if devices.count > Self.keptDeviceUsages {
            // Replay state of devices still in the file first, then the most recently used.
            let names = devices.names, usages = devices.values
            devices = devices.sorted { lhs, rhs in
                let (lhsKept, rhsKept) = (ids.containsBytes(of: names[lhs]), ids.containsBytes(of: names[rhs]))
                return lhsKept != rhsKept ? lhsKept : usages[lhs].lastUsed > usages[rhs].lastUsed
            }.prefix(Self.keptDeviceUsages)
        }
        if revokedDevices.count > Self.keptRevocations { revokedDevices.removeFirst(revokedDevices.count - Self.keptRevocations) }
        if revokedRecoverySalts.count > Self.keptRevokedSets { revokedRecoverySalts.removeFirst(revokedRecoverySalts.count - Self.keptRevokedSets) }
        if usedRecoveryCodes.count > Self.keptRecoveryUses { usedRecoveryCodes.removeFirst(usedRecoveryCodes.count - Self.keptRecoveryUses) }
    }

    static let keptDeviceUsages = 40
    static let keptRevocations = 64
    static let keptRevokedSets = 16
    static let keptRecoveryUses = 100

    // MARK: The file

    static let header: StaticString = "engage2fa-state 2"
    static let headerVersion1: StaticString = "engage2fa-state 1"
    static let maxSize = 16 * 1024
    /// Bounds on every number read back: a state file is root's, but sshd must not trap on anything.
    static let maxFailureCount = 1_000_000
    static let maxTime: Int64 = 1 << 40  // about the year 36812
    static let maxRecords = 256

    public func serialized() -> [UInt8] {
        var out = ByteWriter(capacity: 64 + 64 * devices.count)
        out.write(Self.header)
        out.write("\nfailures count=")
        out.write(failures)
        out.write(" locked-until=")
        out.write(lockedUntil)
        out.write("\n")
        for (id, usage) in devices.sortedByName() {
            out.write("device id=")
            out.write(string: id)
            out.write(" last-step=")
            out.write(usage.lastStep)
            out.write(" last-used=")
            out.write(usage.lastUsed)
            out.write("\n")
        }
        if let deadline {
            out.write("deadline date=")
            out.write(string: percentEncode(deadline.text))
            out.write("\n")
        }
        for id in revokedDevices {
            out.write("revoked-device id=")
            out.write(string: id)
            out.write("\n")
        }
        for salt in revokedRecoverySalts {
            out.write("revoked-recovery salt=")
            out.writeHex(salt)
            out.write("\n")
        }
        for use in usedRecoveryCodes {
            out.write("recovery-used salt=")
            out.writeHex(use.salt)
            out.write(" hash=")
            out.writeHex(use.hashPrefix)
            out.write("\n")
        }
        return out.bytes
    }

    /// Parses a state file (format version 1 or 2); any deviation, and any number out of its range, is
    /// an error naming the line.
    public static func parse(_ bytes: [UInt8], path: String) throws(StateError) -> UserState {
        try parse(span: bytes.span, path: path)
    }

    private static func parse(span bytes: Span<UInt8>, path: String) throws(StateError) -> UserState {
        var state = UserState()
        var lineNumber = 0
        var records = 0
        var lines = LineRanges()
        while let line = lines.next(in: bytes) {
            lineNumber += 1
            @inline(never)
            func fail(_ message: String) -> StateError { corruptState(path: path, line: lineNumber, message: message) }
            if lineNumber == 1 {
                guard bytes.spells(line, header) || bytes.spells(line, headerVersion1) else { throw fail(message("expected '", literalText(header), "'")) }
                continue
            }
            var words = WordRanges(line)
            guard let record = words.next(in: bytes) else { continue }
            var fieldCount = 0
            records += 1
            guard records <= maxRecords else { throw fail(message("more than ", decimal(Int64(maxRecords)), " records")) }
            var count: Int64? = nil, lockedUntil: Int64? = nil, lastStep: Int64? = nil, lastUsed: Int64? = nil
            var id: Range<Int>? = nil, salt: Range<Int>? = nil, hash: Range<Int>? = nil, date: Range<Int>? = nil
            while let word = words.next(in: bytes) {
                fieldCount += 1
                guard let equals = bytes.firstIndex(of: UInt8(ascii: "="), in: word), equals != word.lowerBound, equals != word.upperBound - 1 else {
                    throw fail(message("malformed field '", bytes.quoted(word), "'"))
                }
                let key = word.lowerBound..<equals, valueText = equals + 1..<word.upperBound
                if bytes.spells(key, "id") { id = valueText; continue }
                if bytes.spells(key, "salt") { salt = valueText; continue }
                if bytes.spells(key, "hash") { hash = valueText; continue }
                if bytes.spells(key, "date") { date = valueText; continue }
                guard let value = bytes.integer(valueText) else { throw fail(message("bad number in '", bytes.quoted(word), "'")) }
                if bytes.spells(key, "count") {
                    guard (0...Int64(maxFailureCount)).contains(value) else { throw fail(message("count ", decimal(value), " out of range")) }
                    count = value
                } else if bytes.spells(key, "locked-until") || bytes.spells(key, "last-step") || bytes.spells(key, "last-used") {
                    guard (0...maxTime).contains(value) else { throw fail(message("", bytes.text(key), " ", decimal(value), " out of range")) }
                    if bytes.spells(key, "locked-until") { lockedUntil = value }
                    else if bytes.spells(key, "last-step") { lastStep = value }
                    else { lastUsed = value }
                } else {
                    throw fail(message("unknown field '", bytes.quoted(key, limit: 32), "'"))
                }
            }
            func isDeviceID(_ text: Range<Int>?) -> Bool { text.map { $0.count == 16 && bytes.allSatisfy(in: $0) { hexValue($0) != nil } } ?? false }
            func onlyFields(_ expected: Int) -> Bool { fieldCount == expected }
            if bytes.spells(record, "failures"), let count, let lockedUntil, onlyFields(2) {
                state.failures = Int(count)
                state.lockedUntil = lockedUntil
            } else if bytes.spells(record, "device"), let lastStep, let lastUsed, isDeviceID(id), onlyFields(3) {
                state.devices[bytes.text(id!)] = DeviceUsage(lastStep: lastStep, lastUsed: lastUsed)
            } else if bytes.spells(record, "deadline"), let date, onlyFields(1) {
                guard let text = bytes.percentDecoded(date), let parsed = try? PolicyDate(parsing: text) else {
                    throw fail(message("bad deadline '", bytes.quoted(date), "'"))
                }
                state.deadline = parsed
            } else if bytes.spells(record, "revoked-device"), isDeviceID(id), onlyFields(1) {
                state.revokedDevices.append(bytes.text(id!))
            } else if bytes.spells(record, "revoked-recovery"), let salt, let saltBytes = bytes.hexBytes(salt), saltBytes.count == 16, onlyFields(1) {
                state.revokedRecoverySalts.append(saltBytes)
            } else if bytes.spells(record, "recovery-used"), let salt, let hash, let saltBytes = bytes.hexBytes(salt), saltBytes.count == 16,
                let hashBytes = bytes.hexBytes(hash), hashBytes.count == RecoveryCodeUse.prefixLength, onlyFields(2) {
                state.usedRecoveryCodes.append(RecoveryCodeUse(salt: saltBytes, hashPrefix: hashBytes))
            } else {
                throw fail(message("unexpected record '", bytes.quoted(line, limit: 96), "'"))
            }
        }
        return state
    }
}

/// Not inlined: the parser fails from a dozen places.
@inline(never)
private func corruptState(path: String, line: Int, message: String) -> StateError {
    .corrupt(path: path, line: line, message: message)
}

/// Replay state by device id (ids are ASCII hex: `sortedByName()` is the state file's id order).
public typealias DeviceUsages = NamedValues<DeviceUsage>
