/// Base32 (RFC 4648 §6), the encoding authenticator apps expect for secrets.
public enum Base32 {
    package static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public enum DecodingError: Error, Equatable, CustomStringConvertible {
        /// A character (its first scalar) outside A–Z, 2–7 (any case), space, hyphen or trailing `=`.
        case invalidCharacter(Unicode.Scalar, position: Int)
        /// `=` padding followed by something other than more padding.
        case dataAfterPadding(position: Int)
        /// A number of symbols (1, 3 or 6 mod 8) that no whole number of bytes encodes to.
        case invalidLength(symbols: Int)
        /// The unused low bits of the last symbol are not zero: a typo or a truncated secret.
        case nonZeroTrailingBits

        public var description: String {
            let text: MessageText
            switch self {
            case .invalidCharacter(let character, let position):
                let shown: MessageText = character.isASCII && character.value >= 0x20 && character.value != 0x7F
                    ? "'\(character)'" : "U+\(String(character.value, radix: 16, uppercase: true))"
                text = "invalid base32 character \(shown) at position \(position + 1) (expected A–Z, 2–7, spaces or hyphens)"
            case .dataAfterPadding(let position):
                text = "base32 data after '=' padding at position \(position + 1)"
            case .invalidLength(let symbols):
                text = "\(symbols) base32 characters cannot encode whole bytes (a character is missing or extra)"
            case .nonZeroTrailingBits:
                return "the last base32 character has bits set that encode no byte (a typo or truncated secret)"
            }
            return text.text
        }
    }

    /// Decodes case-insensitively, ignoring spaces and hyphens (as people type grouped secrets)
    /// and `=` padding at the end; anything else is an error that says what and where.
    public static func decode(_ text: some StringProtocol) throws(DecodingError) -> [UInt8] {
        let bytes = Array(text.utf8)
        return try decode(bytes: bytes.span)
    }

    /// The same for UTF-8 bytes.
    static func decode(bytes text: Span<UInt8>) throws(DecodingError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 5 / 8)
        var buffer: UInt32 = 0
        var bits = 0
        var symbols = 0
        var paddingStart: Int? = nil
        for index in 0..<text.count {
            let byte = text[index]
            // Every byte before this one was ASCII (anything else has thrown), so offsets are positions.
            let position = index
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-") { continue }
            if byte == UInt8(ascii: "=") { paddingStart = paddingStart ?? position; continue }
            if paddingStart != nil { throw .dataAfterPadding(position: position) }
            guard let value = symbolValue(byte) else {
                // The scalar, not the character: grapheme breaking needs tables the module does not carry.
                let character = text.text(index..<text.count).unicodeScalars.first ?? "\u{FFFD}"
                throw .invalidCharacter(character, position: position)
            }
            buffer = (buffer << 5) | value
            bits += 5
            symbols += 1
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        let leftOver = symbols % 8
        guard leftOver != 1 && leftOver != 3 && leftOver != 6 else { throw .invalidLength(symbols: symbols) }
        guard buffer == 0 else { throw .nonZeroTrailingBits }
        return out
    }

    private static func symbolValue(_ ascii: UInt8) -> UInt32? {
        switch ascii {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return UInt32(ascii - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt32(ascii - UInt8(ascii: "a"))
        case UInt8(ascii: "2")...UInt8(ascii: "7"): return UInt32(ascii - UInt8(ascii: "2") + 26)
        default: return nil
        }
    }
}
