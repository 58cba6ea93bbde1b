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
        let homeBytes = home.utf8.span, pathBytes = path.utf8.span
        guard pathBytes.count >= homeBytes.count else { return false }
        for index in homeBytes.indices where pathBytes[index] != homeBytes[index] { return false }
        return (!homeBytes.isEmpty && homeBytes[homeBytes.count - 1] == UInt8(ascii: "/"))
            || (pathBytes.count > homeBytes.count && pathBytes[homeBytes.count] == UInt8(ascii: "/"))
    }

    static func expand(_ template: String, user: String, home: String) -> String {
        let bytes = template.utf8.span
        let tilde = bytes.starts(bytes.all, with: "~/")
        return expandEscapes(bytes, from: tilde ? 1 : 0, after: tilde ? home : "", user: user, host: home, fleet: nil)
    }

    /// The account name authenticator apps show under the issuer, from the `label` template.
    public func accountLabel(user: String, host: String) -> String {
        let fleetShown = fleetName ?? Config.domain(ofBase: fleet.base) ?? host
        return Config.expandingEscapes(label, user: user, host: host, fleet: fleetShown)
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

    /// `template` with `%u`, `%h` and `%f` (when `fleet` is given) replaced, and `%%` as one `%`; any other
    /// `%` is kept as it is.
    static func expandingEscapes(_ template: String, user: String, host: String, fleet: String?) -> String {
        expandEscapes(template.utf8.span, from: 0, after: "", user: user, host: host, fleet: fleet)
    }

    /// The longest expansion made (1 MiB, four times the longest policy file): a path cut there is far beyond
    /// PATH_MAX, fails to open (ENAMETOOLONG), and the login denies as for any device file it cannot read.
    static let expansionLimit = 1 << 20

    /// `prefix`, then `template` from `start` with its escapes replaced: written into one buffer on the stack
    /// and made a String once (a login builds its device file's path so).
    private static func expandEscapes(_ template: Span<UInt8>, from start: Int, after prefix: String, user: String, host: String, fleet: String?) -> String {
        let fleetText = fleet ?? ""
        let prefixBytes = prefix.utf8.span, userBytes = user.utf8.span, hostBytes = host.utf8.span, fleetBytes = fleetText.utf8.span
        /// The expansion, piece by piece, to `bytes` and `byte`: walked once to measure it, once to write it.
        func expand(_ bytes: (Span<UInt8>) -> Void, _ byte: (UInt8) -> Void) {
            bytes(prefixBytes)
            var escaping = false
            for index in start..<template.count {
                let next = template[index]
                if escaping {
                    escaping = false
                    switch next {
                    case UInt8(ascii: "%"): byte(next); continue
                    case UInt8(ascii: "u"): bytes(userBytes); continue
                    case UInt8(ascii: "h"): bytes(hostBytes); continue
                    case UInt8(ascii: "f") where fleet != nil: bytes(fleetBytes); continue
                    default: byte(UInt8(ascii: "%"))
                    }
                }
                if next == UInt8(ascii: "%") { escaping = true } else { byte(next) }
            }
            if escaping { byte(UInt8(ascii: "%")) }
        }
        // Exactly the room the expansion takes (a bound from the count of '%'s alone would reserve that many
        // homes), and never more than `expansionLimit`: a template of 100,000 '%h's and a home of a megabyte
        // from the directory would ask for a hundred gigabytes. What is cut off cannot be opened anyway.
        var length = 0
        expand({ length += $0.count }, { _ in length += 1 })
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(min(length, expansionLimit), 1)) { buffer in
            var count = 0
            expand({ bytes in
                let taken = min(bytes.count, buffer.count - count)
                bytes.withUnsafeBufferPointer { if taken > 0, let source = $0.baseAddress { memcpy(buffer.baseAddress! + count, source, taken) } }
                count += taken
            }, { byte in
                guard count < buffer.count else { return }
                buffer[count] = byte
                count += 1
            })
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<count]), as: UTF8.self)
        }
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

    @_optimize(size)
    public var description: String {
        var out = ByteWriter()
        out.write(string: file)
        out.write(":")
        out.write(line)
        out.write(": ")
        out.write(string: severity.rawValue)
        out.write(": ")
        out.write(string: message)
        return out.text
    }
}

