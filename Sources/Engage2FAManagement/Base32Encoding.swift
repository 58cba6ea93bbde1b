import Engage2FALogin

/// Encoding is for enrollment (a new secret, shown and put in the QR code); the module only decodes.
extension Base32 {
    /// Upper-case base32 without `=` padding.
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Groups of four upper-case characters, for people to read and type.
    public static func grouped(_ encoded: String, size: Int = 4) -> String {
        var groups: [Substring] = []
        var rest = Substring(encoded)
        while !rest.isEmpty {
            groups.append(rest.prefix(size))
            rest = rest.dropFirst(size)
        }
        return groups.joined(separator: " ")
    }
}
