import XCTest

@testable import Engage2FALogin
@testable import Engage2FAManagement

/// The parsers of other tools' files (`engage2fa-admin import`): every field range-checked, every bad line
/// named, counter-based tokens refused, passwords never kept.
final class ImportTests: XCTestCase {
    let gaFile = """
        JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
        " RATE_LIMIT 3 30 1764590000
        " WINDOW_SIZE 17
        " DISALLOW_REUSE 58819600 58819602
        " STEP_SIZE 60
        " TOTP_AUTH
        12345678
        87654321

        """

    func testGoogleAuthenticatorFileParses() throws {
        let token = try GoogleAuthenticatorFile.parse(Array(gaFile.utf8), path: "/home/a/.google_authenticator")
        XCTAssertEqual(token.secret, try Base32.decode("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"))
        XCTAssertEqual(token.parameters, OTPParameters(period: 60))
        XCTAssertEqual(token.scratchCodes, [Array("12345678".utf8), Array("87654321".utf8)])
        XCTAssertEqual(token.lastUsedStep, 58819602)
        XCTAssertEqual(token.deviceName, "imported from google-authenticator")
        // Scratch codes are recovery codes of their own form.
        XCTAssertEqual(RecoveryCodes.normalize(Array("1234 5678".utf8)), Array("12345678".utf8))
        XCTAssertNil(RecoveryCodes.normalize(Array("1234567".utf8)))
        XCTAssertNil(RecoveryCodes.normalize(Array("abcde-fgh18".utf8)))
    }

    func testGoogleAuthenticatorProblemsNameTheLine() {
        func problem(_ text: String) -> String {
            do { _ = try GoogleAuthenticatorFile.parse(Array(text.utf8), path: "/h/.google_authenticator"); return "parsed" } catch { return error.description }
        }
        XCTAssertTrue(problem("JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 1\n").contains("counter-based (HOTP_COUNTER)"))
        XCTAssertTrue(problem("JBSWY3DPEHPK3PXP\n12345678\n").contains("neither TOTP_AUTH nor HOTP_COUNTER"))
        XCTAssertEqual(problem("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" STEP_SIZE 5\n").prefix(29), "/h/.google_authenticator:3: S")
        XCTAssertTrue(problem("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" DISALLOW_REUSE 99999999999999999999\n").contains(":3: DISALLOW_REUSE"))
        XCTAssertTrue(problem("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n1234\u{1B}[2J\n").contains(":3: expected a scratch code (eight digits), found '1234\\x1b[2J'"))
        XCTAssertTrue(problem("not base32!\n").contains(":1: the first line is not a base32 secret"))
        XCTAssertTrue(problem("").contains("empty"))
    }

    func testOathUsersFileKeepsNoPasswordAndRefusesCounterLines() throws {
        let secret = "3132333435363738393031323334353637383930"
        let text = """
            # comment
            HOTP/T30 alice - \(secret)
            HOTP/T60/8 bob Plain-Pw1 \(secret) 0 12345678 2026-12-01T10:00:00L
            HOTP carol - \(secret) 7
            HOTP/T30 dave - nothex
            HOTP/T5 erin - \(secret)

            """
        let lines = try OathUsersFile.parse(Array(text.utf8), path: "/etc/users.oath")
        XCTAssertEqual(lines.map(\.user), ["alice", "bob", "carol", "dave", "erin"])
        let alice = try lines[0].token.get()
        XCTAssertEqual(alice.parameters, OTPParameters(period: 30))
        XCTAssertNil(alice.lastUsedStep)
        let bob = try lines[1].token.get()
        XCTAssertEqual(bob.parameters, OTPParameters(digits: 8, period: 60))
        XCTAssertNotNil(bob.lastUsedStep)  // no OTP matched near that time: a step after it, to be safe
        XCTAssertFalse("\(bob)".contains("Plain-Pw1"))
        XCTAssertTrue("\(lines[2].token)".contains("/etc/users.oath:4: counter-based (HOTP)"))
        XCTAssertTrue("\(lines[3].token)".contains(":5: the secret is not hex"))
        XCTAssertTrue("\(lines[4].token)".contains(":6: token type 'HOTP/T5' is not one engage2fa can import"))
    }

    func testOathLastOTPFindsItsStep() throws {
        let secret = Array("12345678901234567890".utf8)
        let parameters = OTPParameters(period: 30)
        let time: Int64 = 1_764_590_000
        let otp = totp(secret: secret, at: time - 30, parameters: parameters)
        XCTAssertEqual(OathUsersFile.usedStep(otp: otp, near: time, secret: secret, parameters: parameters), parameters.step(at: time) - 1)
    }
}