/// A parsed policy file: the values that parsed (defaults elsewhere), and every problem found.
public struct ParsedConfig: Sendable {
    public var config: Config
    /// The problems and where each setting and deadline is: apart from `config`, so that a login's parse
    /// fills both in place and hands the Config on without a copy (`Config.load`).
    var lines = ConfigLines()

    init(config: Config) { self.config = config }

    public var diagnostics: [ConfigDiagnostic] {
        get { lines.diagnostics }
        set { lines.diagnostics = newValue }
    }
    /// The line each `[deadlines]` entry is on, for the checks.
    public var deadlineLines: [String: Int] {
        var lines: [String: Int] = [:]
        for (user, line) in self.lines.deadlineLineList { lines[user] = line }
        return lines
    }
    /// The line each setting is on (keys in lower case), for the checks.
    public var keyLines: [String: Int] {
        var lines: [String: Int] = [:]
        for index in 0..<Config.keyCount where self.lines.keyLineNumbers[index] != 0 { lines[Config.keyName(at: index)] = self.lines.keyLineNumbers[index] }
        for (key, line) in self.lines.unknownKeyLines { lines[key] = line }
        return lines
    }

    public var errors: [ConfigDiagnostic] { lines.errors }
    public var isValid: Bool { lines.isValid }
}

/// What a parse learns of a policy file besides its settings: every problem, and the line each setting
/// and deadline is on, so that checks about a value can point at it.
struct ConfigLines: Sendable {
    /// Room for every key (`Config.keyCount`; ConfigTests checks that they fit).
    static let keyCapacity = 32
    var diagnostics: [ConfigDiagnostic] = []
    var deadlineLineList = NamedValues<Int>()
    /// The line of each known key by its position in the key table (`Config.keyName(at:)`), 0 for a key
    /// the file does not set: a login's parse notes its keys without an array or a String.
    var keyLineNumbers = InlineArray<32, Int>(repeating: 0)
    /// Unknown keys (in lower case), each an error.
    var unknownKeyLines: [(key: String, line: Int)] = []

    /// Not inlined: a parse reports from a dozen places.
    @inline(never)
    mutating func report(file: String, line: Int, message: String, severity: ConfigDiagnostic.Severity) {
        diagnostics.append(ConfigDiagnostic(file: file, line: line, severity: severity, message: message))
    }

    var errors: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .error } }
    /// No error (asked without building the list of errors).
    var isValid: Bool {
        for diagnostic in diagnostics where diagnostic.severity == .error { return false }
        return true
    }

    /// The line a known key (in lower case) is set on.
    func line(ofKey key: String) -> Int? {
        let bytes = key.utf8.span
        guard let index = Config.keyIndex(bytes, bytes.all), keyLineNumbers[index] != 0 else { return nil }
        return keyLineNumbers[index]
    }
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
        var parsed = ParsedConfig(config: Config())
        parsed.lines.read(bytes.span, file: file, into: &parsed.config, warnings: true)
        return parsed
    }
}

