import CEngageSys

/// The rollout policy, from /etc/engage2fa.conf.
public struct Config: Equatable, Sendable {
    public static let defaultPath = "/etc/engage2fa.conf"
    public static let windowRange = 0...10
    public static let maxFailuresRange = 1...100
    public static let lockoutRange = 1...86_400

    /// From this moment 2FA is mandatory; nil means not configured.
    public var startDate: PolicyDate? = nil
    /// The name authenticator apps show above the account.
    public var issuer = "Engage"
    /// Steps of clock skew accepted either side of now.
    public var window = 1
    /// Consecutive wrong codes before a temporary lockout.
    public var maxFailures = 5
    public var lockoutSeconds = 300
    /// The account name authenticator apps show under the issuer: `%u` the user, `%h` this host's name,
    /// `%f` the fleet's name, `%%` a percent sign. In local mode the host keeps two hosts' entries apart:
    /// apps that match entries on issuer and name (Google Authenticator on Android) would otherwise
    /// overwrite one with the other. In fleet mode one device serves every host: the fleet names it.
    public var label: String {
        get { labelSetting ?? (fleet.store == .ldap ? "%u@%f" : "%u@%h") }
        set { labelSetting = newValue }
    }
    /// `label` as the policy file sets it; nil: the default of the mode.
    public var labelSetting: String? = nil
    public static let labelMaxBytes = 128
    /// `fleet_name`: what `%f` says; nil: the DNS domain of ldap_base's dc= parts (dc=example,dc=org:
    /// example.org), else this host's name.
    public var fleetName: String? = nil
    /// Where a user's devices live; `%u`, `%h` and a leading `~` expand (see ``secretFilePath(user:home:)``).
    public var secretPath = "~/.engage2fa"
    /// Root-owned directory for what users must not edit: replay and lockout state, the activation record.
    public var stateDir = "/var/lib/engage2fa"
    /// How new devices compute codes.
    public var newDeviceParameters = OTPParameters()
    /// What an unprivileged PAM caller (a screen locker, pamtester run by a user), which can neither take
    /// a user's lock nor record a used code, may do once 2FA is active.
    public var unprivileged = UnprivilegedCallers.allowSelf
    /// Personal deadlines of users who have not linked a device, from `[deadlines]`.
    public var deadlines = NamedValues<PolicyDate>()
    /// `store` and the directory's keys (fleet mode).
    public var fleet = FleetSettings()
    /// Where the module applies (Policy/Scope.swift): members of these groups are never asked for a code;
    /// when `onlyGroups` is set, only its members are; services (lower case) that cannot prompt are not.
    public var exemptGroups: [String] = []
    public var onlyGroups: [String] = []
    public var exemptServices: [String] = []

    public init() {}

    /// The device file of one user.
    public func secretFilePath(user: String, home: String) -> String {
        Config.expand(secretPath, user: user, home: home)
    }

    /// True when the device file lives in the user's home, so the module must read it with the user's
    /// privileges; false for admin-managed storage elsewhere, read as root.
    public func secretFileIsInHome(user: String, home: String) -> Bool {
        Config.isInside(home: home, path: secretFilePath(user: user, home: home))
    }

    static func isInside(home: String, path: String) -> Bool {
        var home = home, path = path
        return home.withUTF8 { home in
            path.withUTF8 { path in
                guard path.count >= home.count, path[..<home.count].elementsEqual(home) else { return false }
                return home.last == UInt8(ascii: "/") || (path.count > home.count && path[home.count] == UInt8(ascii: "/"))
            }
        }
    }

    static func expand(_ template: String, user: String, home: String) -> String {
        if bytesStart(template.utf8, with: "~/") {
            return home + expandingEscapes(String(decoding: template.utf8.dropFirst(), as: UTF8.self), [(UInt8(ascii: "u"), user), (UInt8(ascii: "h"), home)])
        }
        return expandingEscapes(template, [(UInt8(ascii: "u"), user), (UInt8(ascii: "h"), home)])
    }

