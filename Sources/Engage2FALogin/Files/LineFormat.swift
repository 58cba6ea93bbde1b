// Byte-level scanning shared by the line formats (policy, device, state and activation files).
// Every decision in these grammars is about ASCII bytes, so they are made on UTF-8 bytes and a
// String is made only for a value that is kept or shown. Iterating Characters means grapheme
// breaking: in the module's Embedded Swift build that cost ~25 k instructions a policy line.
// A parser holds one bounds-checked `Span` over the file's bytes for the whole parse, and a line or
// field is a `Range<Int>` of positions in it: a range can be kept in an array (a Span slice cannot
// escape) and costs no reference counting (an ArraySlice does, ~5,800 instructions a login). Every
// byte is read through the Span's checked subscript, except in the busiest scans: a policy line is
// read through one buffer of a range that `withBuffer` checks first, at offsets below its count; the
// ends of lines (`LineRanges`), of the device file's words and of the activation record's are found by
// memchr(3) within a range checked against the bounds first; and `isASCII` loads eight bytes at a time
// within such a range.

import CEngageSys

/// The lines of a file, split at '\n'. Like `split(separator:omittingEmptySubsequences: false)`: a
/// final '\n' is followed by one empty line, so line numbers count every '\n'.
struct LineRanges {
    private var start = 0
    private var finished = false

    @inline(__always)
    mutating func next(in bytes: Span<UInt8>) -> Range<Int>? {
        guard !finished else { return nil }
        let end = bytes.find(0x0A, in: start..<bytes.count)
        let line = start..<end
        if end == bytes.count { finished = true } else { start = end + 1 }
        return line
    }
}

/// The words of a line, split at runs of spaces (none empty), without an array of them.
struct WordRanges {
    private var cursor: Int
    private let end: Int

    init(_ line: Range<Int>) {
        cursor = line.lowerBound
        end = line.upperBound
    }

    mutating func next(in bytes: Span<UInt8>) -> Range<Int>? {
        while cursor < end && bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
        guard cursor < end else { return nil }
        let start = cursor
        while cursor < end && bytes[cursor] != UInt8(ascii: " ") { cursor += 1 }
        return start..<cursor
    }
}

extension Span where Element == UInt8 {
    /// `range` without leading and trailing spaces, tabs and carriage returns.
    @inline(__always)
    package func trimmingBlanks(_ range: Range<Int>) -> Range<Int> {
        let part = extracting(range)
        var first = 0
        var last = part.count
        while first < last && isBlank(part[first]) { first += 1 }
        while last > first && isBlank(part[last - 1]) { last -= 1 }
        return range.lowerBound + first..<range.lowerBound + last
    }

    /// The position of the first `byte` in `range`.
    @inline(__always)
    func firstIndex(of byte: UInt8, in range: Range<Int>) -> Int? {
        firstIndex(in: range) { $0 == byte }
    }

    /// The position of the first `byte` in `range`, or `range.upperBound` if there is none: memchr(3) over
    /// the range's bytes (checked against the span's bounds first), not a checked loop a byte at a time. For scans of
    /// more than a few bytes (a line, a word of a device file): a call costs what a loop over ~5 bytes does.
    @inline(never)
    func find(_ byte: UInt8, in range: Range<Int>) -> Int {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range out of bounds")
        return withUnsafeBufferPointer { all in
            guard let base = all.baseAddress, let found = memchr(base + range.lowerBound, Int32(byte), range.count) else { return range.upperBound }
            return UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
        }
    }

    /// Whether every byte in `range` is ASCII: the bytes are or'ed eight at a time, within the range
    /// `extracting(_:)` checks (each word loaded at an offset at least eight bytes below its end), so a
    /// file's check costs a fraction of a byte-by-byte loop.
    func isASCII(_ range: Range<Int>) -> Bool {
        extracting(range).withUnsafeBytes { part in
            var offset = 0
            var bits: UInt64 = 0
            while part.count - offset >= 8 {
                bits |= part.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                offset += 8
            }
            while offset < part.count {
                bits |= UInt64(part[offset])
                offset += 1
            }
            return bits & 0x8080_8080_8080_8080 == 0
        }
    }

    /// The position of the first byte in `range` that satisfies `predicate`.
    @inline(__always)
    func firstIndex(in range: Range<Int>, where predicate: (UInt8) -> Bool) -> Int? {
        let part = extracting(range)
        for index in part.indices where predicate(part[index]) { return range.lowerBound + index }
        return nil
    }

