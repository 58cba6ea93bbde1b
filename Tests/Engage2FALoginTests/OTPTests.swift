import Foundation
import XCTest

@testable import Engage2FALogin

/// HOTP/TOTP against RFC 4226/6238 and against oathtool.
final class OTPTests: XCTestCase {
    let rfcSeed = bytes("12345678901234567890")
    let rfcSeed256 = bytes("12345678901234567890123456789012")
    let rfcSeed512 = bytes("1234567890123456789012345678901234567890123456789012345678901234")

    func testRFC4226AppendixD() {
        let expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
        for (counter, code) in expected.enumerated() {
            XCTAssertEqual(formatCode(hotp(secret: rfcSeed, counter: UInt64(counter)), digits: 6), bytes(code), "counter \(counter)")
        }
    }

    func testRFC6238AppendixB() {
        let table: [(Int64, String, String, String)] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ]
        for (time, sha1, sha256, sha512) in table {
            XCTAssertEqual(totp(secret: rfcSeed, at: time, parameters: OTPParameters(algorithm: .sha1, digits: 8)), bytes(sha1), "SHA1 at \(time)")
            XCTAssertEqual(totp(secret: rfcSeed256, at: time, parameters: OTPParameters(algorithm: .sha256, digits: 8)), bytes(sha256), "SHA256 at \(time)")
            XCTAssertEqual(totp(secret: rfcSeed512, at: time, parameters: OTPParameters(algorithm: .sha512, digits: 8)), bytes(sha512), "SHA512 at \(time)")
            // Six digits are the last six of eight: the same 31-bit value mod 10^6.
            XCTAssertEqual(totp(secret: rfcSeed, at: time, parameters: OTPParameters(algorithm: .sha1, digits: 6)), Array(bytes(sha1).suffix(6)))
        }
    }

    func testGoogleAuthenticatorVectors() throws {
        let secret = try Base32.decode("2SH3V3GDW7ZNMGYE")
        XCTAssertEqual(totp(secret: secret, at: 300_000), bytes("050548"))
        XCTAssertEqual(formatCode(hotp(secret: secret, counter: 1), digits: 6), bytes("293240"))
        XCTAssertEqual(formatCode(hotp(secret: [0x00], counter: 4), digits: 6), bytes("320986"))
    }

    func testStepsAndPeriods() {
        let parameters = OTPParameters(period: 30)
        XCTAssertEqual(parameters.step(at: 0), 0)
        XCTAssertEqual(parameters.step(at: 29), 0)
        XCTAssertEqual(parameters.step(at: 30), 1)
        XCTAssertEqual(parameters.step(at: -1), -1)
        XCTAssertEqual(OTPParameters(period: 15).step(at: 59), 3)
        XCTAssertEqual(OTPParameters(period: 120).step(at: 240), 2)
    }

    /// 200 random secrets × three algorithms × digits 6–8 × several periods and times, against oathtool.
    func testAgainstOathtool() throws {
        let oathtool = "/usr/bin/oathtool"
        guard FileManager.default.isExecutableFile(atPath: oathtool) else {
            throw XCTSkip("oathtool is not installed (apt-get install oathtool); .ci/run installs it")
        }
        var compared = 0
        for round in 0..<200 {
            let secret = randomBytes([10, 16, 20, 32, 64][round % 5])
            let algorithm = OTPAlgorithm.allCases[round % 3]
            let digits = 6 + round % 3
            let period = [30, 15, 60, 120, 45][round % 5]
            let time = Int64.random(in: 0...4_102_444_800)
            let parameters = OTPParameters(algorithm: algorithm, digits: digits, period: period)
            // -w 3 prints the codes of four consecutive steps: four times compared per call.
            let (status, output) = try runProgram(oathtool, [
                "--totp=\(algorithm.rawValue.lowercased())", "-b", "-d", "\(digits)", "-s", "\(period)s", "-w", "3",
                "-N", "@\(time)", Base32.encode(secret),
            ])
            XCTAssertEqual(status, 0)
            let lines = output.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.count, 4)
            for (offset, line) in lines.enumerated() {
                let ours = String(decoding: totp(secret: secret, step: parameters.step(at: time) + Int64(offset), parameters: parameters), as: UTF8.self)
                XCTAssertEqual(ours, line, "\(algorithm) \(digits) digits, \(period) s, time \(time) + \(offset) steps")
                compared += 1
            }
        }
        XCTAssertEqual(compared, 800)
    }

    func testNormalizedCode() {
        XCTAssertEqual(normalizedCode(bytes(" 123456\n"), digits: 6), bytes("123456"))
        XCTAssertEqual(normalizedCode(bytes("\t12345678 "), digits: 8), bytes("12345678"))
        XCTAssertNil(normalizedCode(bytes("12345"), digits: 6))
        XCTAssertNil(normalizedCode(bytes("1234567"), digits: 6))
        XCTAssertNil(normalizedCode(bytes("12 3456"), digits: 6))
        XCTAssertNil(normalizedCode(bytes("12345a"), digits: 6))
        XCTAssertNil(normalizedCode(bytes("%n%n%s"), digits: 6))
        XCTAssertNil(normalizedCode(bytes(""), digits: 6))
        XCTAssertNil(normalizedCode(bytes("-12345"), digits: 6))
        XCTAssertNil(normalizedCode(Array(repeating: UInt8(ascii: "1"), count: 1000), digits: 6))
        XCTAssertNil(normalizedCode(bytes("１２３４５６"), digits: 6))  // full-width digits are not ASCII digits
    }

    func testHOTPKeyedOnceMatchesPlainHMACForEveryKeyLength() throws {
        // HOTPGenerator computes the HMAC from key states prepared once; plain HMAC (checked against
        // libcrypto in CryptoTests) is the reference, keys longer than a block included (hashed first).
        func truncated(_ mac: [UInt8], digits: Int) -> UInt32 {
            let offset = Int(mac[mac.count - 1] & 0x0F)
            let binary = (UInt32(mac[offset] & 0x7F) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
            var modulus: UInt32 = 1
            for _ in 0..<digits { modulus *= 10 }
            return binary % modulus
        }
        for length in [0, 1, 10, 20, 32, 63, 64, 65, 100, 127, 128, 129, 200] {
            let key = try secureRandomBytes(length)
            let counter = UInt64.random(in: 0...UInt64.max)
            let message = withUnsafeBytes(of: counter.bigEndian) { Array($0) }
            XCTAssertEqual(hotp(secret: key, counter: counter, algorithm: .sha1, digits: 8),
                           truncated(HMAC<SHA1Compression>.authenticationCode(key: key, message: message), digits: 8), "SHA1, \(length)-byte key")
            XCTAssertEqual(hotp(secret: key, counter: counter, algorithm: .sha256, digits: 8),
                           truncated(HMAC<SHA256Compression>.authenticationCode(key: key, message: message), digits: 8), "SHA256, \(length)-byte key")
            XCTAssertEqual(hotp(secret: key, counter: counter, algorithm: .sha512, digits: 8),
                           truncated(HMAC<SHA512Compression>.authenticationCode(key: key, message: message), digits: 8), "SHA512, \(length)-byte key")
        }
    }

    func testVerificationWindowAndReplay() throws {
        let secret = try newSecret()
        let parameters = OTPParameters()
        let now: Int64 = 1_764_000_015
        let step = parameters.step(at: now)
        func code(_ offset: Int64) -> [UInt8] { totp(secret: secret, step: step + offset, parameters: parameters) }

        XCTAssertEqual(verifyTOTP(code: code(0), secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: nil), .accepted(step: step))
        XCTAssertEqual(verifyTOTP(code: code(-1), secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: nil), .accepted(step: step - 1))
        XCTAssertEqual(verifyTOTP(code: code(1), secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: nil), .accepted(step: step + 1))
        XCTAssertEqual(verifyTOTP(code: code(-2), secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: nil), .wrong)
        XCTAssertEqual(verifyTOTP(code: code(-1), secret: secret, parameters: parameters, now: now, window: 0, lastAcceptedStep: nil), .wrong)
        XCTAssertEqual(verifyTOTP(code: code(-2), secret: secret, parameters: parameters, now: now, window: 2, lastAcceptedStep: nil), .accepted(step: step - 2))
        // The same step again, and an older step once a newer one was used, are replays.
        XCTAssertEqual(verifyTOTP(code: code(0), secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: step), .replayed)
        XCTAssertEqual(verifyTOTP(code: code(-1), secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: step), .replayed)
        XCTAssertEqual(verifyTOTP(code: code(1), secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: step), .accepted(step: step + 1))
        XCTAssertEqual(verifyTOTP(code: bytes("12a456"), secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: nil), .malformed)
        // A wrong code: flip the last digit of the right one.
        var wrong = code(0)
        wrong[5] = wrong[5] == UInt8(ascii: "9") ? UInt8(ascii: "0") : wrong[5] + 1
        let check = verifyTOTP(code: wrong, secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: nil)
        // The flipped code could, with probability ~2e-6, be a neighbour step's code.
        if check != .wrong, wrong != code(-1), wrong != code(1) { XCTFail("flipped code gave \(check)") }
    }
}