extension ConfigLines {
    /// Reads the policy file's lines into `config`, noting here where each key is and every problem;
    /// with `warnings`, also the caveats about apps (`check`'s: the module uses errors only).
    mutating func read(_ bytes: Span<UInt8>, file: String, into config: inout Config, warnings: Bool) {
        func report(_ line: Int, _ message: String, _ severity: ConfigDiagnostic.Severity = .error) {
            self.report(file: file, line: line, message: message, severity: severity)
        }

        var inDeadlines = false
        var lineNumber = 0
        var start = 0
        var more = true
        // Lines split at '\n': a final '\n' is followed by one empty line, so line numbers count every '\n'.
        while more {
            let scan = scanPolicyLine(bytes, from: start)
            let line = bytes.trimmingBlanks(start..<scan.contentEnd)
            more = scan.end < bytes.count
            start = scan.end + 1
            lineNumber += 1
            if line.isEmpty { continue }
            if scan.sawControl, let bad = bytes.firstIndex(in: line, where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F }).map({ bytes[$0] }) {
                report(lineNumber, message("control character U+", String(bad, radix: 16, uppercase: true), " in line"))
                continue
            }
            if bytes[line.lowerBound] == UInt8(ascii: "[") {
                let closing = bytes.firstIndex(of: UInt8(ascii: "]"), in: line.lowerBound + 1..<line.upperBound) ?? line.upperBound
                let section = line.lowerBound + 1..<closing
                guard closing == line.upperBound - 1 else {
                    report(lineNumber, literalText("malformed section header (expected [deadlines])"))
                    continue
                }
                if bytes.spellsIgnoringASCIICase(bytes.trimmingBlanks(section), "deadlines") {
                    inDeadlines = true
                } else {
                    report(lineNumber, message("unknown section [", bytes.quoted(section), "] (the only section is [deadlines])"))
                }
                continue
            }
            let equals = scan.firstEquals
            guard equals >= 0 else {
                report(lineNumber, message("expected 'key = value', found '", bytes.quoted(line), "'"))
                continue
            }
            let keyBytes = bytes.trimmingBlanks(line.lowerBound..<equals)
            let valueBytes = bytes.trimmingBlanks(equals + 1..<line.upperBound)
            if keyBytes.isEmpty {
                report(lineNumber, literalText("missing key before '='"))
                continue
            }

            if inDeadlines {
                let key = bytes.text(keyBytes)
                guard isSafeUserName(key) else {
                    report(lineNumber, message("'", bytes.quoted(keyBytes), "' is not a valid user name"))
                    continue
                }
                if let first = deadlineLineList[key] {
                    report(lineNumber, message("duplicate deadline for '", bytes.quoted(keyBytes), "' (first given on line ", decimal(Int64(first)), ")"))
                    continue
                }
                do {
                    config.deadlines[key] = try PolicyDate(parsing: bytes.text(valueBytes))
                    deadlineLineList[key] = lineNumber
                } catch {
                    report(lineNumber, displayText(message("deadline for '", bytes.quoted(keyBytes), "': ", error.description, ""), limit: 256, escapingBackslashes: false))
                }
                continue
            }

            // A known key is noted by its place in the key table (no String made per line); an unknown one,
            // in lower case, is an error.
            let index = Config.keyIndex(bytes, keyBytes)
            var unknownKey = ""
            let first: Int
            if let index {
                first = keyLineNumbers[index]
                if first == 0 { keyLineNumbers[index] = lineNumber }
            } else {
                unknownKey = bytes.lowercasedText(keyBytes)
                first = unknownKeyLines.first(where: { $0.key.hasSameBytes(as: unknownKey) })?.line ?? 0
                if first == 0 { unknownKeyLines.append((unknownKey, lineNumber)) }
            }
            if first != 0 {
                report(lineNumber, message("duplicate key '", bytes.quoted(keyBytes), "' (first set on line ", decimal(Int64(first)), ")"))
                continue
            }
            guard let index else {
                report(lineNumber, message("unknown key '", displayText(unknownKey, limit: 64), "' (known: ", Config.knownKeys(), ")"))
                continue
            }
            if let problem = config.apply(keyAt: index, value: valueBytes, in: bytes) {
                report(lineNumber, problem)
            }
        }
        if config.fleet.store == .ldap, let missing = config.fleet.incompleteness {
            report(line(ofKey: "store") ?? 0, missing)
        }
        if warnings {
            for caveat in config.appCaveats {
                if let line = line(ofKey: caveat.key) { report(line, caveat.message, .warning) }
            }
        }
    }
}

extension Config {
    /// Every key, for the unknown-key error: the table's, then the fleet's.
    @_optimize(size)
    fileprivate static func knownKeys() -> String {
        var out = ByteWriter()
        for known in settings {
            if !out.bytes.isEmpty { out.write(", ") }
            out.write(known.name)
        }
        for key in FleetSettings.keys {
            out.write(", ")
            out.write(string: key)
        }
        return out.text
    }

