/// A key URI (`otpauth://totp/ISSUER:ACCOUNT?secret=…`), the format authenticator apps scan from QR codes.
public struct OTPAuthURI: Equatable, Sendable {
    public var issuer: String
    public var account: String
    public var secret: [UInt8]
    public var parameters: OTPParameters

    public init(issuer: String, account: String, secret: [UInt8], parameters: OTPParameters = OTPParameters()) {
        self.issuer = issuer
        self.account = account
        self.secret = secret
        self.parameters = parameters
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notOTPAuth
        case notTOTP(type: String)
        case badPercentEncoding
        case missingSecret
        case badSecret(Base32.DecodingError)
        case badParameter(name: String, value: String)
        case issuerMismatch(label: String, parameter: String)

        public var description: String {
            switch self {
            case .notOTPAuth: "not an otpauth:// URI"
            case .notTOTP(let type): "unsupported OTP type '\(type)' (only totp)"
            case .badPercentEncoding: "malformed percent-encoding"
            case .missingSecret: "the URI has no secret parameter"
            case .badSecret(let error): "bad secret: \(error)"
            case .badParameter(let name, let value): "bad value '\(value)' for \(name)"
            case .issuerMismatch(let label, let parameter): "label issuer '\(label)' differs from issuer parameter '\(parameter)'"
            }
        }
    }

    /// The URI text. Label parts and the issuer are percent-encoded (space as %20, as Google's key URI
    /// format asks; `@` stays as it is in the label, a path, as in the format's own `alice@google.com`).
    /// Parameters that have their default value (SHA1, 6 digits, 30 s) are left out: every app assumes
    /// them, and a shorter URI is a smaller QR code, one that fits an 80×24 terminal.
    public var text: String {
        // The issuer prefix is left out when there is none, unless the account has a colon of its own.
        let account = percentEncode(self.account, keeping: UInt8(ascii: "@"))
        let label = issuer.isEmpty && !self.account.utf8.contains(UInt8(ascii: ":")) ? account : percentEncode(issuer) + ":" + account
        var text = "otpauth://totp/\(label)?secret=\(Base32.encode(secret))"
        if !issuer.isEmpty { text += "&issuer=\(percentEncode(issuer))" }
        let defaults = OTPParameters()
        if parameters.algorithm != defaults.algorithm { text += "&algorithm=\(parameters.algorithm.rawValue)" }
        if parameters.digits != defaults.digits { text += "&digits=\(parameters.digits)" }
        if parameters.period != defaults.period { text += "&period=\(parameters.period)" }
        return text
    }

    public init(parsing text: String) throws(ParseError) {
        let prefix = "otpauth://"
        guard text.lowercased().hasPrefix(prefix) else { throw .notOTPAuth }
        let rest = text.dropFirst(prefix.count)
        guard let slash = rest.firstIndex(of: "/") else { throw .notOTPAuth }
        let type = rest[..<slash].lowercased()
        guard type == "totp" else { throw .notTOTP(type: String(type)) }
        let afterType = rest[rest.index(after: slash)...]
        let labelPart = afterType.prefix { $0 != "?" }
        let queryPart = afterType.dropFirst(labelPart.count + 1)

        guard let label = percentDecode(labelPart.utf8) else { throw .badPercentEncoding }
        // Key URI format: "Issuer:account", optional spaces before the account.
        var labelIssuer: String? = nil
        var account = String(label.drop { $0 == " " })
        if let colon = label.firstIndex(of: ":") {
            labelIssuer = String(label[..<colon])
            account = String(label[label.index(after: colon)...].drop { $0 == " " })
        }

        var secret: [UInt8]? = nil
        var issuerParameter: String? = nil
        var parameters = OTPParameters()
        for pair in queryPart.split(separator: "&", omittingEmptySubsequences: true) {
            let name = pair.prefix { $0 != "=" }
            guard let value = percentDecode(pair.dropFirst(name.count + 1).utf8) else { throw .badPercentEncoding }
            switch name.lowercased() {
            case "secret":
                do { secret = try Base32.decode(value) } catch { throw .badSecret(error) }
            case "issuer":
                // The label is ISSUER:ACCOUNT, so an issuer with a colon could not be written back unambiguously.
                guard !value.contains(":") else { throw .badParameter(name: "issuer", value: value) }
                issuerParameter = value
            case "algorithm":
                guard let algorithm = OTPAlgorithm(name: value) else { throw .badParameter(name: "algorithm", value: value) }
                parameters.algorithm = algorithm
            case "digits":
                guard let digits = Int(value), OTPParameters.digitRange.contains(digits) else {
                    throw .badParameter(name: "digits", value: value)
                }
                parameters.digits = digits
            case "period":
                guard let period = Int(value), OTPParameters.periodRange.contains(period) else {
                    throw .badParameter(name: "period", value: value)
                }
                parameters.period = period
            default: continue  // Apps ignore parameters they do not know (image=, color=); so do we.
            }
        }
        guard let secret else { throw .missingSecret }
        if let labelIssuer, let issuerParameter, labelIssuer != issuerParameter {
            throw .issuerMismatch(label: labelIssuer, parameter: issuerParameter)
        }
        self.init(issuer: issuerParameter ?? labelIssuer ?? "", account: account, secret: secret, parameters: parameters)
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters (and `keeping`).
func percentEncode(_ text: String, keeping kept: UInt8? = nil) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    for byte in text.utf8 {
        switch byte {
        case _ where byte == kept: out.append(byte)
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.append(byte)
        default:
            out.append(contentsOf: [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]])
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// Decodes `%XX` escapes (and `+` as a space, as query strings use it); nil on a malformed escape or invalid UTF-8.
func percentDecode<Bytes: Collection>(_ text: Bytes) -> String? where Bytes.Element == UInt8 {
    if !text.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
        return String(validating: text, as: UTF8.self)
    }
    var out: [UInt8] = []
    out.reserveCapacity(text.count)
    var bytes = Array(text)[...]
    while let byte = bytes.popFirst() {
        switch byte {
        case UInt8(ascii: "%"):
            guard bytes.count >= 2, let high = hexValue(bytes.popFirst()!), let low = hexValue(bytes.popFirst()!) else {
                return nil
            }
            out.append(high << 4 | low)
        case UInt8(ascii: "+"): out.append(UInt8(ascii: " "))
        default: out.append(byte)
        }
    }
    return String(validating: out, as: UTF8.self)
}

func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
