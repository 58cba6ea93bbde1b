/// The HMAC hash a device's codes are computed with (RFC 6238 §1.2).
public enum OTPAlgorithm: String, Sendable, CaseIterable {
    case sha1 = "SHA1"
    case sha256 = "SHA256"
    case sha512 = "SHA512"

    /// Accepts `SHA1`, `sha256`, `SHA-512` and the like: ASCII letters in either case, hyphens ignored
    /// (compared as bytes: no Unicode case mapping, whose tables the module does not carry).
    public init?(name: some StringProtocol) {
        let typed = name.utf8.lazy.filter { $0 != UInt8(ascii: "-") }.map(asciiLowercase)
        guard let algorithm = OTPAlgorithm.allCases.first(where: { $0.rawValue.utf8.lazy.map(asciiLowercase).elementsEqual(typed) }) else { return nil }
        self = algorithm
    }
}

/// How a device computes its codes. The defaults are what every authenticator app supports.
public struct OTPParameters: Equatable, Sendable {
    public static let digitRange = 6...8
    public static let periodRange = 15...120

    public var algorithm: OTPAlgorithm
    public var digits: Int
    public var period: Int

    public init(algorithm: OTPAlgorithm = .sha1, digits: Int = 6, period: Int = 30) {
        precondition(Self.digitRange.contains(digits), "digits must be 6–8")
        precondition(Self.periodRange.contains(period), "period must be 15–120 s")
        self.algorithm = algorithm
        self.digits = digits
        self.period = period
    }

    /// The RFC 6238 time step for a Unix time (T0 = 0). Times before 1970 map to negative steps.
    public func step(at unixTime: Int64) -> Int64 {
        let period = Int64(self.period)
        return unixTime >= 0 ? unixTime / period : (unixTime - period + 1) / period
    }
}

/// HOTP (RFC 4226 §5.3) for one secret: the dynamically truncated HMAC of a counter, reduced to
/// `digits` decimal digits. The key is processed once, so a window of steps costs two compressions a step.
public struct HOTPGenerator {
    private enum Keyed {
        case sha1(SingleBlockHMAC<SHA1Compression>)
        case sha256(SingleBlockHMAC<SHA256Compression>)
        case sha512(SingleBlockHMAC<SHA512Compression>)
    }

    private let keyed: Keyed
    private let modulus: UInt32

    public init(secret: [UInt8], algorithm: OTPAlgorithm, digits: Int) {
        switch algorithm {
        case .sha1: keyed = .sha1(SingleBlockHMAC(key: secret))
        case .sha256: keyed = .sha256(SingleBlockHMAC(key: secret))
        case .sha512: keyed = .sha512(SingleBlockHMAC(key: secret))
        }
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        self.modulus = modulus
    }

    public func value(counter: UInt64) -> UInt32 {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: SHA512Compression.digestSize) { digest in
            let raw = UnsafeMutableRawPointer(digest.baseAddress!)
            let size: Int
            var message = counter.bigEndian
            switch keyed {
            case .sha1(let mac):
                withUnsafeBytes(of: &message) { mac.authenticate($0, into: raw) }
                size = SHA1Compression.digestSize
            case .sha256(let mac):
                withUnsafeBytes(of: &message) { mac.authenticate($0, into: raw) }
                size = SHA256Compression.digestSize
            case .sha512(let mac):
                withUnsafeBytes(of: &message) { mac.authenticate($0, into: raw) }
                size = SHA512Compression.digestSize
            }
            let offset = Int(digest[size - 1] & 0x0F)
            let binary = (UInt32(digest[offset] & 0x7F) << 24) | (UInt32(digest[offset + 1]) << 16)
                | (UInt32(digest[offset + 2]) << 8) | UInt32(digest[offset + 3])
            return binary % modulus
        }
    }
}

/// HOTP of one counter.
public func hotp(secret: [UInt8], counter: UInt64, algorithm: OTPAlgorithm = .sha1, digits: Int = 6) -> UInt32 {
    HOTPGenerator(secret: secret, algorithm: algorithm, digits: digits).value(counter: counter)
}

/// The code as the user types it: zero-padded ASCII digits.
public func formatCode(_ value: UInt32, digits: Int) -> [UInt8] {
    var out = [UInt8](repeating: UInt8(ascii: "0"), count: digits)
    var rest = value
    for index in stride(from: digits - 1, through: 0, by: -1) {
        out[index] = UInt8(ascii: "0") + UInt8(rest % 10)
        rest /= 10
    }
    return out
}

/// TOTP (RFC 6238): HOTP of the time step.
public func totp(secret: [UInt8], at unixTime: Int64, parameters: OTPParameters = OTPParameters()) -> [UInt8] {
    totp(secret: secret, step: parameters.step(at: unixTime), parameters: parameters)
}

public func totp(secret: [UInt8], step: Int64, parameters: OTPParameters) -> [UInt8] {
    formatCode(
        hotp(secret: secret, counter: UInt64(bitPattern: step), algorithm: parameters.algorithm, digits: parameters.digits),
        digits: parameters.digits)
}
