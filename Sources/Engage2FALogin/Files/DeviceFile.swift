import CEngageSys

/// One linked authenticator.
public struct Device: Equatable, Sendable {
    /// Random, new each time a device is added, so that removing and re-adding "Phone" never
    /// inherits the old device's replay state.
    public var id: String
    public var name: String
    public var secret: [UInt8]
    public var parameters: OTPParameters
    public var addedAt: Int64
    /// The time step of the code typed to link the device. Logins refuse it and older steps: the
    /// enrolling command, run by the user, cannot record it in root's state directory, and without
    /// this the code typed at enrollment would work once more within the window.
    public var verifiedStep: Int64?

    public init(id: String, name: String, secret: [UInt8], parameters: OTPParameters, addedAt: Int64, verifiedStep: Int64? = nil) {
        self.id = id
        self.name = name
        self.secret = secret
        self.parameters = parameters
        self.addedAt = addedAt
        self.verifiedStep = verifiedStep
    }
}

/// One-time recovery codes for a lost phone, stored only as PBKDF2-HMAC-SHA256 hashes.
///
/// The set shares one random salt, so checking a typed code costs one derivation whatever the number
/// of codes left; the salt still makes every set's hashes unlike any other's.
public struct RecoveryCodes: Equatable, Sendable {
    public static let codeCount = 10
    public static let codeLength = 10
    public static let defaultIterations = 10_000
    /// The most a device file may ask for: the user writes it, and a login derives the key once.
    public static let maxIterations = 100_000

    public var salt: [UInt8]
    public var iterations: Int
    public var createdAt: Int64
    public var hashes: [[UInt8]]

    public init(salt: [UInt8], iterations: Int, createdAt: Int64, hashes: [[UInt8]]) {
        self.salt = salt
        self.iterations = iterations
        self.createdAt = createdAt
        self.hashes = hashes
    }

    /// The length of a google-authenticator scratch code, which `engage2fa-admin import` keeps as a recovery code.
    public static let scratchCodeLength = 8

    /// The typed code in canonical form (lower case, no spaces or hyphens), or nil if it cannot be a recovery
    /// code: ten characters of the alphabet, or eight digits (an imported scratch code).
    public static func normalize<Input: Collection>(_ input: Input) -> [UInt8]? where Input.Element == UInt8 {
        var out: [UInt8] = []
        var digitsOnly = true
        for byte in input {
            switch byte {
            case 0x20, 0x09...0x0D, UInt8(ascii: "-"): continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): out.append(byte + 0x20)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): out.append(byte)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): out.append(byte)
            default: return nil
            }
            digitsOnly = digitsOnly && byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            if out.count > codeLength { return nil }
        }
        if digitsOnly { return out.count == scratchCodeLength ? out : nil }
        // Our own codes never hold 0, 1, 8 or 9.
        guard out.count == codeLength, !out.contains(where: { $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: "1") || $0 == UInt8(ascii: "8") || $0 == UInt8(ascii: "9") }) else { return nil }
        return out
    }

    package static func hash(_ normalized: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        PBKDF2<SHA256Compression>.deriveKey(password: normalized, salt: salt, iterations: iterations, length: 32)
    }

    /// The index of the stored hash the typed code matches, comparing against every hash in constant time.
    public func match<Input: Collection>(_ input: Input) -> Int? where Input.Element == UInt8 {
        guard let normalized = Self.normalize(input) else { return nil }
        let candidate = Self.hash(normalized, salt: salt, iterations: iterations)
        var found: Int? = nil
        for (index, stored) in hashes.enumerated() where constantTimeEqual(stored, candidate) { found = index }
        return found
    }

    /// The stored form of a normalized code under this set's salt and iterations.
    public func hash(of normalized: [UInt8]) -> [UInt8] { Self.hash(normalized, salt: salt, iterations: iterations) }

    /// The index among `indices` (the codes not used yet) of the stored hash equal to `candidate`, comparing
    /// against each of them in constant time.
    public func match(hash candidate: [UInt8], among indices: [Int]) -> Int? {
        var found: Int? = nil
        for index in indices where constantTimeEqual(hashes[index], candidate) { found = index }
        return found
    }
}