    /// The account name authenticator apps show under the issuer, from the `label` template.
    public func accountLabel(user: String, host: String) -> String {
        let fleetShown = fleetName ?? Config.domain(ofBase: fleet.base) ?? host
        return Config.expandingEscapes(label, [(UInt8(ascii: "u"), user), (UInt8(ascii: "h"), host), (UInt8(ascii: "f"), fleetShown)])
    }

    /// The DNS domain a base DN's dc= parts spell (RFC 2247), or nil when it has none usable in a label.
    static func domain(ofBase base: String) -> String? {
        var labels: [String] = []
        for part in Array(base.utf8)[...].pieces(separatedBy: UInt8(ascii: ","), keepEmpty: false) {
            let text = String(decoding: part, as: UTF8.self)
            let pair = Array(text.utf8)[...].pieces(separatedBy: UInt8(ascii: "="), keepEmpty: true)
            guard pair.count == 2, bytesEqualIgnoringASCIICase(trimmed(pair[0]), "dc") else { continue }
            let value = trimmed(pair[1])
            guard !value.isEmpty, value.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "\\") }) else { return nil }
            labels.append(String(decoding: value, as: UTF8.self))
        }
        return labels.isEmpty ? nil : labels.joined(separator: ".")
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while slice.first == UInt8(ascii: " ") { slice = slice.dropFirst() }
        while slice.last == UInt8(ascii: " ") { slice = slice.dropLast() }
        return slice
    }

    /// `template` with each `%X` whose letter `values` names replaced, and `%%` as one `%`; any other
    /// `%` is kept as it is.
    static func expandingEscapes(_ template: String, _ values: [(letter: UInt8, value: String)]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(template.utf8.count)
        var escaping = false
        for byte in template.utf8 {
            if escaping {
                escaping = false
                if byte == UInt8(ascii: "%") {
                    out.append(byte)
                    continue
                }
                if let value = values.first(where: { $0.letter == byte })?.value {
                    out.append(contentsOf: value.utf8)
                    continue
                }
                out.append(UInt8(ascii: "%"))
            }
            if byte == UInt8(ascii: "%") { escaping = true } else { out.append(byte) }
        }
        if escaping { out.append(UInt8(ascii: "%")) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// What the module does, once 2FA is active, for a PAM caller that does not run as root.
public enum UnprivilegedCallers: String, Equatable, Sendable {
    /// The caller may authenticate only the user it already runs as, with the password alone (the
    /// module returns PAM_IGNORE and logs it): that session passed 2FA to exist. Screen lockers.
    case allowSelf = "allow-self"
    /// Every login through an unprivileged caller is refused.
    case deny
}

/// One problem in a policy file, located so an admin can jump to it.
public struct ConfigDiagnostic: Equatable, Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }
    public var file: String
    public var line: Int
    public var severity: Severity
    public var message: String

    package init(file: String, line: Int, severity: Severity, message: String) {
        self.file = file
        self.line = line
        self.severity = severity
        self.message = message
    }

    public var description: String { "\(file):\(line): \(severity.rawValue): \(message)" }
}

/// A parsed policy file: the values that parsed (defaults elsewhere), and every problem found.
public struct ParsedConfig: Sendable {
    public var config: Config
    public var diagnostics: [ConfigDiagnostic]
    /// The line each `[deadlines]` entry is on, so checks about deadlines can point at it.
    var deadlineLineList = NamedValues<Int>()
    /// The same as a dictionary, for the checks.
    public var deadlineLines: [String: Int] {
        var lines: [String: Int] = [:]
        for (user, line) in deadlineLineList { lines[user] = line }
        return lines
    }
    /// The line each setting is on (keys in lower case, in file order), so checks about a value can point at it.
    /// A list, not a dictionary: a login parses the file and never asks (hashing ten keys costs more than it).
    var keyLineList: [(key: String, line: Int)] = []
    /// The same as a dictionary, for the checks.
    public var keyLines: [String: Int] {
        var lines: [String: Int] = [:]
        for (key, line) in keyLineList where lines[key] == nil { lines[key] = line }
        return lines
    }

