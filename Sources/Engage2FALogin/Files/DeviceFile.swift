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
            let record = line.lowerBound..<recordEnd
            var records = WordList(DeviceFileRecord.names)
            let kind = records.find(record, in: bytes).flatMap { DeviceFileRecord(rawValue: $0.place) }
            fields.start(kind?.keys ?? "")
            var wordStart = recordEnd + 1
            while wordStart <= line.upperBound {
                let wordEnd = bytes.find(UInt8(ascii: " "), in: wordStart..<line.upperBound)
                let word = wordStart..<wordEnd
                wordStart = wordEnd + 1
                switch fields.add(word, in: bytes) {
                case .added: break
                case .malformed: throw fail(message("malformed field '", bytes.quoted(word), "'"))
                case .duplicate(let key): throw fail(message("duplicate field '", bytes.quoted(key), "'"))
                }
            }
            @inline(never)
            func field(_ slot: Int) throws(DeviceFileError) -> Range<Int> {
                guard let value = fields.take(slot) else { throw fail(message("missing field '", fields.keys.word(slot), "'")) }
                return value
            }
            @inline(never)
            func integer(_ slot: Int, _ range: ClosedRange<Int64>) throws(DeviceFileError) -> Int64 {
                let text = try field(slot)
                guard let value = bytes.integer(text), range.contains(value) else { throw fail(message("bad ", fields.keys.word(slot), " '", bytes.quoted(text), "'")) }
                return value
            }
            @inline(never)
            func hex(_ slot: Int, count: Int) throws(DeviceFileError) -> [UInt8] {
                guard let value = bytes.hexBytes(try field(slot)), value.count == count else { throw fail(message("bad ", fields.keys.word(slot), "")) }
                return value
            }
            switch kind {
            case .device:
                let id = try field(DeviceKey.id)
                guard id.count == 16, bytes.allSatisfy(in: id, { hexValue($0) != nil }) else { throw fail(message("bad id '", bytes.quoted(id), "'")) }
                let added = try integer(DeviceKey.added, 0...Int64.max)
                let algorithmText = try field(DeviceKey.algorithm)
                // Spelled exactly as `OTPAlgorithm`'s raw values, in the order of its cases.
                var algorithms = WordList("SHA1 SHA256 SHA512")
                guard let algorithmIndex = algorithms.find(algorithmText, in: bytes)?.place else {
                    throw fail(message("bad algorithm '", bytes.quoted(algorithmText), "'"))
                }
                let algorithm: OTPAlgorithm = algorithmIndex == 0 ? .sha1 : algorithmIndex == 1 ? .sha256 : .sha512
                let digits = try integer(DeviceKey.digits, 6...8)
                let period = try integer(DeviceKey.period, 15...120)
                let verifiedStep = fields.contains(DeviceKey.verifiedStep) ? try integer(DeviceKey.verifiedStep, 0...Int64.max) : nil
                let secretText = try field(DeviceKey.secret)
                let secret: [UInt8]
                do { secret = try Base32.decode(bytes: bytes.extracting(secretText)) } catch { throw fail(message("bad secret: ", error.description, "")) }
                guard secret.count >= 10 else { throw fail(literalText("secret shorter than 80 bits")) }
                let nameText = try field(DeviceKey.name)
                let name: String
                if !nameText.isEmpty && nameText.count <= maxNameBytes
                    && bytes.allSatisfy(in: nameText, { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "%") && $0 != UInt8(ascii: "+") }) {
                    // Printable ASCII, no space and nothing escaped (a name like most): its own decoding, and
                    // one `problem(inName:)` accepts (not empty, nothing unsafe to show, no space, short).
                    name = bytes.text(nameText)
                } else {
                    guard let decoded = bytes.percentDecoded(nameText) else { throw fail(literalText("bad name (not percent-encoded UTF-8)")) }
                    if let problem = problem(inName: decoded) {
                        throw fail(message("bad device name '", displayText(decoded, limit: 64), "': ", problem.description,
                            "; edit name= on this line (percent-encoded) to plain printable text"))
                    }
                    name = decoded
                }
                // The same id twice would share one device's replay state (ids are ASCII hex: compared as bytes).
                let idText = bytes.text(id)
                guard !file.devices.contains(where: { $0.id.hasSameBytes(as: idText) }) else {
                    throw fail(message("duplicate device '", displayText(name, limit: 64), "'"))
                }
                guard file.devices.count < maxDevices else { throw fail(message("more than ", decimal(Int64(maxDevices)), " devices")) }
                file.devices.append(Device(
                    id: idText, name: name, secret: secret,
                    parameters: OTPParameters(algorithm: algorithm, digits: Int(digits), period: Int(period)), addedAt: added,
                    verifiedStep: verifiedStep))
            case .recoveryCodes:
                guard file.recovery == nil else { throw fail(literalText("second recovery-codes line")) }
                let salt = try hex(RecoveryCodesKey.salt, count: 16)
                let iterations = try integer(RecoveryCodesKey.iterations, 1_000...Int64(RecoveryCodes.maxIterations))
                let created = try integer(RecoveryCodesKey.created, 0...Int64.max)
                file.recovery = RecoveryCodes(salt: salt, iterations: Int(iterations), createdAt: created, hashes: [])
            case .recovery:
                guard file.recovery != nil else { throw fail(literalText("recovery line before recovery-codes")) }
                guard pendingHashes.count < RecoveryCodes.codeCount else { throw fail(message("more than ", decimal(Int64(RecoveryCodes.codeCount)), " recovery codes")) }
                pendingHashes.append(try hex(RecoveryKey.hash, count: 32))
            case nil:
                throw fail(message("unknown record '", bytes.quoted(record), "'"))
            }
            // Each record has taken every key it reads: what is left is a key no record of its kind has.
            if let extra = fields.firstUnknownKeyInOrder(in: bytes) { throw fail(message("unknown field '", bytes.quoted(extra), "'")) }
        }
        guard sawHeader else { throw formatError(path: path, line: 1, message: message("empty file (expected '", literalText(header), "')")) }
        file.recovery?.hashes = pendingHashes
        return file
    }

    /// Reads and checks the device file; nil if there is none.
    ///
    /// - Parameter owners: uids that may own it: the user (and root, for admin-managed storage).
    public static func load(path: String, owners: FileOwners) throws(DeviceFileError) -> DeviceFile? {
        var version: FileVersion? = nil
        return try load(path: path, owners: owners, version: &version)
    }

    /// The same, also giving the version of the file read.
    static func load(path: String, owners: FileOwners, version: inout FileVersion?) throws(DeviceFileError) -> DeviceFile? {
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

/// The kinds of line of a device file after its header, in the order of `names`.
private enum DeviceFileRecord: Int {
    case device, recoveryCodes, recovery

    static let names: StaticString = "device recovery-codes recovery"

    /// The keys a record of this kind reads, in the order `serialized()` writes them: a key's slot in
    /// `Fields` is its place here (`DeviceKey`, `RecoveryCodesKey`, `RecoveryKey`).
    var keys: StaticString {
        switch self {
        case .device: "id added algorithm digits period verified-step secret name"
        case .recoveryCodes: "salt iterations created"
        case .recovery: "hash"
        }
    }
}

/// Slots of a device line's keys.
private enum DeviceKey {
    static let id = 0, added = 1, algorithm = 2, digits = 3, period = 4, verifiedStep = 5, secret = 6, name = 7
}

/// Slots of a recovery-codes line's keys.
private enum RecoveryCodesKey {
    static let salt = 0, iterations = 1, created = 2
}

/// The slot of a recovery line's one key.
private enum RecoveryKey {
    static let hash = 0
}

/// Words separated by single spaces (`"id added algorithm"`), searched for a word of a file. A search starts
/// where the last one that found its word ended, wrapping around once: the file's writer writes the words
/// in the list's order, so in a file it wrote each search compares one word.
private struct WordList {
    let words: StaticString
    /// The byte offset in `words` of the word to try first, and its place in the list.
    private var start = 0, index = 0

    init(_ words: StaticString) { self.words = words }

    /// The place in the list of the word `range` spells, and its length; nil if it is none of them. With a
    /// `terminator`, the word `range` starts with, followed by that byte (a key and its `=`, found without a
    /// scan for the `=`: no word of a list holds one).
    mutating func find(_ range: Range<Int>, in bytes: Span<UInt8>, endingAt terminator: UInt8? = nil) -> (place: Int, length: Int)? {
        let list = UnsafeBufferPointer(start: words.utf8Start, count: words.utf8CodeUnitCount)
        guard !list.isEmpty else { return nil }
        let text = bytes.extracting(range)
        // Every offset read below is under `list.count` (a literal's length) or `text.count`.
        var wordStart = start, wordIndex = index
        repeat {
            // Compared in place: the same bytes to the end of the list's word, then the end of `range` or the terminator.
            var offset = 0, position = wordStart
            while offset < text.count && position < list.count && list[position] == text[offset] {
                offset += 1
                position += 1
            }
            var matches = position == list.count || list[position] == UInt8(ascii: " ")
            if let terminator { matches = matches && offset < text.count && text[offset] == terminator } else { matches = matches && offset == text.count }
            while position < list.count && list[position] != UInt8(ascii: " ") { position += 1 }
            let atEnd = position == list.count
            let nextStart = atEnd ? 0 : position + 1, nextIndex = atEnd ? 0 : wordIndex + 1
            if matches {
                start = nextStart
                index = nextIndex
                return (wordIndex, offset)
            }
            wordStart = nextStart
            wordIndex = nextIndex
        } while wordStart != start
        return nil
    }

    /// The word at `place`, for a message.
    @_optimize(size) @inline(never)
    func word(_ place: Int) -> String {
        let list = UnsafeBufferPointer(start: words.utf8Start, count: words.utf8CodeUnitCount)
        var wordStart = 0
        for _ in 0..<place { wordStart = (list[wordStart...].firstIndex(of: UInt8(ascii: " ")) ?? list.count - 1) + 1 }
        let wordEnd = list[wordStart...].firstIndex(of: UInt8(ascii: " ")) ?? list.count
        return String(decoding: list[wordStart..<wordEnd], as: UTF8.self)
    }
}

/// The `key=value` fields of one record, as positions in the bytes being parsed: the value of each key its
/// kind reads in that key's slot, found once as the line is split; any other key in a list, kept only to
/// refuse it twice and to name it in the error.
private struct Fields {
    /// The keys the record reads: a key's slot is its place here.
    private(set) var keys = WordList("")
    private var values = InlineArray<8, Range<Int>>(repeating: 0..<0)
    /// Bit `slot`: the slot holds a value not taken yet.
    private var present: UInt8 = 0
    private var unknownKeys: [Range<Int>] = []

    /// Empties the fields for a record that reads `keys` (at most eight), keeping the list's storage.
    mutating func start(_ keys: StaticString) {
        self.keys = WordList(keys)
        present = 0
        unknownKeys.removeAll(keepingCapacity: true)
    }

    enum Addition { case added, malformed, duplicate(key: Range<Int>) }

    /// Adds the field `word` (`key=value`, the key not empty), unless it is malformed or its key is already there.
    mutating func add(_ word: Range<Int>, in bytes: Span<UInt8>) -> Addition {
        if let (slot, length) = keys.find(word, in: bytes, endingAt: UInt8(ascii: "=")) {
            let key = word.lowerBound..<word.lowerBound + length
            guard !contains(slot) else { return .duplicate(key: key) }
            present |= 1 << slot
            values[slot] = key.upperBound + 1..<word.upperBound
            return .added
        }
        guard let equals = bytes.firstIndex(of: UInt8(ascii: "="), in: word), equals != word.lowerBound else { return .malformed }
        let key = word.lowerBound..<equals
        for other in unknownKeys where bytes.spells(other, sameAs: key) { return .duplicate(key: key) }
        unknownKeys.append(key)
        return .added
    }

    func contains(_ slot: Int) -> Bool { present & (1 << slot) != 0 }

    /// The value in `slot`, taken (a second take finds nothing).
    mutating func take(_ slot: Int) -> Range<Int>? {
        guard contains(slot) else { return nil }
        present &= ~(1 << slot)
        return values[slot]
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