public enum DeviceNameError: Error, Equatable, CustomStringConvertible {
    case empty
    case tooLong(limit: Int)
    /// More bytes of UTF-8 than `DeviceFile.maxNameBytes`.
    case tooManyBytes(limit: Int)
    /// A scalar `isUnsafeForDisplay` names: a control, a bidi or zero-width mark.
    case unsafeCharacter(UInt32)
    /// A space at the start or the end, which the name would be shown without.
    case surroundingSpace
    case duplicate(String)
    case tooManyDevices(limit: Int)

    @_optimize(size)
    public var description: String {
        switch self {
        case .empty: literalText("a device name cannot be empty")
        case .tooLong(let limit): message("a device name can be at most ", decimal(Int64(limit)), " characters")
        case .tooManyBytes(let limit): message("a device name can be at most ", decimal(Int64(limit)), " bytes long (UTF-8)")
        case .unsafeCharacter(let scalar):
            message("a device name cannot contain a control or invisible formatting character (found U+", scalarCode(scalar), ")")
        case .surroundingSpace: literalText("a device name cannot start or end with a space")
        case .duplicate(let name): message("there is already a device named '", displayText(name, limit: 256), "'")
        case .tooManyDevices(let limit): message("at most ", decimal(Int64(limit)), " devices can be linked")
        }
    }
}

/// `001B`, `202E`: a scalar's code as U+ notation writes it (at least four upper-case hex digits).
private func scalarCode(_ scalar: UInt32) -> String {
    let digits = String(scalar, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.utf8.count)) + digits
}

/// Why a device file was not used: the file itself, or a line in it.
public enum DeviceFileError: Error, Equatable, CustomStringConvertible {
    case file(TrustedFileError)
    case format(path: String, line: Int, message: String)

    public var description: String {
        switch self {
        case .file(let error): error.description
        case .format(let path, let line, let message): locatedMessage(path, line: line, message)
        }
    }
}

/// A user's devices and recovery codes, at `secret_path`.
///
/// Format (version 1), one record a line, fields `key=value` separated by single spaces, values
/// without spaces (the name is percent-encoded):
///
///     engage2fa-devices 1
///     device id=3f9a… added=1764000000 algorithm=SHA1 digits=6 period=30 verified-step=58800000 secret=JBSW… name=Pixel%208
///                                         (verified-step: optional, the step of the code typed to link it)
///     recovery-codes salt=9c1e… iterations=10000 created=1764000000
///     recovery hash=5b0d…                     (one line a code not used yet)
///
/// Lines starting with `#` and blank lines are ignored. Anything else is an error with its line.
public struct DeviceFile: Equatable, Sendable {
    public static let maxSize = 64 * 1024
    public static let maxDevices = 32
    public static let maxNameLength = 64
    package static let header: StaticString = "engage2fa-devices 1"

    public var devices: [Device] = []
    public var recovery: RecoveryCodes? = nil

    public init(devices: [Device] = [], recovery: RecoveryCodes? = nil) {
        self.devices = devices
        self.recovery = recovery
    }

    /// The most bytes (UTF-8) of a name a login accepts: what enrollment writes (at most `maxNameLength`
    /// characters, `DeviceFile.problem(inNewName:)` in the management library) stays within it.
    public static let maxNameBytes = 256

    /// Why a name read from a device file cannot be used at a login, or nil: what showing it in a log line
    /// and holding it need. Not empty, no control or invisible formatting character (`isUnsafeForDisplay`:
    /// it would reach root's terminal and the system log), no space at either end, at most `maxNameBytes`
    /// bytes. A login only ever shows a name (escaped), so the rules of naming devices well — a length in
    /// characters, no two names equal ignoring case — are enrollment's (the management library's), not the
    /// parser's: they need Unicode's tables, which the module does not carry.
    public static func problem(inName name: String) -> DeviceNameError? {
        guard !name.isEmpty else { return .empty }
        for scalar in name.unicodeScalars where isUnsafeForDisplay(scalar.value) { return .unsafeCharacter(scalar.value) }
        if name.utf8.first == UInt8(ascii: " ") || name.utf8.last == UInt8(ascii: " ") { return .surroundingSpace }
        if name.utf8.count > maxNameBytes { return .tooManyBytes(limit: maxNameBytes) }
        return nil
    }

