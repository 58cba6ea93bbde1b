import CEngageSys

// The lines the module and engage2fa-enroll exchange with engage2fad over its Unix sockets. One request
// line, one answer line; every string field is hex (no byte of a user or device name can split a field
// or a line), every number decimal and range-checked when read.

/// What the directory says about one user, as the policy needs it.
public struct FleetSnapshot: Equatable, Sendable {
    public var startDate: PolicyDate? = nil
    /// When the fleet first saw 2FA become mandatory (the central, add-only activation).
    public var activatedAt: Int64? = nil
    public var deadline: PolicyDate? = nil
    public var devices = 0
    public var recoveryCodes = 0
    public var lockedUntil: Int64 = 0
    /// The user's recovery-code salt and iterations (not secret): the module hashes the recovery codes a
    /// combined answer may end with, so that no part of the password goes to engage2fad.
    public var recoverySalt: [UInt8]? = nil
    public var recoveryIterations = 0

    public init() {}

    public var enrollment: EnrollmentState {
        devices > 0 ? .enrolled(devices: devices, recoveryCodes: recoveryCodes) : .notEnrolled
    }
}

/// engage2fad's answer to one request.
public enum FleetAnswer: Equatable, Sendable {
    case snapshot(FleetSnapshot)
    case accepted(deviceName: String)
    /// `candidate`: which of the hashes sent with the check matched (0 when none were sent).
    case recovery(codesLeft: Int, candidate: Int)
    case replayed, wrong, lockedNow
    case locked(remaining: Int64)
    /// No directory answered in time: the URIs tried and why.
    case unreachable(String)
    /// Anything else that went wrong, for the system log.
    case failed(String)
    /// Enrollment: the new device's secret and parameters (to show the user once), the fleet's name for
    /// the app's label, and how many devices the user has (then a code from one of them is needed too).
    case enrollment(secret: [UInt8], parameters: OTPParameters, issuer: String, existingDevices: Int)
    case done(String)
}

public enum FleetRequest: Equatable, Sendable {
    /// The longest typed answer sent to engage2fad: more than any code or recovery code.
    public static let maxTypedBytes = 256
    /// Recovery-code hashes (PBKDF2-SHA256, 32 bytes) a check may carry: a combined answer has at most two candidates.
    public static let recoveryHashBytes = 32
    public static let maxRecoveryHashes = 2

    case snapshot(user: String)
    /// `recoveryHashes`: a combined answer's recovery-code candidates, hashed by the module with the
    /// user's salt (the codes themselves may hold the end of the password).
    case check(user: String, typed: [UInt8], recoveryHashes: [[UInt8]])
    /// engage2fa-enroll: a new device named so, confirmed by `code`; `existingCode` from a device already linked.
    case enrollBegin(name: String)
    case enrollConfirm(code: [UInt8], existingCode: [UInt8])
}

extension FleetRequest {
    public var line: [UInt8] {
        var out = ByteWriter(capacity: 96)
        switch self {
        case .snapshot(let user): out.write("snapshot "); out.writeHex(string: user)
        case .check(let user, let typed, let hashes):
            out.write("check "); out.writeHex(string: user); out.write(" "); out.writeHex(typed)
            // The hashes one after another: the hex of their concatenation.
            if !hashes.isEmpty { out.write(" ") }
            for hash in hashes { out.writeHex(hash) }
        case .enrollBegin(let name): out.write("enroll-begin "); out.writeHex(string: name)
        case .enrollConfirm(let code, let existing):
            out.write("enroll-confirm "); out.writeHex(code); out.write(" "); out.writeHex(existing)
        }
        out.write("\n")
        return out.bytes
    }