final class Base32Tests: XCTestCase {
    func testRFC4648Vectors() throws {
        let vectors = [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI")]
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base32.encode(bytes(plain)), encoded)
            XCTAssertEqual(try Base32.decode(encoded), bytes(plain))
        }
        // Padded forms, as RFC 4648 prints them, decode too.
        XCTAssertEqual(try Base32.decode("MZXW6YTBOI======"), bytes("foobar"))
        XCTAssertEqual(try Base32.decode("MY======"), bytes("f"))
        XCTAssertEqual(Base32.encode(bytes("Hello world...\0")), "JBSWY3DPEB3W64TMMQXC4LQA")
    }

    func testDecodingIsLenientAboutCaseSpacesAndHyphens() throws {
        XCTAssertEqual(try Base32.decode("mzxw 6ytb-oi"), bytes("foobar"))
        XCTAssertEqual(try Base32.decode("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"), bytes("12345678901234567890"))
    }

    func testDecodingErrorsSayWhatAndWhere() {
        XCTAssertThrowsError(try Base32.decode("MZXW1YTB")) { error in
            XCTAssertEqual(error as? Base32.DecodingError, .invalidCharacter("1", position: 4))
            XCTAssertEqual("\(error)", "invalid base32 character '1' at position 5 (expected A–Z, 2–7, spaces or hyphens)")
        }
        XCTAssertThrowsError(try Base32.decode("MZ=XW")) { XCTAssertEqual($0 as? Base32.DecodingError, .dataAfterPadding(position: 3)) }
        XCTAssertThrowsError(try Base32.decode("MZX")) { XCTAssertEqual($0 as? Base32.DecodingError, .invalidLength(symbols: 3)) }
        XCTAssertThrowsError(try Base32.decode("MZ")) { XCTAssertEqual($0 as? Base32.DecodingError, .nonZeroTrailingBits) }
        XCTAssertThrowsError(try Base32.decode("MÜ")) { XCTAssertEqual($0 as? Base32.DecodingError, .invalidCharacter("Ü", position: 1)) }
    }

    func testRoundTripOfRandomBytes() throws {
        for length in 0...70 {
            let data = randomBytes(length)
            let encoded = Base32.encode(data)
            XCTAssertFalse(encoded.contains("="))
            XCTAssertEqual(try Base32.decode(encoded), data)
            XCTAssertEqual(try Base32.decode(encoded.lowercased()), data)
            XCTAssertEqual(try Base32.decode(Base32.grouped(encoded)), data)
        }
    }
}