    public var errors: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .error } }
    public var isValid: Bool { errors.isEmpty }

}

extension Config {
    /// Parses the grammar documented in engage2fa.conf(5):
    ///
    ///     # comment               (a '#' at the start, or after white space, begins a comment)
    ///     key = value             (settings, before any section)
    ///     [deadlines]
    ///     username = DATE         (a later deadline for one user without a device)
    ///
    /// Every line that cannot be understood is an error naming `file:line`; its setting keeps the default.
    public static func parse(_ text: String, file: String) -> ParsedConfig {
        parse(bytes: Array(text.utf8), file: file)
    }

    /// The same for the file's bytes, which must be valid UTF-8.
    static func parse(bytes: [UInt8], file: String) -> ParsedConfig {
        parse(span: bytes.span, file: file)
    }

    private static func parse(span bytes: Span<UInt8>, file: String) -> ParsedConfig {
        var config = Config()
        var diagnostics: [ConfigDiagnostic] = []
        // Ten keys at most: a list beats a dictionary's hashing.
        var firstLineOfKey: [(key: String, line: Int)] = []
        firstLineOfKey.reserveCapacity(16)
        var deadlineLines = NamedValues<Int>()
        var inDeadlines = false

        func report(_ line: Int, _ message: String, _ severity: ConfigDiagnostic.Severity = .error) {
            diagnostics.append(ConfigDiagnostic(file: file, line: line, severity: severity, message: message))
        }

        var lineNumber = 0
        var lines = LineRanges()
        while let rawLine = lines.next(in: bytes) {
            lineNumber += 1
            let line = stripComment(bytes, rawLine)
            if line.isEmpty { continue }
            if let bad = bytes.firstIndex(in: line, where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F }).map({ bytes[$0] }) {
                report(lineNumber, "control character U+\(String(bad, radix: 16, uppercase: true)) in line")
                continue
            }
            if bytes[line.lowerBound] == UInt8(ascii: "[") {
                let closing = bytes.firstIndex(of: UInt8(ascii: "]"), in: line.lowerBound + 1..<line.upperBound) ?? line.upperBound
                let section = line.lowerBound + 1..<closing
                guard closing == line.upperBound - 1 else {
                    report(lineNumber, "malformed section header (expected [deadlines])")
                    continue
                }
                if bytes.spellsIgnoringASCIICase(bytes.trimmingBlanks(section), "deadlines") {
                    inDeadlines = true
                } else {
                    report(lineNumber, "unknown section [\(bytes.quoted(section))] (the only section is [deadlines])")
                }
                continue
            }
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "="), in: line) else {
                report(lineNumber, "expected 'key = value', found '\(bytes.quoted(line))'")
                continue
            }
            let keyBytes = bytes.trimmingBlanks(line.lowerBound..<equals)
            let valueBytes = bytes.trimmingBlanks(equals + 1..<line.upperBound)
            if keyBytes.isEmpty {
                report(lineNumber, "missing key before '='")
                continue
            }

            if inDeadlines {
                let key = bytes.text(keyBytes)
                guard isSafeUserName(key) else {
                    report(lineNumber, "'\(bytes.quoted(keyBytes))' is not a valid user name")
                    continue
                }
                if let first = deadlineLines[key] {
                    report(lineNumber, "duplicate deadline for '\(bytes.quoted(keyBytes))' (first given on line \(first))")
                    continue
                }
                do {
                    config.deadlines[key] = try PolicyDate(parsing: bytes.text(valueBytes))
                    deadlineLines[key] = lineNumber
                } catch {
                    report(lineNumber, displayText("deadline for '\(bytes.quoted(keyBytes))': \(error)", limit: 256, escapingBackslashes: false))
                }
                continue
            }

            // A known key is named by the table's String (no String made per line); an unknown one is an error.
            let setting: (name: String, key: SettingKey)? = if let known = Config.settings.first(where: { bytes.spellsIgnoringASCIICase(keyBytes, $0.name) }) {
                (known.name.text, known.key)
            } else if let fleetKey = FleetSettings.keys.first(where: { bytes.spellsIgnoringASCIICase(keyBytes, $0) }) {
                (fleetKey, .fleet)
            } else { nil }
            let normalizedKey = setting?.name ?? String(decoding: keyBytes.map { asciiLowercase(bytes[$0]) }, as: UTF8.self)
            if let first = firstLineOfKey.first(where: { $0.key.hasSameBytes(as: normalizedKey) }) {
                report(lineNumber, "duplicate key '\(bytes.quoted(keyBytes))' (first set on line \(first.line))")
                continue
            }
            firstLineOfKey.append((normalizedKey, lineNumber))
            guard let setting else {
                report(lineNumber, "unknown key '\(displayText(normalizedKey, limit: 64))' (known: \((Config.settings.map { $0.name.text } + FleetSettings.keys).joined(separator: ", ")))")
                continue
            }
            if let problem = config.apply(setting.key, name: setting.name, value: valueBytes, in: bytes) {
                report(lineNumber, problem)
            }
        }
        if let missing = config.fleet.incompleteness {
            report(firstLineOfKey.first(where: { $0.key.spells("store") })?.line ?? 0, missing)
        }
        for caveat in config.appCaveats {
            if let line = firstLineOfKey.first(where: { $0.key.hasSameBytes(as: caveat.key) })?.line { report(line, caveat.message, .warning) }
        }
        var parsed = ParsedConfig(config: config, diagnostics: diagnostics)
        parsed.deadlineLineList = deadlineLines
        parsed.keyLineList = firstLineOfKey
        return parsed
    }

    /// Sets one setting from its value's bytes; returns what was wrong, or nil. A String is made only of a
    /// value kept or shown as text.
    private mutating func apply(_ setting: SettingKey, name: String, value range: Range<Int>, in bytes: Span<UInt8>) -> String? {
        func integer(_ allowed: ClosedRange<Int>) -> Int? {
            guard let number = bytes.integer(range), allowed.contains(Int(number)) else { return nil }
            return Int(number)
        }
        switch setting {
        case .startDate:
            let value = bytes.text(range)
            do { startDate = try PolicyDate(parsing: value) } catch { return displayText("start_date: \(error)", limit: 256, escapingBackslashes: false) }
        case .issuer:
            let value = bytes.text(range)
            guard !value.isEmpty, !value.utf8.contains(UInt8(ascii: ":")) else {
                return "issuer must be a non-empty name without ':' (apps split the label at ':')"
            }
            issuer = value
        case .label:
            let value = bytes.text(range)
            if let problem = Config.labelProblem(value) { return problem }
            label = value
        case .fleetName:
            let value = bytes.text(range)
            guard !value.isEmpty, value.utf8.count <= 64, value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F && $0 != UInt8(ascii: ":") }) else {
                return "fleet_name must be a name of 1 to 64 bytes without ':' or control characters (apps split the label at ':')"
            }
            fleetName = value
        case .window:
            guard let number = integer(Config.windowRange) else { return "window must be a whole number of steps from 0 to 10, not '\(bytes.quoted(range))'" }
            window = number
        case .maxFailures:
            guard let number = integer(Config.maxFailuresRange) else { return "max_failures must be a whole number from 1 to 100, not '\(bytes.quoted(range))'" }
            maxFailures = number
        case .lockoutSeconds:
            guard let number = integer(Config.lockoutRange) else { return "lockout_seconds must be a whole number from 1 to 86400, not '\(bytes.quoted(range))'" }
            lockoutSeconds = number
        case .secretPath:
            let value = bytes.text(range)
            guard bytesStart(value.utf8, with: "/") || bytesStart(value.utf8, with: "~/") || bytesStart(value.utf8, with: "%h") else {
                return "secret_path must be absolute or start with ~/ or %h, not '\(bytes.quoted(range))'"
            }
            guard hasSubstring(value, "%u") || hasSubstring(value, "%h") || bytesStart(value.utf8, with: "~/") else {
                return "secret_path must differ per user: use %u, %h or ~/ (otherwise every user would share one file)"
            }
            guard !hasDotDotComponent(value) else { return "secret_path must not contain '..'" }
            secretPath = value
        case .stateDir:
            let value = bytes.text(range)
            guard bytesStart(value.utf8, with: "/"), !hasDotDotComponent(value) else {
                return "state_dir must be an absolute path without '..', not '\(bytes.quoted(range))'"
            }
            stateDir = value
        case .algorithm:
            let value = bytes.text(range)
            guard let algorithm = OTPAlgorithm(name: value) else { return "algorithm must be SHA1, SHA256 or SHA512, not '\(bytes.quoted(range))'" }
            newDeviceParameters.algorithm = algorithm
        case .digits:
            guard let number = integer(OTPParameters.digitRange) else { return "digits must be 6, 7 or 8, not '\(bytes.quoted(range))'" }
            newDeviceParameters.digits = number
        case .unprivileged:
            guard let choice = bytes.spells(range, "allow-self") ? UnprivilegedCallers.allowSelf : bytes.spells(range, "deny") ? .deny : nil else { return "unprivileged must be allow-self or deny, not '\(bytes.quoted(range))'" }
            unprivileged = choice
        case .period:
            guard let number = integer(OTPParameters.periodRange) else { return "period must be 15 to 120 seconds, not '\(bytes.quoted(range))'" }
            newDeviceParameters.period = number
        case .fleet:
            return fleet.apply(key: name, value: bytes.text(range))
        case .exemptGroups, .onlyGroups, .exemptServices:
            return applyScope(setting, name: name, value: bytes.text(range))
        }
        return nil
    }
}