    public static func parse(_ bytes: [UInt8], path: String) throws(DeviceFileError) -> DeviceFile {
        try parse(span: bytes.span, path: path)
    }

    private static func parse(span bytes: Span<UInt8>, path: String) throws(DeviceFileError) -> DeviceFile {
        var file = DeviceFile()
        var sawHeader = false
        var pendingHashes: [[UInt8]] = []
        var lineNumber = 0
        var fields = Fields()
        let isASCII = bytes.isASCII(bytes.all)
        var lines = LineRanges()
        while let line = lines.next(in: bytes) {
            lineNumber += 1
            @inline(never)
            func fail(_ message: String) -> DeviceFileError { formatError(path: path, line: lineNumber, message: message) }
            guard isASCII || bytes.isValidUTF8(line) else { throw fail(literalText("not valid UTF-8")) }
            if line.isEmpty || bytes[line.lowerBound] == UInt8(ascii: "#") { continue }
            if !sawHeader {
                guard bytes.spells(line, header) else { throw fail(message("expected '", literalText(header), "' (an unknown version or not a device file)")) }
                sawHeader = true
                continue
            }
            // The record's name, then `key=value` fields, each after a single space.
            let recordEnd = bytes.find(UInt8(ascii: " "), in: line)
            let record = DeviceFileRecord(bytes, line.lowerBound..<recordEnd)
            fields.removeAll()
            var wordStart = recordEnd + 1
            while wordStart <= line.upperBound {
                let wordEnd = bytes.find(UInt8(ascii: " "), in: wordStart..<line.upperBound)
                let word = wordStart..<wordEnd
                wordStart = wordEnd + 1
                guard let equals = bytes.firstIndex(of: UInt8(ascii: "="), in: word), equals != word.lowerBound else { throw fail(message("malformed field '", bytes.quoted(word), "'")) }
                let key = word.lowerBound..<equals
                guard fields.add(key: key, value: equals + 1..<word.upperBound, of: record, in: bytes) else { throw fail(message("duplicate field '", bytes.quoted(key), "'")) }
            }
            @inline(never)
            func field(_ key: DeviceFileKey) throws(DeviceFileError) -> Range<Int> {
                guard let value = fields.take(key) else { throw fail(message("missing field '", literalText(key.literal), "'")) }
                return value
            }
            @inline(never)
            func integer(_ key: DeviceFileKey, _ range: ClosedRange<Int64>) throws(DeviceFileError) -> Int64 {
                let text = try field(key)
                guard let value = bytes.integer(text), range.contains(value) else { throw fail(message("bad ", literalText(key.literal), " '", bytes.quoted(text), "'")) }
                return value
            }
            @inline(never)
            func hex(_ key: DeviceFileKey, count: Int) throws(DeviceFileError) -> [UInt8] {
                guard let value = bytes.hexBytes(try field(key)), value.count == count else { throw fail(message("bad ", literalText(key.literal), "")) }
                return value
            }
            switch record {
            case .device:
                let id = try field(.id)
                guard id.count == 16, bytes.allSatisfy(in: id, { hexValue($0) != nil }) else { throw fail(message("bad id '", bytes.quoted(id), "'")) }
                let added = try integer(.added, 0...Int64.max)
                let algorithmText = try field(.algorithm)
                guard let algorithm = algorithm(spelledBy: algorithmText, in: bytes) else {
                    throw fail(message("bad algorithm '", bytes.quoted(algorithmText), "'"))
                }
                let digits = try integer(.digits, 6...8)
                let period = try integer(.period, 15...120)
                let verifiedStep = fields.contains(.verifiedStep) ? try integer(.verifiedStep, 0...Int64.max) : nil
                let secretText = try field(.secret)
                let secret: [UInt8]
                do { secret = try Base32.decode(bytes: bytes.extracting(secretText)) } catch { throw fail(message("bad secret: ", error.description, "")) }
                guard secret.count >= 10 else { throw fail(literalText("secret shorter than 80 bits")) }
                guard let name = bytes.percentDecoded(try field(.name)) else { throw fail(literalText("bad name (not percent-encoded UTF-8)")) }
                if let problem = problem(inName: name) {
                    throw fail(message("bad device name '", displayText(name, limit: 64), "': ", problem.description,
                        "; edit name= on this line (percent-encoded) to plain printable text"))
                }
                // The same id twice would share one device's replay state (ids are ASCII hex: compared as bytes).
                guard !file.devices.contains(where: { bytes.spells(id, $0.id.utf8) }) else {
                    throw fail(message("duplicate device '", displayText(name, limit: 64), "'"))
                }
                guard file.devices.count < maxDevices else { throw fail(message("more than ", decimal(Int64(maxDevices)), " devices")) }
                file.devices.append(Device(
                    id: bytes.text(id), name: name, secret: secret,
                    parameters: OTPParameters(algorithm: algorithm, digits: Int(digits), period: Int(period)), addedAt: added,
                    verifiedStep: verifiedStep))
            case .recoveryCodes:
                guard file.recovery == nil else { throw fail(literalText("second recovery-codes line")) }
                let salt = try hex(.salt, count: 16)
                let iterations = try integer(.iterations, 1_000...Int64(RecoveryCodes.maxIterations))
                let created = try integer(.created, 0...Int64.max)
                file.recovery = RecoveryCodes(salt: salt, iterations: Int(iterations), createdAt: created, hashes: [])
            case .recovery:
                guard file.recovery != nil else { throw fail(literalText("recovery line before recovery-codes")) }
                guard pendingHashes.count < RecoveryCodes.codeCount else { throw fail(message("more than ", decimal(Int64(RecoveryCodes.codeCount)), " recovery codes")) }
                pendingHashes.append(try hex(.hash, count: 32))
            case .unknown:
                throw fail(message("unknown record '", bytes.quoted(line.lowerBound..<recordEnd), "'"))
            }
            // Each record has taken every key it reads: what is left is a key no record of its kind has.
            if let extra = fields.firstUnknownKeyInOrder(in: bytes) { throw fail(message("unknown field '", bytes.quoted(extra), "'")) }
        }
        guard sawHeader else { throw formatError(path: path, line: 1, message: message("empty file (expected '", literalText(header), "')")) }
        file.recovery?.hashes = pendingHashes
        return file
    }

