// Messages of the module (log lines, prompts, error descriptions) built into one byte buffer.
//
// A String interpolation inlines its appends, growth and releases at every site; the module has hundreds
// of such sites, and that code was a large part of its size. Here each literal piece is a StaticString
// and each piece one call to a small out-of-line append, so a site costs a few calls, and the line is
// one buffer that the log hands to C as it is.

/// Text made by interpolation (`"user \(name): locked out for \(seconds) more seconds"`) into UTF-8 bytes.
/// Interpolated values are written as String interpolation writes them (decimal integers, `description`).
public struct MessageText: ExpressibleByStringInterpolation, Sendable {
    public var bytes: [UInt8]

    public init(stringLiteral literal: StaticString) {
        bytes = []
        bytes.appendLiteral(literal)
    }

    public init(stringInterpolation: Interpolation) { bytes = stringInterpolation.bytes }

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// The text as a String (for a caller that keeps or compares it).
    public var text: String {
        @inline(never) get { String(decoding: bytes, as: UTF8.self) }
    }

    public struct Interpolation: StringInterpolationProtocol, Sendable {
        var bytes: [UInt8]

        public init(literalCapacity: Int, interpolationCount: Int) {
            bytes = .withCapacity(literalCapacity + 24 * interpolationCount)
        }

        public mutating func appendLiteral(_ literal: StaticString) { bytes.appendLiteral(literal) }
        public mutating func appendInterpolation(_ text: String) { bytes.appendText(text) }
        public mutating func appendInterpolation(_ text: MessageText) { bytes.appendBytes(text.bytes) }
        public mutating func appendInterpolation(_ literal: StaticString) { bytes.appendLiteral(literal) }
        public mutating func appendInterpolation(_ value: Int64) { bytes.appendDecimal(value) }
        public mutating func appendInterpolation(_ value: Int) { bytes.appendDecimal(Int64(value)) }
        public mutating func appendInterpolation(_ value: Int32) { bytes.appendDecimal(Int64(value)) }
        public mutating func appendInterpolation(_ value: UInt32) { bytes.appendDecimal(Int64(value)) }
        public mutating func appendInterpolation<Value: CustomStringConvertible>(_ value: Value) { bytes.appendText(value.description) }
    }
}

extension MessageText: CustomStringConvertible {
    public var description: String { text }
}

extension [UInt8] {
    /// An empty buffer with room for `capacity` bytes (out of line: every message site starts with one).
    @inline(never)
    static func withCapacity(_ capacity: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(capacity)
        return bytes
    }

    // Each append hands over raw bytes: their copy into the array is one memcpy(3), where a typed buffer's
    // is copied a byte at a time (the module is built for size, and the loop is not vectorised).
    @inline(never)
    package mutating func appendLiteral(_ literal: StaticString) {
        append(contentsOf: UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    @inline(never)
    mutating func appendText(_ text: String) {
        // withUTF8 hands over the bytes of a small (inline) string too; iterating its utf8 view would not.
        var text = text
        text.withUTF8 { append(contentsOf: UnsafeRawBufferPointer($0)) }
    }

    @inline(never)
    mutating func appendBytes(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append(contentsOf: $0) } }

    @inline(never)
    mutating func appendDecimal(_ value: Int64) {
        if value < 0 { append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        Swift.withUnsafeMutableBytes(of: &digits) { digits in
            var start = 24
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            append(contentsOf: UnsafeRawBufferPointer(rebasing: digits[start...]))
        }
    }
}