/// The policy's settings, each named by one key of the file.
enum SettingKey: Sendable {
    case startDate, issuer, label, fleetName, window, maxFailures, lockoutSeconds, secretPath, stateDir, algorithm, digits, period, unprivileged
    case exemptGroups, onlyGroups, exemptServices
    /// One of `FleetSettings.keys`.
    case fleet
}

extension Config {
    /// Every key but the fleet's (`FleetSettings.keys`), in the order engage2fa.conf(5) and the unknown-key
    /// error list them. Static strings: a key read from the file is matched here without reference counting.
    static let settings: [(name: StaticString, key: SettingKey)] = [
        ("start_date", .startDate), ("issuer", .issuer), ("label", .label), ("fleet_name", .fleetName), ("window", .window), ("max_failures", .maxFailures),
        ("lockout_seconds", .lockoutSeconds), ("secret_path", .secretPath), ("state_dir", .stateDir), ("algorithm", .algorithm),
        ("digits", .digits), ("period", .period), ("unprivileged", .unprivileged),
        ("exempt_groups", .exemptGroups), ("only_groups", .onlyGroups), ("exempt_services", .exemptServices),
    ]
}

extension Config {
    /// Why `template` cannot be a `label`, or nil.
    static func labelProblem(_ template: String) -> String? {
        let bytes = Array(template.utf8)
        guard !bytes.isEmpty, bytes.count <= labelMaxBytes else {
            return "label must be a name template of 1 to \(labelMaxBytes) bytes, such as %u@%h"
        }
        guard !bytes.contains(UInt8(ascii: ":")) else {
            return "label must not contain ':' (apps split issuer and account at ':'), not '\(displayText(template, limit: 64))'"
        }
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%") {
                let next = index + 1 < bytes.count ? bytes[index + 1] : 0
                guard next == UInt8(ascii: "u") || next == UInt8(ascii: "h") || next == UInt8(ascii: "f") || next == UInt8(ascii: "%") else {
                    return "label: '%' must be followed by u (the user), h (the host), f (the fleet) or % (a percent sign), in '\(displayText(template, limit: 64))'"
                }
                index += 1
            }
            index += 1
        }
        return nil
    }
}

