// Text that reaches a terminal or a log line. User names, device names, paths and bytes of
// user-writable files are attacker input: an ESC sequence can retitle a terminal or hide text,
// a newline forges a second log line, a bidi override reorders what an admin reads.

/// A Unicode scalar that must never be shown raw: C0 and C1 controls, DEL, the bidi controls
/// (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069), zero-width and invisible formatting marks
/// (U+200B–U+200D, U+2060–U+2064, U+FEFF, U+180E, U+00AD), and the line/paragraph separators
/// U+2028–U+2029, which some terminals and log viewers treat as line breaks.
public func isUnsafeForDisplay(_ scalar: UInt32) -> Bool {
    switch scalar {
    case 0x00...0x1F, 0x7F...0x9F: true
    case 0x00AD, 0x061C, 0x180E: true
    case 0x200B...0x200F, 0x2028...0x202E, 0x2060...0x2064, 0x2066...0x206F, 0xFEFF: true
    default: false
    }
}

/// `bytes` made safe to print or log: every byte that is not part of valid UTF-8, and every scalar
/// `isUnsafeForDisplay` names, is written as `\xNN` (a byte) or `\u{NNNN}` (a scalar); a backslash
/// becomes `\\`, so an escape can never be forged. At most `limit` bytes of the result are kept, then `…`.
///
/// - Parameters:
///   - escapingBackslashes: false for a message already made of escaped parts (a log line, a parse
///     error quoting a name): it stays free of unsafe bytes, and what was escaped is not escaped twice.
///   - keepingNewlines: true for a message of several lines meant as such (a list of errors); every
///     other control is still escaped, a carriage return too.
public func displayText<Bytes: Collection>(
    bytes: Bytes, limit: Int = 256, escapingBackslashes: Bool = true, keepingNewlines: Bool = false
) -> String where Bytes.Element == UInt8 {
    // One non-generic escaper for every kind of collection: a contiguous one is read in place.
    if let shown = bytes.withContiguousStorageIfAvailable({
        displayText(buffer: $0, limit: limit, escapingBackslashes: escapingBackslashes, keepingNewlines: keepingNewlines)
    }) { return shown }
    return Array(bytes).withUnsafeBufferPointer {
        displayText(buffer: $0, limit: limit, escapingBackslashes: escapingBackslashes, keepingNewlines: keepingNewlines)
    }
}

/// The same for a String (a user name, a device name, a path, a message).
public func displayText(_ text: String, limit: Int = 256, escapingBackslashes: Bool = true, keepingNewlines: Bool = false) -> String {
    var text = text
    // Most text is short printable ASCII: kept as it is, without a copy (every log line of the module passes here).
    if text.withUTF8({ isShownAsIs($0, limit: limit, escapingBackslashes: escapingBackslashes) }) { return text }
    return text.withUTF8 {
        displayText(buffer: $0, limit: limit, escapingBackslashes: escapingBackslashes, keepingNewlines: keepingNewlines)
    }
}

private func displayText(buffer: UnsafeBufferPointer<UInt8>, limit: Int, escapingBackslashes: Bool, keepingNewlines: Bool) -> String {
    // Most text is short printable ASCII (a service name, a user name): kept as it is.
    if isShownAsIs(buffer, limit: limit, escapingBackslashes: escapingBackslashes) { return String(decoding: buffer, as: UTF8.self) }
    var out: [UInt8] = []
    appendEscaped(buffer, limit: limit, escapingBackslashes: escapingBackslashes, keepingNewlines: keepingNewlines, to: &out)
    return String(decoding: out, as: UTF8.self)
}

/// Short printable ASCII with nothing to escape: what `displayText` gives back unchanged.
func isShownAsIs(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int, escapingBackslashes: Bool) -> Bool {
    bytes.count <= limit && bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F && ($0 != UInt8(ascii: "\\") || !escapingBackslashes) }
}

/// What `displayText(bytes:limit:escapingBackslashes:)` makes of `bytes`, appended to `out`: a log line
/// escaped straight into the buffer handed to C.
public func appendDisplayText(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int, escapingBackslashes: Bool = true, to out: inout [UInt8]) {
    if isShownAsIs(bytes, limit: limit, escapingBackslashes: escapingBackslashes) {
        out.append(contentsOf: UnsafeRawBufferPointer(bytes))  // raw: one memcpy, not a byte loop
    } else {
        appendEscaped(bytes, limit: limit, escapingBackslashes: escapingBackslashes, keepingNewlines: false, to: &out)
    }
}

