import XCTest

@testable import Engage2FALogin

/// Fleet mode's policy keys and the lines exchanged with engage2fad (hostile bytes included).
final class FleetTests: XCTestCase {
    func testStoreLdapNeedsURIAndBase() {
        let parsed = Config.parse("store = ldap\n", file: "/etc/engage2fa.conf")
        XCTAssertEqual(parsed.errors.map(\.message), ["store = ldap needs ldap_uri"])
        XCTAssertEqual(parsed.errors.first?.line, 1)
        let complete = Config.parse("""
            store = ldap
            ldap_uri = ldaps://one.example.org ldapi:///
            ldap_base = ou=engage2fa,dc=example,dc=org
            ldap_bind_dn = cn=web1,ou=hosts,dc=example,dc=org
            ldap_bind_password_file = /etc/engage2fa.ldap-password
            ldap_timeout = 2
            """, file: "f")
        XCTAssertTrue(complete.isValid, "\(complete.errors)")
        XCTAssertEqual(complete.config.fleet.uris, ["ldaps://one.example.org", "ldapi:///"])
        XCTAssertEqual(complete.config.fleet.timeoutSeconds, 2)
        XCTAssertEqual(Config.parse("", file: "f").config.fleet.store, .local)
    }

    func testBadFleetValuesAreErrors() {
        for line in ["store = nfs", "ldap_uri = http://x", "ldap_timeout = 0", "ldap_timeout = 61", "ldap_ca = relative",
                     "ldap_bind_password_file = /a/../b", "ldap_base = nothing"] {
            XCTAssertFalse(Config.parse(line + "\n", file: "f").isValid, line)
        }
        let bindWithoutPassword = Config.parse("store = ldap\nldap_uri = ldapi:///\nldap_base = ou=e,dc=x\nldap_bind_dn = cn=h,dc=x\n", file: "f")
        XCTAssertEqual(bindWithoutPassword.errors.map(\.message), ["ldap_bind_dn needs ldap_bind_password_file (or leave both out for SASL EXTERNAL)"])
    }

    func testTLSIsRequiredExceptForLoopbackAndLdapi() {
        XCTAssertTrue(FleetSettings.needsStartTLS("ldap://ldap.example.org/"))
        XCTAssertTrue(FleetSettings.needsStartTLS("ldap://127example.org/"))
        XCTAssertFalse(FleetSettings.needsStartTLS("ldap://127.0.0.1:3890/"))
        XCTAssertFalse(FleetSettings.needsStartTLS("ldap://[::1]:389"))
        XCTAssertFalse(FleetSettings.needsStartTLS("ldap://LocalHost"))
        XCTAssertFalse(FleetSettings.needsStartTLS("ldaps://ldap.example.org"))
        XCTAssertFalse(FleetSettings.needsStartTLS("ldapi:///"))
    }

    /// libldap's ldap_initialize takes a list of URIs separated by commas or spaces: one ldap_uri value
    /// "ldap://127.0.0.1,ldap://far.example.org" looked like loopback to the TLS rule, and libldap then
    /// spoke plain LDAP (bind password included) to the far host. A host name that only starts with
    /// "127." is a DNS name, not a loopback address.
    func testTLSRuleCannotBeSidesteppedByAURIListOrALoopbackLookingName() {
        for value in ["ldap://127.0.0.1,ldap://far.example.org/", "ldapi://%2Frun%2Fslapd,ldap://far.example.org",
                      "ldap://localhost/,ldap://far.example.org"] {
            XCTAssertFalse(Config.parse("ldap_uri = \(value)\n", file: "f").isValid, value)
        }
        XCTAssertTrue(FleetSettings.needsStartTLS("ldap://127.far.example.org/"))
        XCTAssertTrue(FleetSettings.needsStartTLS("ldap://127.0.0.1.nip.io/"))
        XCTAssertFalse(FleetSettings.needsStartTLS("ldap://127.0.0.53:389/"))
    }

