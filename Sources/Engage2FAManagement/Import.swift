import CEngageSys
import Engage2FALogin

/// A TOTP token found in another tool's file, as `engage2fa-admin import` turns it into a device.
public struct ImportedToken: Equatable, Sendable {
    public var secret: [UInt8]
    public var parameters: OTPParameters
    /// One-time codes (google-authenticator's scratch codes: eight digits), kept as recovery codes.
    public var scratchCodes: [[UInt8]]
    /// The newest step the source recorded as used (DISALLOW_REUSE, pam_oath's last OTP): its codes and
    /// older ones are never accepted again.
    public var lastUsedStep: Int64?
    /// Where it came from, for the device's name and the messages.
    public var source: String

    public var deviceName: String { "imported from \(source)" }
}

/// Why a file of another tool cannot be imported; the message says what to do.
public struct ImportProblem: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum GoogleAuthenticatorFile {
    public static let fileName = ".google_authenticator"
    public static let maxSize = 64 * 1024

    /// Parses `~/.google_authenticator` as google-authenticator(1) writes it: the base32 secret, option
    /// lines starting with `" ` (TOTP_AUTH or HOTP_COUNTER, STEP_SIZE, DISALLOW_REUSE with the steps used,
    /// WINDOW_SIZE, RATE_LIMIT), then the scratch codes, eight digits a line. Only time-based files can
    /// be imported: a phone in counter (HOTP) mode shows codes no TOTP device accepts.
    public static func parse(_ bytes: [UInt8], path: String) throws(ImportProblem) -> ImportedToken {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw ImportProblem("\(displayText(path)): not UTF-8 text") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        func fail(_ number: Int, _ message: String) -> ImportProblem { ImportProblem("\(displayText(path)):\(number): \(message)") }
        guard let first = lines.first, !first.isEmpty else { throw ImportProblem("\(displayText(path)): empty (no secret on the first line)") }
        let secret: [UInt8]
        do { secret = try Base32.decode(first) } catch { throw fail(1, "the first line is not a base32 secret") }
        guard secret.count >= 10 else { throw fail(1, "the secret is shorter than 80 bits") }
        var isTOTP = false, isHOTP = false
        var period = 30
        var usedSteps: [Int64] = []
        var scratchCodes: [[UInt8]] = []
        for (index, line) in lines.enumerated().dropFirst() {
            let number = index + 1
            if line.isEmpty { continue }
            if line.hasPrefix("\" ") {
                let words = line.dropFirst(2).split(separator: " ")
                guard let option = words.first else { continue }
                let values = words.dropFirst()
                func numbers(_ range: ClosedRange<Int64>) throws(ImportProblem) -> [Int64] {
                    var result: [Int64] = []
                    for value in values {
                        guard let number = Int64(value), range.contains(number) else {
                            throw fail(number, "\(option): '\(displayText(String(value), limit: 32))' is not a number from \(range.lowerBound) to \(range.upperBound)")
                        }
                        result.append(number)
                    }
                    return result
                }
                switch option {
                case "TOTP_AUTH": isTOTP = true
                case "HOTP_COUNTER": isHOTP = true
                case "STEP_SIZE":
                    guard let step = try numbers(1...3600).first, values.count == 1 else { throw fail(number, "STEP_SIZE needs one number") }
                    guard OTPParameters.periodRange.contains(Int(step)) else {
                        throw fail(number, "STEP_SIZE \(step) is outside the periods engage2fa supports (\(OTPParameters.periodRange.lowerBound) to \(OTPParameters.periodRange.upperBound) seconds): link the user's app anew with engage2fa-enroll")
                    }
                    period = Int(step)
                case "DISALLOW_REUSE": usedSteps = try numbers(0...(1 << 40))
                case "WINDOW_SIZE", "RATE_LIMIT": _ = try numbers(0...(1 << 40))  // engage2fa's own settings (window, max_failures) apply
                default: continue  // options of newer versions change nothing a code depends on
                }
                continue
            }
            guard line.utf8.count == RecoveryCodes.scratchCodeLength, line.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw fail(number, "expected a scratch code (eight digits), found '\(displayText(String(line), limit: 32))'")
            }
            guard scratchCodes.count < RecoveryCodes.codeCount else { throw fail(number, "more than \(RecoveryCodes.codeCount) scratch codes") }
            scratchCodes.append(Array(line.utf8))
        }
        if isHOTP {
            throw ImportProblem("\(displayText(path)): counter-based (HOTP_COUNTER): engage2fa supports time-based codes only; the user links an app anew with engage2fa-enroll")
        }
        guard isTOTP else { throw ImportProblem("\(displayText(path)): neither TOTP_AUTH nor HOTP_COUNTER: not a file google-authenticator wrote") }
        return ImportedToken(secret: secret, parameters: OTPParameters(period: period), scratchCodes: scratchCodes,
                             lastUsedStep: usedSteps.max(), source: "google-authenticator")
    }
}