    /// Whether every byte in `range` satisfies `predicate`.
    @inline(__always)
    func allSatisfy(in range: Range<Int>, _ predicate: (UInt8) -> Bool) -> Bool {
        firstIndex(in: range) { !predicate($0) } == nil
    }

    /// The pieces of `range` between single `separator` bytes; with `keepEmpty`, two separators in a row give an empty piece.
    func pieces(of range: Range<Int>, separatedBy separator: UInt8, keepEmpty: Bool) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(8)
        let part = extracting(range)
        let base = range.lowerBound
        var start = 0
        for index in part.indices where part[index] == separator {
            if keepEmpty || index > start { out.append(base + start..<base + index) }
            start = index + 1
        }
        if keepEmpty || start < part.count { out.append(base + start..<range.upperBound) }
        return out
    }

    /// Whether `range` spells exactly `literal` (an ASCII string literal): lengths first, then a plain
    /// loop (the generic `elementsEqual` walks two iterators, ten times the instructions for a short word).
    @inline(__always)
    func spells(_ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        let part = extracting(range)
        for offset in part.indices where part[offset] != literal.utf8Start[offset] { return false }
        return true
    }

    /// Whether `range` holds the same bytes as `other`.
    func spells(_ range: Range<Int>, sameAs other: Range<Int>) -> Bool {
        guard range.count == other.count else { return false }
        var offset = 0
        while offset < range.count {
            guard self[range.lowerBound + offset] == self[other.lowerBound + offset] else { return false }
            offset += 1
        }
        return true
    }

    /// Whether `range` holds the bytes of `other` (a name out of a table).
    func spells(_ range: Range<Int>, _ other: some Collection<UInt8>) -> Bool {
        guard range.count == other.count else { return false }
        var index = range.lowerBound
        for byte in other {
            guard self[index] == byte else { return false }
            index += 1
        }
        return true
    }

    /// Whether `range` spells `literal` in any mix of ASCII upper and lower case.
    func spellsIgnoringASCIICase(_ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        var offset = 0
        while offset < range.count {
            guard asciiLowercase(self[range.lowerBound + offset]) == asciiLowercase(literal.utf8Start[offset]) else { return false }
            offset += 1
        }
        return true
    }

    /// Whether `range` spells `name` (ASCII) in any mix of ASCII upper and lower case: lengths first.
    func spellsIgnoringASCIICase(_ range: Range<Int>, _ name: String) -> Bool {
        guard range.count == name.utf8.count else { return false }
        let other = name.utf8.span
        for offset in other.indices where asciiLowercase(self[range.lowerBound + offset]) != asciiLowercase(other[offset]) { return false }
        return true
    }

    /// Whether `range` comes before `other` in byte order.
    func precedes(_ range: Range<Int>, _ other: Range<Int>) -> Bool {
        var offset = 0
        while offset < range.count && offset < other.count {
            let left = self[range.lowerBound + offset], right = self[other.lowerBound + offset]
            if left != right { return left < right }
            offset += 1
        }
        return range.count < other.count
    }

    /// Hands the bytes of `range` to a stdlib call that takes a Collection (a String initialiser),
    /// which a Span is not. The range is checked by `extracting(_:)` first; the pointer lives only
    /// for the call and is read, never written.
    @inline(__always)
    func withBuffer<Result>(_ range: Range<Int>, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        extracting(range).withUnsafeBufferPointer(body)
    }

    /// The bytes of `range` as a String (invalid UTF-8 repaired: the parsers check it where it matters).
    /// Not inlined: String(decoding:) inlines its validation and repair at each site.
    @inline(never)
    package func text(_ range: Range<Int>) -> String { withBuffer(range) { String(decoding: $0, as: UTF8.self) } }

    /// Bytes of a file quoted in a parser's error message: escaped (the message reaches root's terminal
    /// and the system log) and short.
    func quoted(_ range: Range<Int>, limit: Int = 64) -> String { withBuffer(range) { displayText(bytes: $0, limit: limit) } }

    /// The percent-encoded text in `range`, decoded; nil if malformed or not UTF-8.
    func percentDecoded(_ range: Range<Int>) -> String? { withBuffer(range) { percentDecode($0) } }

    /// The hexadecimal bytes in `range`; nil if malformed.
    func hexBytes(_ range: Range<Int>) -> [UInt8]? { withBuffer(range) { parseHex($0) } }

    /// Whether `range` is valid UTF-8, checked without making a String when every byte is ASCII (the usual case).
    /// Not inlined: the String it makes otherwise would be made and released in place at each call.
    @inline(never)
    func isValidUTF8(_ range: Range<Int>) -> Bool {
        isASCII(range) || withBuffer(range) { String(validating: $0, as: UTF8.self) != nil }
    }

    /// A decimal integer with an optional sign, as `Int64(_:)` reads one; nil if malformed or out of range.
    func integer(_ range: Range<Int>) -> Int64? {
        let part = extracting(range)
        var index = 0
        guard index < part.count else { return nil }
        let negative = part[index] == UInt8(ascii: "-")
        if negative || part[index] == UInt8(ascii: "+") { index += 1 }
        guard index < part.count else { return nil }
        var value: Int64 = 0
        while index < part.count {
            let byte = part[index]
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflow && !overflow2 else { return nil }
            value = next
            index += 1
        }
        return value
    }

    /// Whether `range` starts with `literal` (ASCII).
    func starts(_ range: Range<Int>, with literal: StaticString) -> Bool {
        range.count >= literal.utf8CodeUnitCount && spells(range.lowerBound..<range.lowerBound + literal.utf8CodeUnitCount, literal)
    }

    /// The bytes of `range` in ASCII lower case, as a String.
    func lowercasedText(_ range: Range<Int>) -> String {
        var out = ByteWriter(capacity: range.count)
        for index in range { out.bytes.append(asciiLowercase(self[index])) }
        return out.text
    }

    /// All of the span's positions.
    package var all: Range<Int> { 0..<count }
}

