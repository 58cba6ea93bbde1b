import Engage2FALogin

// What engage2fa-enroll asks of engage2fad in fleet mode besides linking a device (FleetProtocol's
// enroll-begin / enroll-confirm): list, status, remove, recovery-codes. Lines of the same shape as
// FleetProtocol's: every string field hex (no byte of a name can split a field or a line), every number
// decimal and range-checked when read. Failures, outages and "done" are FleetAnswer's lines; status is
// answered with FleetAnswer's snapshot, the data the login decides on. Only the commands and engage2fad
// use these, so the module (which links FleetProtocol) does not carry them.

public enum EnrollRequest: Equatable, Sendable {
    /// The longest proof sent: more than any code or recovery code.
    public static let maxProofBytes = 256

    case list
    case status
    /// Unlinks the device named so (as `list` shows it, case-insensitively); `proof` is a current code
    /// from one of the user's devices or a recovery code.
    case remove(name: String, proof: [UInt8])
    /// Replaces the recovery codes; `proof` as for remove (empty when the user has neither devices nor codes).
    case recoveryCodes(proof: [UInt8])

    public var line: [UInt8] {
        let text: String
        switch self {
        case .list: text = "list"
        case .status: text = "status"
        case .remove(let name, let proof): text = "remove \(hexString(Array(name.utf8))) \(hexString(proof))"
        case .recoveryCodes(let proof): text = "recovery-codes \(hexString(proof))"
        }
        return Array((text + "\n").utf8)
    }

    public init?(line: [UInt8]) {
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard let verb = fields.first.flatMap({ String(validating: $0, as: UTF8.self) }) else { return nil }
        func proof(_ field: ArraySlice<UInt8>) -> [UInt8]? {
            guard let bytes = parseHex(field), bytes.count <= EnrollRequest.maxProofBytes else { return nil }
            return bytes
        }
        switch verb {
        case "list" where fields.count == 1: self = .list
        case "status" where fields.count == 1: self = .status
        case "remove" where fields.count == 3:
            guard let name = hexText(fields[1], maxBytes: 1024), let proof = proof(fields[2]) else { return nil }
            self = .remove(name: name, proof: proof)
        case "recovery-codes" where fields.count == 2:
            guard let proof = proof(fields[1]) else { return nil }
            self = .recoveryCodes(proof: proof)
        default: return nil
        }
    }
}

/// One device as `list` shows it: never its secret.
public struct ListedDevice: Equatable, Sendable {
    public var name: String
    public var addedAt: Int64
    public var parameters: OTPParameters

    public init(name: String, addedAt: Int64, parameters: OTPParameters) {
        self.name = name
        self.addedAt = addedAt
        self.parameters = parameters
    }
}

public enum EnrollAnswer: Equatable, Sendable {
    /// At most this many devices are listed (and names cut to `maxNameBytes`), so that an answer always
    /// fits the client's line limit (FleetConnection.maxAnswer) whatever the directory holds.
    public static let maxListed = 50
    public static let maxNameBytes = 256

    /// The user's devices in the directory, how many recovery codes are left, and how many device entries
    /// are there but unusable (only an administrator can repair or remove those).
    case devices([ListedDevice], total: Int, recoveryCodesLeft: Int, unusable: Int)
    /// New recovery codes, shown this once, and how many unused ones they replaced.
    case recoveryCodes([String], replaced: Int)

    public var line: [UInt8] {
        var text: String
        switch self {
        case .devices(let devices, let total, let left, let unusable):
            text = "devices \(total) \(left) \(unusable)"
            for device in devices.prefix(EnrollAnswer.maxListed) {
                let p = device.parameters
                text += " \(hexString(Array(cut(device.name, maxBytes: EnrollAnswer.maxNameBytes).utf8))):\(device.addedAt):\(p.algorithm.rawValue):\(p.digits):\(p.period)"
            }
        case .recoveryCodes(let codes, let replaced):
            text = "recovery-codes \(replaced)"
            for code in codes { text += " " + hexString(Array(code.utf8)) }
        }
        return Array((text + "\n").utf8)
    }

    public init?(line: [UInt8]) {
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard let verb = fields.first.flatMap({ String(validating: $0, as: UTF8.self) }) else { return nil }
        func number(_ field: ArraySlice<UInt8>, _ range: ClosedRange<Int64>) -> Int64? {
            guard field.count <= 20, field.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), !field.isEmpty,
                  let value = Int64(String(decoding: field, as: UTF8.self)), range.contains(value) else { return nil }
            return value
        }
        switch verb {
        case "devices" where fields.count >= 4 && fields.count <= 4 + EnrollAnswer.maxListed:
            guard let total = number(fields[1], 0...100_000), let left = number(fields[2], 0...10_000),
                  let unusable = number(fields[3], 0...100_000) else { return nil }
            var devices: [ListedDevice] = []
            for field in fields.dropFirst(4) {
                let parts = field.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
                guard parts.count == 5, let name = hexText(parts[0], maxBytes: EnrollAnswer.maxNameBytes),
                      let added = number(parts[1], 0...Int64(Int32.max) * 4),
                      let algorithm = OTPAlgorithm(rawValue: String(decoding: parts[2], as: UTF8.self)),
                      let digits = number(parts[3], Int64(OTPParameters.digitRange.lowerBound)...Int64(OTPParameters.digitRange.upperBound)),
                      let period = number(parts[4], Int64(OTPParameters.periodRange.lowerBound)...Int64(OTPParameters.periodRange.upperBound)) else { return nil }
                devices.append(ListedDevice(name: name, addedAt: added,
                                            parameters: OTPParameters(algorithm: algorithm, digits: Int(digits), period: Int(period))))
            }
            self = .devices(devices, total: Int(total), recoveryCodesLeft: Int(left), unusable: Int(unusable))
        case "recovery-codes" where fields.count >= 2 && fields.count <= 2 + 100:
            guard let replaced = number(fields[1], 0...10_000) else { return nil }
            var codes: [String] = []
            for field in fields.dropFirst(2) {
                guard let code = hexText(field, maxBytes: 64) else { return nil }
                codes.append(code)
            }
            self = .recoveryCodes(codes, replaced: Int(replaced))
        default: return nil
        }
    }
}

/// `text` cut to at most `maxBytes` bytes between two Unicode scalars (the other side checks UTF-8).
private func cut(_ text: String, maxBytes: Int) -> String {
    guard text.utf8.count > maxBytes else { return text }
    var out = String.UnicodeScalarView()
    var bytes = 0
    for scalar in text.unicodeScalars {
        bytes += String(scalar).utf8.count
        guard bytes <= maxBytes else { break }
        out.append(scalar)
    }
    return String(out)
}

/// A hex field as UTF-8 text of at most `maxBytes` bytes; nil when it is not.
private func hexText(_ field: ArraySlice<UInt8>, maxBytes: Int) -> String? {
    guard field.count <= maxBytes * 2, let bytes = parseHex(field) else { return nil }
    return String(validating: bytes, as: UTF8.self)
}