    /// Sets the setting of the key at `index` in the key table from its value's bytes; returns what was
    /// wrong, or nil. A String is made only of a value kept or shown as text.
    fileprivate mutating func apply(keyAt index: Int, value range: Range<Int>, in bytes: Span<UInt8>) -> String? {
        let setting = index < Config.settings.count ? Config.settings[index].key : .fleet
        func integer(_ allowed: ClosedRange<Int>) -> Int? {
            guard let number = bytes.integer(range), allowed.contains(Int(number)) else { return nil }
            return Int(number)
        }
        /// The rule, then the value as the file has it.
        func not(_ rule: StaticString) -> String { message(rule, bytes.quoted(range), "'") }
        switch setting {
        case .startDate:
            let value = bytes.text(range)
            do { startDate = try PolicyDate(parsing: value) } catch { return displayText(message("start_date: ", error.description, ""), limit: 256, escapingBackslashes: false) }
        case .issuer:
            guard !range.isEmpty, bytes.firstIndex(of: UInt8(ascii: ":"), in: range) == nil else {
                return literalText("issuer must be a non-empty name without ':' (apps split the label at ':')")
            }
            issuer = bytes.text(range)
        case .label:
            let value = bytes.text(range)
            if let problem = Config.labelProblem(value) { return problem }
            label = value
        case .fleetName:
            guard !range.isEmpty, range.count <= 64, bytes.allSatisfy(in: range, { $0 >= 0x20 && $0 != 0x7F && $0 != UInt8(ascii: ":") }) else {
                return literalText("fleet_name must be a name of 1 to 64 bytes without ':' or control characters (apps split the label at ':')")
            }
            fleetName = bytes.text(range)
        case .window:
            guard let number = integer(Config.windowRange) else { return not("window must be a whole number of steps from 0 to 10, not '") }
            window = number
        case .maxFailures:
            guard let number = integer(Config.maxFailuresRange) else { return not("max_failures must be a whole number from 1 to 100, not '") }
            maxFailures = number
        case .lockoutSeconds:
            guard let number = integer(Config.lockoutRange) else { return not("lockout_seconds must be a whole number from 1 to 86400, not '") }
            lockoutSeconds = number
        case .secretPath:
            let value = bytes.text(range)
            guard bytes.starts(range, with: "/") || bytes.starts(range, with: "~/") || bytes.starts(range, with: "%h") else {
                return not("secret_path must be absolute or start with ~/ or %h, not '")
            }
            guard hasSubstring(value, "%u") || hasSubstring(value, "%h") || bytes.starts(range, with: "~/") else {
                return literalText("secret_path must differ per user: use %u, %h or ~/ (otherwise every user would share one file)")
            }
            guard !hasDotDotComponent(value) else { return literalText("secret_path must not contain '..'") }
            secretPath = value
        case .stateDir:
            guard bytes.starts(range, with: "/"), !hasDotDotComponent(bytes, range) else {
                return not("state_dir must be an absolute path without '..', not '")
            }
            stateDir = bytes.text(range)
        case .algorithm:
            guard let algorithm = OTPAlgorithm(name: bytes.text(range)) else { return not("algorithm must be SHA1, SHA256 or SHA512, not '") }
            newDeviceParameters.algorithm = algorithm
        case .digits:
            guard let number = integer(OTPParameters.digitRange) else { return not("digits must be 6, 7 or 8, not '") }
            newDeviceParameters.digits = number
        case .unprivileged:
            guard let choice = bytes.spells(range, "allow-self") ? UnprivilegedCallers.allowSelf : bytes.spells(range, "deny") ? .deny : nil else { return not("unprivileged must be allow-self or deny, not '") }
            unprivileged = choice
        case .period:
            guard let number = integer(OTPParameters.periodRange) else { return not("period must be 15 to 120 seconds, not '") }
            newDeviceParameters.period = number
        case .fleet:
            return fleet.apply(key: Config.keyName(at: index), value: bytes.text(range))
        case .exemptGroups, .onlyGroups, .exemptServices:
            return applyScope(setting, name: Config.keyName(at: index), value: bytes.text(range))
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

    /// The key table: `settings`, then `FleetSettings.keys`.
    static var keyCount: Int { settings.count + FleetSettings.keys.count }

    /// The key at `index` in the key table.
    static func keyName(at index: Int) -> String {
        index < settings.count ? settings[index].name.text : FleetSettings.keys[index - settings.count]
    }

    /// Where in the key table the key `range` spells (in any mix of ASCII case) is; nil for an unknown key.
    static func keyIndex(_ bytes: Span<UInt8>, _ range: Range<Int>) -> Int? {
        for index in settings.indices where settings[index].name.utf8CodeUnitCount == range.count {
            // Byte for byte first (keys are written in lower case), then in any mix of case.
            let name = settings[index].name
            if bytes.spells(range, name) || bytes.spellsIgnoringASCIICase(range, name) {
                return index
            }
        }
        for index in FleetSettings.keys.indices where bytes.spellsIgnoringASCIICase(range, FleetSettings.keys[index]) { return settings.count + index }
        return nil
    }
}

extension Config {
    /// Why `template` cannot be a `label`, or nil.
    @_optimize(size)
    static func labelProblem(_ template: String) -> String? {
        let bytes = template.utf8.span
        guard !bytes.isEmpty, bytes.count <= labelMaxBytes else {
            return message("label must be a name template of 1 to ", decimal(Int64(labelMaxBytes)), " bytes, such as %u@%h")
        }
        guard bytes.firstIndex(of: UInt8(ascii: ":"), in: bytes.all) == nil else {
            return message("label must not contain ':' (apps split issuer and account at ':'), not '", displayText(template, limit: 64), "'")
        }
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%") {
                let next = index + 1 < bytes.count ? bytes[index + 1] : 0
                guard next == UInt8(ascii: "u") || next == UInt8(ascii: "h") || next == UInt8(ascii: "f") || next == UInt8(ascii: "%") else {
                    return message("label: '%' must be followed by u (the user), h (the host), f (the fleet) or % (a percent sign), in '", displayText(template, limit: 64), "'")
                }
                index += 1
            }
            index += 1
        }
        return nil
    }
}