/// One line of pam_oath's usersfile (oath-toolkit's users.oath).
public struct OathUserLine: Equatable, Sendable {
    public var user: String
    public var line: Int
    public var token: Result<ImportedToken, ImportProblem>
}

public enum OathUsersFile {
    public static let maxSize = 1 << 20

    /// Parses the usersfile as pam_oath(8) reads it: `TYPE USER PASSWORD SECRET [COUNTER [LAST-OTP [TIME]]]`,
    /// TYPE `HOTP/T30` or `HOTP/T60` (TOTP with that period), optionally `/6`, `/7` or `/8` digits; the
    /// secret in hex. The password field is never kept: engage2fa leaves passwords to the password module.
    /// Counter-based (`HOTP`, `HOTP/E`) lines are refused one by one. The last OTP used, with its time,
    /// becomes replay state when `lastStep` finds its step.
    public static func parse(_ bytes: [UInt8], path: String) throws(ImportProblem) -> [OathUserLine] {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw ImportProblem("\(displayText(path)): not UTF-8 text") }
        var result: [OathUserLine] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let fields = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let type = fields.first, !type.hasPrefix("#") else { continue }
            func problem(_ message: String) -> Result<ImportedToken, ImportProblem> { .failure(ImportProblem("\(displayText(path)):\(number): \(message)")) }
            guard fields.count >= 4 else {
                result.append(OathUserLine(user: fields.count > 1 ? String(fields[1]) : "", line: number,
                                           token: problem("expected TYPE USER PASSWORD SECRET")))
                continue
            }
            let user = String(fields[1])
            let parts = type.split(separator: "/")
            var period = 0, digits = 6
            guard parts.first == "HOTP" else {
                result.append(OathUserLine(user: user, line: number, token: problem("unknown token type '\(displayText(String(type), limit: 32))'")))
                continue
            }
            for part in parts.dropFirst() {
                if part.hasPrefix("T"), let seconds = Int(part.dropFirst()) { period = seconds }
                else if let count = Int(part), OTPParameters.digitRange.contains(count) { digits = count }
                else if part == "E" { period = 0 }
                else { period = -1 }
            }
            guard period != 0 else {
                result.append(OathUserLine(user: user, line: number, token: problem("counter-based (\(displayText(String(type), limit: 32))): engage2fa supports time-based codes only; the user links an app anew with engage2fa-enroll")))
                continue
            }
            guard OTPParameters.periodRange.contains(period) else {
                result.append(OathUserLine(user: user, line: number, token: problem("token type '\(displayText(String(type), limit: 32))' is not one engage2fa can import (HOTP/T30, HOTP/T60, optionally /6, /7 or /8)")))
                continue
            }
            guard fields[3].utf8.count <= 256, let secret = parseHex(fields[3].utf8), secret.count >= 10 else {
                result.append(OathUserLine(user: user, line: number, token: problem("the secret is not hex of at least 80 bits")))
                continue
            }
            let parameters = OTPParameters(digits: digits, period: period)
            var lastStep: Int64? = nil
            if fields.count >= 7, let time = parseOathTime(fields[6]) {
                lastStep = usedStep(otp: Array(fields[5].utf8), near: time, secret: secret, parameters: parameters)
            }
            result.append(OathUserLine(user: user, line: number, token: .success(
                ImportedToken(secret: secret, parameters: parameters, scratchCodes: [], lastUsedStep: lastStep, source: "pam_oath"))))
        }
        return result
    }

    /// The step near `time` whose code is `otp`; nil when none within a few steps (the time may be off by an
    /// hour or two when written in local time across a zone change: then a step a little later, to be safe).
    static func usedStep(otp: [UInt8], near time: Int64, secret: [UInt8], parameters: OTPParameters) -> Int64? {
        let step = parameters.step(at: time)
        var found: Int64? = nil
        for candidate in (step - 3)...(step + 3) where candidate >= 0 && constantTimeEqual(totp(secret: secret, step: candidate, parameters: parameters), otp) {
            found = candidate
        }
        return found ?? step + 1
    }

    /// pam_oath's time field, `YYYY-MM-DDTHH:MM:SSL` (local time, the L).
    static func parseOathTime(_ field: Substring) -> Int64? {
        let bytes = Array(field.utf8)
        // YYYY-MM-DDTHH:MM:SS, then L
        guard bytes.count >= 19, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":") else { return nil }
        func number(_ range: Range<Int>) -> Int32? {
            var value: Int32 = 0
            for byte in bytes[range] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int32(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
              let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month), (1...31).contains(day),
              hour < 24, minute < 60, second < 61, year >= 1970 else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        parts.tm_isdst = -1
        let time = mktime(&parts)
        return time < 0 ? nil : Int64(time)
    }
}