/// The line without its comment and surrounding white space. A '#' starts a comment at the start
/// of a line or after white space, so `issuer = Team#1` keeps its '#'.
func stripComment(_ bytes: Span<UInt8>, _ line: Range<Int>) -> Range<Int> {
    var previousIsSpace = true
    var end = line.upperBound
    let part = bytes.extracting(line)
    for offset in part.indices {
        let byte = part[offset]
        let index = line.lowerBound + offset
        if byte == UInt8(ascii: "#") && previousIsSpace {
            end = index
            break
        }
        previousIsSpace = byte == 0x20 || byte == 0x09
    }
    return bytes.trimmingBlanks(line.lowerBound..<end)
}

/// Whether a path has a `..` component.
func hasDotDotComponent(_ path: String) -> Bool {
    let bytes = path.utf8.span
    var run = 0  // bytes since the last '/', or -1 once the component is more than ".."
    for index in 0..<bytes.count {
        let byte = bytes[index]
        if byte == UInt8(ascii: "/") {
            if run == 2 { return true }
            run = 0
        } else if byte == UInt8(ascii: ".") && run >= 0 && run < 2 {
            run += 1
        } else {
            run = -1
        }
    }
    return run == 2
}

/// A user name that is safe in a path and a log line: whatever the user database (NSS: files, sssd, LDAP)
/// resolves is a user, so only what could escape a directory or forge a line is refused — `/`, NUL and
/// other control characters, `.` and `..` — and names longer than 256 bytes.
public func isSafeUserName(_ name: some StringProtocol) -> Bool {
    let bytes = name.utf8
    guard !bytes.isEmpty, bytes.count <= 256 else { return false }
    if bytes.count <= 2 && bytes.allSatisfy({ $0 == UInt8(ascii: ".") }) { return false }
    return !bytes.contains { $0 == UInt8(ascii: "/") || $0 < 0x20 || $0 == 0x7F }
}