/// What one pass over a policy line found (`scanPolicyLine`).
private struct PolicyLine {
    /// The position of the line's '\n', or the file's end.
    var end: Int
    /// Where its comment starts, or `end`.
    var contentEnd: Int
    /// The position of its first '=' before the comment; -1 for none.
    var firstEquals: Int
    /// Whether it holds a control character other than a tab before the comment.
    var sawControl: Bool
}

/// The line starting at `start`, in one pass to its '\n'. A '#' starts a comment at the start of a line or
/// after white space, so `issuer = Team#1` keeps its '#'.
private func scanPolicyLine(_ bytes: Span<UInt8>, from start: Int) -> PolicyLine {
    // The rest of the file through one range-checked buffer (`withBuffer`), read at offsets below its count:
    // the busiest loop of a login's policy parse. Only the bytes the grammar looks at are visited one by one.
    bytes.withBuffer(start..<bytes.count) { rest in
        var line = PolicyLine(end: start + rest.count, contentEnd: -1, firstEquals: -1, sawControl: false)
        var offset = 0
        while let found = firstNotableByte(in: rest, from: offset) {
            let byte = rest[found]
            offset = found + 1
            if byte == 0x0A {
                line.end = start + found
                break
            }
            guard line.contentEnd < 0 else { continue }  // within the comment only its end matters
            if byte == UInt8(ascii: "#") {
                if found == 0 || rest[found - 1] == 0x20 || rest[found - 1] == 0x09 { line.contentEnd = start + found }
            } else if byte == UInt8(ascii: "=") {
                if line.firstEquals < 0 { line.firstEquals = start + found }
            } else if byte != 0x09 {
                line.sawControl = true
            }
        }
        if line.contentEnd < 0 { line.contentEnd = line.end }
        return line
    }
}