    public init?(line: [UInt8]) {
        let fields = line[...].pieces(separatedBy: UInt8(ascii: " "), keepEmpty: true)
        guard let verb = fields.first else { return nil }
        func text(_ index: Int) -> String? { index < fields.count ? hexText(fields[index]) : nil }
        func bytes(_ index: Int) -> [UInt8]? { index < fields.count ? hexBytes(fields[index]) : nil }
        switch ByteWord(verb) {
        case "snapshot" where fields.count == 2:
            guard let user = text(1) else { return nil }
            self = .snapshot(user: user)
        case "check" where fields.count == 3 || fields.count == 4:
            guard let user = text(1), let typed = bytes(2), typed.count <= FleetRequest.maxTypedBytes else { return nil }
            var hashes: [[UInt8]] = []
            if fields.count == 4 {
                let size = FleetRequest.recoveryHashBytes
                guard let joined = bytes(3), !joined.isEmpty, joined.count % size == 0,
                      joined.count / size <= FleetRequest.maxRecoveryHashes else { return nil }
                hashes = stride(from: 0, to: joined.count, by: size).map { Array(joined[$0..<($0 + size)]) }
            }
            self = .check(user: user, typed: typed, recoveryHashes: hashes)
        case "enroll-begin" where fields.count == 2:
            guard let name = text(1) else { return nil }
            self = .enrollBegin(name: name)
        case "enroll-confirm" where fields.count == 3:
            guard let code = bytes(1), let existing = bytes(2), code.count <= 64, existing.count <= 256 else { return nil }
            self = .enrollConfirm(code: code, existingCode: existing)
        default:
            return nil
        }
    }
}

extension FleetAnswer {
    public var line: [UInt8] {
        var out = ByteWriter(capacity: 128)
        func hexField(_ text: String) { out.write(" "); out.writeHex(string: text) }
        switch self {
        case .snapshot(let snapshot):
            out.write("snapshot start=")
            if let start = snapshot.startDate { out.writeHex(string: start.text) } else { out.write("-") }
            out.write(" activated=")
            if let activated = snapshot.activatedAt { out.write(activated) } else { out.write("-") }
            out.write(" deadline=")
            if let deadline = snapshot.deadline { out.writeHex(string: deadline.text) } else { out.write("-") }
            out.write(" devices="); out.write(snapshot.devices)
            out.write(" recovery="); out.write(snapshot.recoveryCodes)
            out.write(" locked="); out.write(snapshot.lockedUntil)
            out.write(" rsalt="); if let salt = snapshot.recoverySalt { out.writeHex(salt) } else { out.write("-") }
            out.write(" riter="); out.write(snapshot.recoveryIterations)
        case .accepted(let name): out.write("accepted"); hexField(name)
        case .recovery(let left, let candidate): out.write("recovery "); out.write(left); out.write(" "); out.write(candidate)
        case .replayed: out.write("replayed")
        case .wrong: out.write("wrong")
        case .lockedNow: out.write("locked-now")
        case .locked(let remaining): out.write("locked "); out.write(remaining)
        case .unreachable(let reason): out.write("unreachable"); hexField(reason)
        case .failed(let reason): out.write("failed"); hexField(reason)
        case .enrollment(let secret, let parameters, let issuer, let existing):
            out.write("enrollment "); out.writeHex(secret); out.write(" "); out.write(string: parameters.algorithm.rawValue)
            out.write(" "); out.write(parameters.digits); out.write(" "); out.write(parameters.period); hexField(issuer)
            out.write(" "); out.write(existing)
        case .done(let message): out.write("done"); hexField(message)
        }
        out.write("\n")
        return out.bytes
    }