/// What `displayText` makes of `input`, appended to `out` (the log line's buffer, without a String between).
func appendEscaped(
    _ input: UnsafeBufferPointer<UInt8>, limit: Int, escapingBackslashes: Bool, keepingNewlines: Bool, to out: inout [UInt8]
) {
    let start = out.count
    out.reserveCapacity(start + min(input.count, limit) + 8)
    var index = 0
    let hex: StaticString = "0123456789abcdef"
    func hexDigit(_ value: UInt32) -> UInt8 { hex.utf8Start[Int(value & 15)] }
    while index < input.count {
        if out.count - start >= limit {
            out.appendLiteral("…")
            break
        }
        let (scalar, length) = decodeUTF8Scalar(input, at: index)
        if let scalar, !isUnsafeForDisplay(scalar) || (keepingNewlines && scalar == 0x0A) {
            if scalar == UInt32(UInt8(ascii: "\\")) && escapingBackslashes {
                out.appendLiteral("\\\\")
            } else {
                out.append(contentsOf: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: input[index..<index + length])))
            }
        } else if let scalar, scalar >= 0x100 {
            out.appendLiteral("\\u{")
            var shift: UInt32 = 12
            while true {
                out.append(hexDigit(scalar >> shift))
                if shift == 0 { break }
                shift -= 4
            }
            out.appendLiteral("}")
        } else {
            // An unsafe scalar below U+0100, or a byte that is not UTF-8: \xNN.
            let byte = scalar ?? UInt32(input[index])
            out.appendLiteral("\\x")
            out.append(hexDigit(byte >> 4))
            out.append(hexDigit(byte))
        }
        index += length
    }
}

/// The scalar at `index` and its length in bytes; nil (length 1) where the bytes are not valid UTF-8
/// (overlong forms, surrogates and values past U+10FFFF included).
func decodeUTF8Scalar(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (UInt32?, Int) {
    let first = bytes[index]
    if first < 0x80 { return (UInt32(first), 1) }
    let length: Int
    let minimum: UInt32
    var value: UInt32
    switch first {
    case 0xC2...0xDF: length = 2; minimum = 0x80; value = UInt32(first & 0x1F)
    case 0xE0...0xEF: length = 3; minimum = 0x800; value = UInt32(first & 0x0F)
    case 0xF0...0xF4: length = 4; minimum = 0x10000; value = UInt32(first & 0x07)
    default: return (nil, 1)
    }
    guard index + length <= bytes.count else { return (nil, 1) }
    for offset in 1..<length {
        let byte = bytes[index + offset]
        guard byte & 0xC0 == 0x80 else { return (nil, 1) }
        value = value << 6 | UInt32(byte & 0x3F)
    }
    guard value >= minimum, value <= 0x10FFFF, !(0xD800...0xDFFF).contains(value) else { return (nil, 1) }
    return (value, length)
}

/// One `key=value` field of a log line, the value escaped as `displayText` does and its spaces written
/// `\x20` too: a value the client chose (PAM_RHOST) can then neither end its field nor forge another.
public func logField<Bytes: Collection>(_ key: StaticString, bytes: Bytes, limit: Int = 256) -> String where Bytes.Element == UInt8 {
    var out: [UInt8] = []
    Array(bytes).withUnsafeBufferPointer { appendLogField(key, bytes: $0, limit: limit, to: &out) }
    return String(decoding: out, as: UTF8.self)
}

/// The same, appended to a log line's buffer.
public func appendLogField(_ key: StaticString, bytes: UnsafeBufferPointer<UInt8>, limit: Int = 256, to out: inout [UInt8]) {
    var escaped: [UInt8] = []
    appendDisplayText(bytes, limit: limit, to: &escaped)
    out.appendLiteral(key)
    out.appendLiteral("=")
    for byte in escaped {
        if byte == UInt8(ascii: " ") { out.appendLiteral("\\x20") } else { out.append(byte) }
    }
}