@inline(__always)
private func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D }

func bytesStart<Bytes: Collection>(_ bytes: Bytes, with literal: StaticString) -> Bool where Bytes.Element == UInt8 {
    bytes.starts(with: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
}

@inline(__always)
func asciiLowercase(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 0x20 : byte
}

/// Valid UTF-8 (a whole file).
func isValidUTF8(_ bytes: Span<UInt8>) -> Bool { bytes.isValidUTF8(bytes.all) }

/// A decimal integer with an optional sign (a whole string's bytes).
func parseInteger(_ text: String.UTF8View) -> Int64? { text.span.integer(0..<text.count) }

// Names, keys, ids and policy words compare as bytes. String's `==`, `<` and hashing compare canonical
// equivalence, which links Unicode's normalisation tables and code into the module (~50 KB), and the
// user and group databases compare names as bytes too.
extension String {
    /// Whether this string holds exactly the bytes of `other`. Not inlined: reaching a String's bytes takes
    /// ~300 bytes of code (small, native and shared forms), which each inlined call would repeat.
    @inline(never)
    func hasSameBytes(as other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        let left = utf8.span, right = other.utf8.span
        guard left.count == right.count else { return false }
        for index in left.indices where left[index] != right[index] { return false }
        return true
    }

    /// Whether this string is exactly `literal` (an ASCII string literal).
    func spells(_ literal: StaticString) -> Bool {
        guard utf8.count == literal.utf8CodeUnitCount else { return false }
        let bytes = utf8.span
        return bytes.spells(bytes.all, literal)
    }
}

/// A word of a line (a protocol verb, a field's key), matched against string-literal patterns as bytes:
/// `switch ByteWord(verb) { case "check": … }`. A `switch` over a String would compare canonical equivalence.
struct ByteWord {
    let bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
    init(_ text: String) { bytes = Array(text.utf8)[...] }

    /// Whether the word is exactly `literal` (ASCII).
    func spells(_ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount && bytes.span.spells(0..<bytes.count, literal)
    }

    static func ~= (pattern: StaticString, word: ByteWord) -> Bool { word.spells(pattern) }
}

extension StaticString {
    /// The literal as a String (inline, with no allocation, up to 15 bytes).
    var text: String { String(decoding: UnsafeBufferPointer(start: utf8Start, count: utf8CodeUnitCount), as: UTF8.self) }
}

extension Optional where Wrapped == String {
    /// Both nil, or both the same bytes.
    func hasSameBytes(as other: String?) -> Bool {
        switch (self, other) {
        case (nil, nil): true
        case (let left?, let right?): left.hasSameBytes(as: right)
        default: false
        }
    }
}

extension Array where Element == String {
    /// Whether one of the names holds exactly the bytes of `name`.
    func containsBytes(of name: String) -> Bool { contains { $0.hasSameBytes(as: name) } }
}

/// Builds a file's bytes without String interpolation.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func write(_ literal: StaticString) { bytes.appendLiteral(literal) }

    /// Named apart from `write(_: StaticString)`, which string literals would otherwise not pick.
    mutating func write(string text: String) { bytes.appendText(text) }

    mutating func write(_ value: Int64) { bytes.appendDecimal(value) }

    mutating func write(_ value: Int) { write(Int64(value)) }

    /// `bytes` in lowercase hex, written into the line with no String between: the one hex writer of the
    /// line formats (hexString too).
    mutating func writeHex(_ bytes: UnsafeBufferPointer<UInt8>) {
        let digits: StaticString = "0123456789abcdef"
        for byte in bytes {
            self.bytes.append(digits.utf8Start[Int(byte >> 4)])
            self.bytes.append(digits.utf8Start[Int(byte & 15)])
        }
    }

    mutating func writeHex(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { writeHex($0) } }

    mutating func writeHex(string text: String) {
        var text = text
        text.withUTF8 { writeHex($0) }
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }
}

