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

    /// The same for UTF-8 bytes. The bytes are written into the array's storage as they are decoded: its
    /// capacity, `count * 5 / 8`, bounds what any number of symbols among `count` bytes decodes to.
    static func decode(bytes text: Span<UInt8>) throws(DecodingError) -> [UInt8] {
        var failure: DecodingError? = nil
        let out = [UInt8](unsafeUninitializedCapacity: text.count * 5 / 8) { buffer, written in
            // The bits not written yet are the low `bits` of the accumulator; those above are left to be shifted out.
            var accumulator: UInt64 = 0
            var bits = 0
            var symbols = 0
            var paddingStart: Int? = nil
            for index in 0..<text.count {
                let byte = text[index]
                // Every byte before this one was ASCII (anything else has thrown), so offsets are positions.
                let position = index
                if let value = symbolValue(byte) {
                    guard paddingStart == nil else { failure = .dataAfterPadding(position: position); return }
                    accumulator = (accumulator << 5) | UInt64(value)
                    bits += 5
                    symbols += 1
                    if bits >= 8 {
                        bits -= 8
                        buffer[written] = UInt8(truncatingIfNeeded: accumulator >> UInt64(bits))
                        written += 1
                    }
                } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-") {
                    continue
                } else if byte == UInt8(ascii: "=") {
                    paddingStart = paddingStart ?? position
                } else if paddingStart != nil {
                    failure = .dataAfterPadding(position: position)
                    return
                } else {
                    // The scalar, not the character: grapheme breaking needs tables the module does not carry.
                    failure = .invalidCharacter(text.text(index..<text.count).unicodeScalars.first ?? "\u{FFFD}", position: position)
                    return
                }
            }
            let leftOver = symbols % 8
            if leftOver == 1 || leftOver == 3 || leftOver == 6 {
                failure = .invalidLength(symbols: symbols)
            } else if accumulator & ((1 << UInt64(bits)) - 1) != 0 {
                failure = .nonZeroTrailingBits
            }
        }
        if let failure { throw failure }
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