/// The position of the first byte from `offset` on that the policy grammar looks at: a control character
/// ('\n' and tabs too), '#', '=' or DEL. Eight bytes at a time (letters, digits and the like make up most of a file).
/// Inlined into its one caller: called twice a line or more, its constants are then loaded once a line.
@inline(__always)
private func firstNotableByte(in bytes: UnsafeBufferPointer<UInt8>, from offset: Int) -> Int? {
    var offset = offset
    let raw = UnsafeRawBufferPointer(bytes)
    while offset + 8 <= raw.count {
        let notable = notableBytes(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
        if notable != 0 { return offset + notable.trailingZeroBitCount / 8 }
        offset += 8
    }
    while offset < bytes.count {
        let byte = bytes[offset]
        if byte < 0x20 || byte == UInt8(ascii: "#") || byte == UInt8(ascii: "=") || byte == 0x7F { return offset }
        offset += 1
    }
    return nil
}

/// The high bit of each byte of `word` (first byte lowest) below 0x20, or '#', '=' or DEL. Exact for the lowest
/// such byte, the only one `firstNotableByte` uses: a borrow marks only bytes above one that is truly marked.
private func notableBytes(_ word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    func zeroBytes(_ value: UInt64) -> UInt64 { (value &- ones) & ~value }
    let below20 = (word &- ones &* 0x20) & ~word
    return (below20 | zeroBytes(word ^ (ones &* 0x23)) | zeroBytes(word ^ (ones &* 0x3D)) | zeroBytes(word ^ (ones &* 0x7F))) & (ones &* 0x80)
}

/// Whether a path has a `..` component.
func hasDotDotComponent(_ path: String) -> Bool {
    let bytes = path.utf8.span
    return hasDotDotComponent(bytes, bytes.all)
}

/// Whether the path in `range` has a `..` component.
func hasDotDotComponent(_ bytes: Span<UInt8>, _ range: Range<Int>) -> Bool {
    bytes.withBuffer(range) { path in
        // Most paths hold no '.' at all: memchr(3) tells at once.
        guard let start = path.baseAddress, memchr(start, Int32(UInt8(ascii: ".")), path.count) != nil else { return false }
        var run = 0  // bytes since the last '/', or -1 once the component is more than ".."
        for byte in path {
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
}

/// A user name that is safe in a path and a log line: whatever the user database (NSS: files, sssd, LDAP)
/// resolves is a user, so only what could escape a directory or forge a line is refused — `/`, NUL and
/// other control characters, `.` and `..` — and names longer than 256 bytes.
public func isSafeUserName(_ name: String) -> Bool {
    // Over the bytes in place, in one function: the generic `contains(where:)` over a String's UTF-8 view
    // cost ~1,100 instructions a call, and a login asks three times.
    var name = name
    return name.withUTF8 { isSafeUserName(bytes: $0) }
}

public func isSafeUserName(_ name: Substring) -> Bool { isSafeUserName(String(name)) }

@inline(never)
func isSafeUserName(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    guard !bytes.isEmpty, bytes.count <= 256 else { return false }
    if bytes.count <= 2 && bytes.allSatisfy({ $0 == UInt8(ascii: ".") }) { return false }
    for byte in bytes where byte == UInt8(ascii: "/") || byte < 0x20 || byte == 0x7F { return false }
    return true
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
            bytes = try readTrustedFile(path, owners: FileOwners(0, or: euid == 0 ? nil : euid), maxSize: maxFileSize, forbidden: .groupOrOthersWrite)
        } catch .missing {
            return nil
        } catch {
            throw .untrusted(error)
        }
        // Eight bytes at a time for the usual all-ASCII file; `isValidUTF8` checks any other.
        guard bytes.span.isASCII(0..<bytes.count) || isValidUTF8(bytes.span) else { throw .notUTF8(path: path) }
        return bytes
    }

    /// Reads and parses the policy file as the module sees it (`readPolicyFile`). A missing file is
    /// an empty policy. Inlined into the module's one caller, so that the 350-byte state is made where it is kept.
    @inline(__always)
    public static func load(path: String) -> ConfigState {
        // The module uses errors only: the warnings about apps are `check`'s. The Config is filled in place
        // and put into the state once, by one return (it is 350 bytes: each copy of it counts).
        var config = Config()
        var lines = ConfigLines()
        var unreadable: String? = nil
        do throws(PolicyFileError) {
            if let bytes = try readPolicyFile(path: path) { lines.read(bytes.span, file: path, into: &config, warnings: false) }
        } catch {
            unreadable = error.description
        }
        if let unreadable { return .unreadable(reason: unreadable) }
        return lines.isValid ? .valid(consume config) : .invalid(consume config, errors: lines.errors)
    }
}

/// Whether `part` occurs in `text` (byte-wise; what String.contains(_:) does, without the Unicode
/// machinery Embedded Swift lacks).
func hasSubstring(_ text: String, _ part: StaticString) -> Bool {
    let haystack = text.utf8.span
    let length = part.utf8CodeUnitCount
    guard length <= haystack.count else { return false }
    for start in 0...(haystack.count - length) where haystack.spells(start..<start + length, part) { return true }
    return false
}