// The same rules for bytes held in an Array (the fleet protocol's lines, a setting's value): these
// read through the array's Span, so each rule is written once, above.

extension ArraySlice where Element == UInt8 {
    /// The pieces between single `separator` bytes; with `keepEmpty`, two separators in a row give an empty piece.
    func pieces(separatedBy separator: UInt8, keepEmpty: Bool) -> [ArraySlice<UInt8>] {
        let ranges = span.pieces(of: 0..<count, separatedBy: separator, keepEmpty: keepEmpty)
        return ranges.map { self[startIndex + $0.lowerBound..<startIndex + $0.upperBound] }
    }
}

/// Whether `bytes` spell `literal` in any mix of ASCII upper and lower case.
func bytesEqualIgnoringASCIICase(_ bytes: some Collection<UInt8>, _ literal: StaticString) -> Bool {
    let array = Array(bytes)
    return array.span.spellsIgnoringASCIICase(0..<array.count, literal)
}

/// Valid UTF-8 (bytes held in an array).
func isValidUTF8(_ bytes: some Collection<UInt8>) -> Bool {
    let array = Array(bytes)
    return isValidUTF8(array.span)
}

/// A decimal integer with an optional sign, as `Int64(_:)` reads one; nil if malformed or out of range.
func parseInteger(_ bytes: some Collection<UInt8>) -> Int64? {
    let array = Array(bytes)
    return array.span.integer(0..<array.count)
}

/// A parser's message put together from literal words and pieces of text (`message("bad id '", quoted, "'")`),
/// written by MessageText's appenders (through ByteWriter): one call a site where a MessageText interpolation
/// makes one a piece, for the parsers' many error sites. Cold (an error is reported once), so optimised for
/// size. No default arguments: each would be a call at every site.
@_optimize(size) @inline(never)
func message(_ first: StaticString, _ text: String, _ second: StaticString, _ more: String, _ end: StaticString) -> String {
    var out = ByteWriter(capacity: 128)
    out.write(first)
    out.write(string: text)
    out.write(second)
    out.write(string: more)
    out.write(end)
    return out.text
}

/// The same with one piece of text.
@_optimize(size) @inline(never)
func message(_ first: StaticString, _ text: String, _ end: StaticString) -> String { message(first, text, end, "", "") }

/// `path:line: text`, a located message as the parsers' errors show one.
@_optimize(size) @inline(never)
func locatedMessage(_ path: String, line: Int, _ text: String) -> String {
    var out = ByteWriter()
    out.write(string: path)
    out.write(":")
    out.write(line)
    out.write(": ")
    out.write(string: text)
    return out.text
}

/// A number's decimal digits, for a message.
@_optimize(size) @inline(never)
func decimal(_ value: Int64) -> String {
    var out = ByteWriter(capacity: 20)
    out.write(value)
    return out.text
}

/// A literal as a String for a message (`message` takes text, not a literal, between its literal words).
@_optimize(size) @inline(never)
func literalText(_ literal: StaticString) -> String { literal.text }

extension Array where Element == String {
    /// The same names in the same order, compared as bytes.
    func hasSameBytes(as other: [String]) -> Bool {
        guard count == other.count else { return false }
        for index in indices where !self[index].hasSameBytes(as: other[index]) { return false }
        return true
    }
}