/// Why the policy file cannot be used.
public enum PolicyFileError: Error, Equatable {
    /// It failed a check of `readTrustedFile` (owner, mode, type, size) or could not be read.
    case untrusted(TrustedFileError)
    case notUTF8(path: String)

    /// For the system log and `check`: the path and what is wrong with it.
    public var description: String {
        switch self {
        case .untrusted(let error): error.description
        case .notUTF8(let path): "\(path): not valid UTF-8 text"
        }
    }
}

extension Config {
    public static let maxFileSize = 256 * 1024

    /// The policy file's bytes, read the one way the module and `engage2fa-admin check` trust it: a
    /// regular file (no symbolic link) owned by root, or by this process's user, that nobody else can
    /// write to (whoever can write it can grant deadlines), at most `maxFileSize` bytes, UTF-8 text.
    /// Nil when there is no file.
    public static func readPolicyFile(path: String) throws(PolicyFileError) -> [UInt8]? {
        let bytes: [UInt8]
        do {
            let euid = effectiveUserID()
            bytes = try readTrustedFile(path, owners: euid == 0 ? [0] : [0, euid], maxSize: maxFileSize, forbidden: .groupOrOthersWrite)
        } catch .missing {
            return nil
        } catch {
            throw .untrusted(error)
        }
        guard isValidUTF8(bytes.span) else { throw .notUTF8(path: path) }
        return bytes
    }

    /// Reads and parses the policy file as the module sees it (`readPolicyFile`). A missing file is
    /// an empty policy.
    public static func load(path: String) -> ConfigState {
        let bytes: [UInt8]
        do throws(PolicyFileError) {
            guard let read = try readPolicyFile(path: path) else { return .valid(Config()) }
            bytes = read
        } catch {
            return .unreadable(reason: error.description)
        }
        let parsed = parse(bytes: bytes, file: path)
        return parsed.isValid ? .valid(parsed.config) : .invalid(parsed.config, errors: parsed.errors)
    }
}

/// Whether `part` occurs in `text` (byte-wise; what String.contains(_:) does, without the Unicode
/// machinery Embedded Swift lacks).
func hasSubstring(_ text: String, _ part: String) -> Bool {
    let haystack = Array(text.utf8)
    let needle = Array(part.utf8)
    guard needle.count <= haystack.count else { return false }
    return (0...(haystack.count - needle.count)).contains { haystack[$0..<$0 + needle.count].elementsEqual(needle) }
}
