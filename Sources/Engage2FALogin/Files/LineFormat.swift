// Byte-level scanning shared by the line formats (policy, device, state and activation files).
// Every decision in these grammars is about ASCII bytes, so they are made on UTF-8 bytes and a
// String is made only for a value that is kept or shown. Iterating Characters means grapheme
// breaking: in the module's Embedded Swift build that cost ~25 k instructions a policy line.
// The parsers run over an unsafe buffer of the file (valid for the parse only): slices of it cost
// no reference counting, which slices of an Array do.

/// Part of a file's bytes, while it is being parsed.
typealias ByteSlice = Slice<UnsafeBufferPointer<UInt8>>

/// The lines of a file, split at '\n'. Like `split(separator:omittingEmptySubsequences: false)`: a
/// final '\n' is followed by one empty line, so line numbers count every '\n'.
struct Lines: Sequence, IteratorProtocol {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var start = 0
    private var finished = false

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    mutating func next() -> ByteSlice? {
        guard !finished else { return nil }
        var end = start
        while end < bytes.count && bytes[end] != 0x0A { end += 1 }
        let line = bytes[start..<end]
        if end == bytes.count { finished = true } else { start = end + 1 }
        return line
    }
}

extension Collection where Element == UInt8, SubSequence == Self, Index == Int {
    /// Without leading and trailing spaces, tabs and carriage returns.
    package func trimmingBlanks() -> Self {
        var first = startIndex
        var last = endIndex
        while first < last && isBlank(self[first]) { first += 1 }
        while last > first && isBlank(self[last - 1]) { last -= 1 }
        return self[first..<last]
    }

    /// The pieces between single `separator` bytes; with `keepEmpty`, two separators in a row give an empty piece.
    func pieces(separatedBy separator: UInt8, keepEmpty: Bool) -> [Self] {
        var out: [Self] = []
        out.reserveCapacity(8)
        var start = startIndex
        for index in indices where self[index] == separator {
            if keepEmpty || index > start { out.append(self[start..<index]) }
            start = index + 1
        }
        if keepEmpty || start < endIndex { out.append(self[start..<endIndex]) }
        return out
    }

    package var text: String { String(decoding: self, as: UTF8.self) }
}

@inline(__always)
private func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D }

/// Whether part of a file being parsed spells exactly `literal` (an ASCII string literal): lengths
/// first, then a plain loop (the generic `elementsEqual` walks two iterators, ten times the
/// instructions for a short word).
func bytesEqual(_ bytes: ByteSlice, _ literal: StaticString) -> Bool {
    bytesEqual(bytes, UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
}

func bytesEqual(_ bytes: ByteSlice, _ other: some Collection<UInt8>) -> Bool {
    guard bytes.count == other.count else { return false }
    var index = bytes.startIndex
    for byte in other {
        guard bytes.base[index] == byte else { return false }
        index += 1
    }
    return true
}

/// Whether `bytes` spell `literal` in any mix of ASCII upper and lower case.
func bytesEqualIgnoringASCIICase<Bytes: Collection>(_ bytes: Bytes, _ literal: StaticString) -> Bool where Bytes.Element == UInt8 {
    bytes.elementsEqual(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)) {
        asciiLowercase($0) == asciiLowercase($1)
    }
}

func bytesStart<Bytes: Collection>(_ bytes: Bytes, with literal: StaticString) -> Bool where Bytes.Element == UInt8 {
    bytes.starts(with: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
}

@inline(__always)
func asciiLowercase(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 0x20 : byte
}

/// Valid UTF-8, checked without making a String when every byte is ASCII (the usual case).
func isValidUTF8<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
    bytes.allSatisfy { $0 < 0x80 } || String(validating: bytes, as: UTF8.self) != nil
}

/// A decimal integer with an optional sign, as `Int64(_:)` reads one; nil if malformed or out of range.
func parseInteger<Bytes: Collection>(_ bytes: Bytes) -> Int64? where Bytes.Element == UInt8 {
    var rest = bytes[...]
    let negative = rest.first == UInt8(ascii: "-")
    if negative || rest.first == UInt8(ascii: "+") { rest = rest.dropFirst() }
    guard !rest.isEmpty else { return nil }
    var value: Int64 = 0
    for byte in rest {
        guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
        let digit = Int64(byte - UInt8(ascii: "0"))
        let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
        let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
        guard !overflow && !overflow2 else { return nil }
        value = next
    }
    return value
}

/// Builds a file's bytes without String interpolation.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func write(_ literal: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Named apart from `write(_: StaticString)`, which string literals would otherwise not pick.
    mutating func write(string text: String) {
        // withUTF8 hands over the bytes of a small (inline) string too; iterating its utf8 view would not.
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    mutating func write(_ value: Int) { write(Int64(value)) }

    var text: String { String(decoding: bytes, as: UTF8.self) }
}