    /// The algorithm a device line's `algorithm=` names, spelled exactly as `OTPAlgorithm`'s raw values are.
    private static func algorithm(spelledBy range: Range<Int>, in bytes: Span<UInt8>) -> OTPAlgorithm? {
        if bytes.spells(range, "SHA1") { return .sha1 }
        if bytes.spells(range, "SHA256") { return .sha256 }
        if bytes.spells(range, "SHA512") { return .sha512 }
        return nil
    }

    /// Reads and checks the device file; nil if there is none.
    ///
    /// - Parameter owners: uids that may own it: the user (and root, for admin-managed storage).
    public static func load(path: String, owners: [uid_t]) throws(DeviceFileError) -> DeviceFile? {
        var version: FileVersion? = nil
        return try load(path: path, owners: owners, version: &version)
    }

    /// The same, also giving the version of the file read.
    static func load(path: String, owners: [uid_t], version: inout FileVersion?) throws(DeviceFileError) -> DeviceFile? {
        let bytes: [UInt8]
        do {
            bytes = try readTrustedFile(path, owners: owners, maxSize: maxSize, version: &version)
        } catch .missing {
            return nil
        } catch {
            throw .file(error)
        }
        return try parse(bytes, path: path)
    }
}

/// The kinds of line of a device file after its header.
private enum DeviceFileRecord {
    case device, recoveryCodes, recovery, unknown

    init(_ bytes: Span<UInt8>, _ name: Range<Int>) {
        self = bytes.spells(name, "device") ? .device : bytes.spells(name, "recovery-codes") ? .recoveryCodes
            : bytes.spells(name, "recovery") ? .recovery : .unknown
    }

    /// Whether a record of this kind reads `key`.
    func reads(_ key: DeviceFileKey) -> Bool {
        switch self {
        case .device: key.rawValue <= DeviceFileKey.name.rawValue
        case .recoveryCodes: key == .salt || key == .iterations || key == .created
        case .recovery: key == .hash
        case .unknown: false
        }
    }
}