    /// A combined answer's recovery codes go as hashes (whole PBKDF2-SHA256 values, at most two); a cache line
    /// from before the recovery parameters still reads.
    func testRecoveryHashesAndOldSnapshotLines() {
        let hash = String(repeating: "ab", count: 32)
        XCTAssertEqual(FleetRequest(line: Array("check 61 31 \(hash)\(hash)".utf8)),
                       .check(user: "a", typed: [0x31], recoveryHashes: [Array(repeating: 0xAB, count: 32), Array(repeating: 0xAB, count: 32)]))
        for bad in ["check 61 31 \(hash)ab", "check 61 31 \(hash)\(hash)\(hash)", "check 61 31 ", "check 61 31 zz"] {
            XCTAssertNil(FleetRequest(line: Array(bad.utf8)), bad)
        }
        XCTAssertEqual(FleetAnswer(line: Array("recovery 3".utf8)), .recovery(codesLeft: 3, candidate: 0))
        XCTAssertNil(FleetAnswer(line: Array("recovery 3 2".utf8)))
        var old = FleetSnapshot()
        old.devices = 1
        XCTAssertEqual(FleetAnswer(line: Array("snapshot start=- activated=- deadline=- devices=1 recovery=0 locked=0".utf8)), .snapshot(old))
        // A salt without iterations: the module's PBKDF2 would trap (precondition) in the host process.
        for bad in ["rsalt=- riter=100001", "rsalt= riter=1", "rsalt=\(String(repeating: "00", count: 65)) riter=1", "rsalt=aa riter=0", "riter=0 rsalt=aa"] {
            XCTAssertNil(FleetAnswer(line: Array("snapshot start=- activated=- deadline=- devices=1 recovery=0 locked=0 \(bad)".utf8)), bad)
        }
    }

    func testRequestsAndAnswersRoundTripWhateverTheNames() throws {
        let hostile = "a b\nc\u{1b}[2J%ff"
        for request in [FleetRequest.snapshot(user: hostile), .check(user: hostile, typed: Array("12 34\n".utf8), recoveryHashes: []),
                        .check(user: hostile, typed: [0x31], recoveryHashes: [Array(repeating: 1, count: 32), Array(repeating: 2, count: 32)]),
                        .enrollBegin(name: hostile), .enrollConfirm(code: [0x31, 0x0a], existingCode: [])] {
            let line = request.line
            XCTAssertEqual(line.filter { $0 == 0x0A }.count, 1)
            XCTAssertEqual(FleetRequest(line: Array(line.dropLast())), request)
        }
        var snapshot = FleetSnapshot()
        snapshot.startDate = try PolicyDate(parsing: "2026-03-01T08:00Z")
        snapshot.activatedAt = 1_700_000_000
        snapshot.devices = 2
        snapshot.lockedUntil = 5
        snapshot.recoverySalt = Array(repeating: 0xAB, count: 16)
        snapshot.recoveryIterations = 1000
        for answer in [FleetAnswer.snapshot(snapshot), .snapshot(FleetSnapshot()), .accepted(deviceName: hostile), .recovery(codesLeft: 3, candidate: 1),
                       .replayed, .wrong, .lockedNow, .locked(remaining: 60), .unreachable(hostile), .failed(hostile), .done(hostile),
                       .enrollment(secret: Array(repeating: 7, count: 20), parameters: OTPParameters(algorithm: .sha256, digits: 8, period: 60),
                                   issuer: "Fleet", existingDevices: 1)] {
            let line = answer.line
            XCTAssertEqual(line.filter { $0 == 0x0A }.count, 1, "\(answer)")
            XCTAssertEqual(FleetAnswer(line: Array(line.dropLast())), answer)
        }
    }

    func testMalformedLinesAreRefused() {
        for text in ["", "snapshot", "snapshot zz", "check 61", "snapshot 61 62", "locked -1", "recovery 99999999",
                     "snapshot start=- activated=- deadline=- devices=-1 recovery=0 locked=0", "accepted 6", "enrollment 00 SHA1 6 30 46 0"] {
            XCTAssertNil(FleetAnswer(line: Array(text.utf8)), text)
            XCTAssertNil(FleetRequest(line: Array(text.utf8)), text)
        }
    }
}