final class OTPAuthURITests: XCTestCase {
    func testTextAndRoundTrip() throws {
        let secret = bytes("12345678901234567890")
        let uri = OTPAuthURI(issuer: "Engage", account: "alice", secret: secret)
        // The defaults (SHA1, 6 digits, 30 s) are left out: a smaller QR code.
        XCTAssertEqual(uri.text, "otpauth://totp/Engage:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Engage")
        XCTAssertEqual(try OTPAuthURI(parsing: uri.text), uri)

        let unusual = OTPAuthURI(issuer: "ACME Corp & Co", account: "bob.o'neil@host", secret: try newSecret(),
                                 parameters: OTPParameters(algorithm: .sha512, digits: 8, period: 60))
        // '@' stays in the label (a path segment may hold it; the Key Uri Format's own example does).
        XCTAssertTrue(unusual.text.hasPrefix("otpauth://totp/ACME%20Corp%20%26%20Co:bob.o%27neil@host?"))
        XCTAssertTrue(unusual.text.hasSuffix("&issuer=ACME%20Corp%20%26%20Co&algorithm=SHA512&digits=8&period=60"))
        // What would end the label or split it is encoded: '?', '#', ':', '%', '/', '&' and spaces.
        let delimiters = OTPAuthURI(issuer: "a?b#c", account: "d:e%f/g&h i@j", secret: secret)
        XCTAssertTrue(delimiters.text.hasPrefix("otpauth://totp/a%3Fb%23c:d%3Ae%25f%2Fg%26h%20i@j?secret="), delimiters.text)
        XCTAssertEqual(try OTPAuthURI(parsing: delimiters.text), delimiters)
        XCTAssertEqual(try OTPAuthURI(parsing: unusual.text), unusual)
        let unicode = OTPAuthURI(issuer: "Zürich", account: "jürgen", secret: secret)
        XCTAssertEqual(try OTPAuthURI(parsing: unicode.text), unicode)
    }