    public init?(line: [UInt8]) {
        let fields = line[...].pieces(separatedBy: UInt8(ascii: " "), keepEmpty: true)
        guard let verb = fields.first else { return nil }
        func number(_ index: Int, _ range: ClosedRange<Int64>) -> Int64? {
            guard index < fields.count, let value = parseInteger(fields[index]), range.contains(value) else { return nil }
            return value
        }
        switch ByteWord(verb) {
        // Seven fields: a cache written before the recovery parameters were added.
        case "snapshot" where fields.count == 7 || fields.count == 9:
            var snapshot = FleetSnapshot()
            for field in fields.dropFirst() {
                guard let equals = field.firstIndex(of: UInt8(ascii: "=")) else { return nil }
                let key = ByteWord(field[..<equals])
                let value = field[(equals + 1)...]
                let absent = value.count == 1 && value[value.startIndex] == UInt8(ascii: "-")
                switch key {
                case "start", "deadline":
                    guard !absent else { continue }
                    guard let text = hexText(value), let date = try? PolicyDate(parsing: text) else { return nil }
                    if key.spells("start") { snapshot.startDate = date } else { snapshot.deadline = date }
                case "activated", "locked", "devices", "recovery", "riter":
                    if absent && key.spells("activated") { continue }
                    // A time (no upper bound), or a count up to its limit: one parse for the five.
                    let limit = key.spells("riter") ? Int64(RecoveryCodes.maxIterations)
                        : key.spells("devices") || key.spells("recovery") ? 10_000 : Int64.max
                    guard let number = parseInteger(value), number >= 0, number <= limit else { return nil }
                    if key.spells("activated") {
                        snapshot.activatedAt = number
                    } else if key.spells("locked") {
                        snapshot.lockedUntil = number
                    } else if key.spells("devices") {
                        snapshot.devices = Int(number)
                    } else if key.spells("recovery") {
                        snapshot.recoveryCodes = Int(number)
                    } else {
                        snapshot.recoveryIterations = Int(number)
                    }
                case "rsalt":
                    guard !absent else { continue }
                    guard let salt = hexBytes(value), (1...64).contains(salt.count) else { return nil }
                    snapshot.recoverySalt = salt
                default:
                    return nil
                }
            }
            // A salt comes with its iterations: hashing with none would trap in the host process.
            if snapshot.recoverySalt != nil && snapshot.recoveryIterations < 1 { return nil }
            self = .snapshot(snapshot)
        case "recovery" where fields.count == 2 || fields.count == 3:
            guard let left = number(1, 0...10_000) else { return nil }
            let candidate = fields.count == 3 ? number(2, 0...Int64(FleetRequest.maxRecoveryHashes - 1)) : 0
            guard let candidate else { return nil }
            self = .recovery(codesLeft: Int(left), candidate: Int(candidate))
        case "replayed" where fields.count == 1: self = .replayed
        case "wrong" where fields.count == 1: self = .wrong
        case "locked-now" where fields.count == 1: self = .lockedNow
        case "locked" where fields.count == 2:
            guard let remaining = number(1, 0...86_400 * 365) else { return nil }
            self = .locked(remaining: remaining)
        case "accepted", "unreachable", "failed", "done":
            // One text field: parsed once for the four.
            guard fields.count == 2, let text = hexText(fields[1]) else { return nil }
            switch ByteWord(verb) {
            case "accepted": self = .accepted(deviceName: text)
            case "unreachable": self = .unreachable(text)
            case "failed": self = .failed(text)
            default: self = .done(text)
            }
        case "enrollment" where fields.count == 7:
            // The algorithm's raw value, matched as bytes.
            let algorithm: OTPAlgorithm? = switch ByteWord(fields[2]) {
            case "SHA1": .sha1
            case "SHA256": .sha256
            case "SHA512": .sha512
            default: nil
            }
            guard let secret = hexBytes(fields[1]), (10...64).contains(secret.count), let algorithm,
                  let digits = number(3, Int64(OTPParameters.digitRange.lowerBound)...Int64(OTPParameters.digitRange.upperBound)),
                  let period = number(4, Int64(OTPParameters.periodRange.lowerBound)...Int64(OTPParameters.periodRange.upperBound)),
                  let issuer = hexText(fields[5]), let existing = number(6, 0...10_000) else { return nil }
            self = .enrollment(secret: secret, parameters: OTPParameters(algorithm: algorithm, digits: Int(digits), period: Int(period)),
                               issuer: issuer, existingDevices: Int(existing))
        default:
            return nil
        }
    }
}

/// The text a hex field spells, if it is valid UTF-8: one copy for every text field of the protocol.
@inline(never)
func hexText(_ field: ArraySlice<UInt8>) -> String? {
    guard let bytes = hexBytes(field), isValidUTF8(bytes) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}

/// The bytes a hex field spells: through an UnsafeBufferPointer, the one copy of parseHex the lines of
/// files use too.
@inline(never)  // called by each field's parser: one copy
func hexBytes(_ field: ArraySlice<UInt8>) -> [UInt8]? {
    field.withUnsafeBufferPointer { parseHex($0) }
}