/// The keys the records read, each with its slot in `Fields`.
private enum DeviceFileKey: Int {
    case id, added, algorithm, digits, period, verifiedStep, secret, name  // device (in this order: `reads`)
    case salt, iterations, created  // recovery-codes
    case hash  // recovery

    var literal: StaticString {
        switch self {
        case .id: "id"
        case .added: "added"
        case .algorithm: "algorithm"
        case .digits: "digits"
        case .period: "period"
        case .verifiedStep: "verified-step"
        case .secret: "secret"
        case .name: "name"
        case .salt: "salt"
        case .iterations: "iterations"
        case .created: "created"
        case .hash: "hash"
        }
    }

    /// The key `range` spells, if any: picked by its length and first byte (no two keys share both), then
    /// compared in full.
    init?(_ range: Range<Int>, in bytes: Span<UInt8>) {
        guard !range.isEmpty else { return nil }
        let candidate: DeviceFileKey
        switch (range.count, bytes[range.lowerBound]) {
        case (2, UInt8(ascii: "i")): candidate = .id
        case (5, UInt8(ascii: "a")): candidate = .added
        case (9, UInt8(ascii: "a")): candidate = .algorithm
        case (6, UInt8(ascii: "d")): candidate = .digits
        case (6, UInt8(ascii: "p")): candidate = .period
        case (13, UInt8(ascii: "v")): candidate = .verifiedStep
        case (6, UInt8(ascii: "s")): candidate = .secret
        case (4, UInt8(ascii: "n")): candidate = .name
        case (4, UInt8(ascii: "s")): candidate = .salt
        case (10, UInt8(ascii: "i")): candidate = .iterations
        case (7, UInt8(ascii: "c")): candidate = .created
        case (4, UInt8(ascii: "h")): candidate = .hash
        default: return nil
        }
        guard bytes.spells(range, candidate.literal) else { return nil }
        self = candidate
    }
}

/// The `key=value` fields of one record, as positions in the bytes being parsed: the value of each key its
/// kind reads in that key's slot, found once as the line is split (no list to search, nothing allocated);
/// any other key in a list, kept only to refuse it twice and to name it in the error.
private struct Fields {
    private var values = InlineArray<12, Range<Int>>(repeating: 0..<0)
    /// Bit `key.rawValue`: the key's slot holds a value not taken yet.
    private var present: UInt16 = 0
    private var unknownKeys: [Range<Int>] = []

    /// Empties the fields for the next record, keeping the list's storage.
    mutating func removeAll() {
        present = 0
        unknownKeys.removeAll(keepingCapacity: true)
    }

    /// False if the key is already there.
    mutating func add(key: Range<Int>, value: Range<Int>, of record: DeviceFileRecord, in bytes: Span<UInt8>) -> Bool {
        if let known = DeviceFileKey(key, in: bytes), record.reads(known) {
            let bit: UInt16 = 1 << known.rawValue
            guard present & bit == 0 else { return false }
            present |= bit
            values[known.rawValue] = value
            return true
        }
        for other in unknownKeys where bytes.spells(other, sameAs: key) { return false }
        unknownKeys.append(key)
        return true
    }

    func contains(_ key: DeviceFileKey) -> Bool { present & (1 << key.rawValue) != 0 }

    /// The key's value, taken (a second take finds nothing).
    mutating func take(_ key: DeviceFileKey) -> Range<Int>? {
        guard contains(key) else { return nil }
        present &= ~(1 << key.rawValue)
        return values[key.rawValue]
    }

    /// The alphabetically first key the record does not read, so that an error names the same one whatever the order.
    func firstUnknownKeyInOrder(in bytes: Span<UInt8>) -> Range<Int>? {
        var first: Range<Int>? = nil
        for key in unknownKeys {
            if let current = first, !bytes.precedes(key, current) { continue }
            first = key
        }
        return first
    }
}

/// Not inlined: the parser fails from two dozen places.
@inline(never)
private func formatError(path: String, line: Int, message: String) -> DeviceFileError {
    .format(path: path, line: line, message: message)
}