    func testParsingWhatAppsAndOtherToolsWrite() throws {
        let parsed = try OTPAuthURI(parsing: "otpauth://totp/ACME:john?secret=JBSWY3DPEHPK3PXP&issuer=ACME&digits=8&algorithm=sha256&image=https://x/y.png")
        XCTAssertEqual(parsed.issuer, "ACME")
        XCTAssertEqual(parsed.account, "john")
        XCTAssertEqual(parsed.parameters, OTPParameters(algorithm: .sha256, digits: 8, period: 30))
        let noIssuer = try OTPAuthURI(parsing: "otpauth://totp/john?secret=JBSWY3DPEHPK3PXP")
        XCTAssertEqual(noIssuer.issuer, "")
        XCTAssertEqual(noIssuer.account, "john")
    }

    func testParseErrors() {
        XCTAssertThrowsError(try OTPAuthURI(parsing: "https://example.com")) { XCTAssertEqual($0 as? OTPAuthURI.ParseError, .notOTPAuth) }
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://hotp/a?secret=MZXW6&counter=1")) { XCTAssertEqual($0 as? OTPAuthURI.ParseError, .notTOTP(type: "hotp")) }
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?issuer=x")) { XCTAssertEqual($0 as? OTPAuthURI.ParseError, .missingSecret) }
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a?secret=MZXW6&digits=9")) {
            XCTAssertEqual($0 as? OTPAuthURI.ParseError, .badParameter(name: "digits", value: "9"))
        }
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/a%2?secret=MZXW6")) { XCTAssertEqual($0 as? OTPAuthURI.ParseError, .badPercentEncoding) }
        XCTAssertThrowsError(try OTPAuthURI(parsing: "otpauth://totp/A:b?secret=MZXW6&issuer=B")) {
            XCTAssertEqual($0 as? OTPAuthURI.ParseError, .issuerMismatch(label: "A", parameter: "B"))
        }
    }
}
