import XCTest

@testable import Engage2FALogin
@testable import Engage2FAManagement

final class ConfigTests: XCTestCase {
    func testFullFileParses() throws {
        withTimeZone("Europe/Amsterdam") {
            let text = """
                # Rollout of 2FA for the build hosts
                start_date = 2026-12-15      # midnight, local time
                issuer = Build Farm#2   # a # inside a word is kept
                window = 2
                max_failures = 3
                lockout_seconds = 600
                secret_path = /var/lib/engage2fa-secrets/%u
                state_dir = /var/lib/engage2fa
                algorithm = sha256
                digits = 8
                period = 60

                [deadlines]
                alice = 2027-01-10
                bob = 2026-12-20T09:30:00+01:00\r
                """
            let parsed = Config.parse(text, file: "/etc/engage2fa.conf")
            XCTAssertEqual(parsed.errors, [])
            // What apps mishandle is a warning at its line (testAppCaveats).
            XCTAssertEqual(parsed.diagnostics.map(\.line).sorted(), [3, 9, 11])
            let config = parsed.config
            XCTAssertEqual(config.startDate?.text, "2026-12-15")
            // 2026-12-15 00:00 CET is 2026-12-14 23:00 UTC.
            XCTAssertEqual(config.startDate?.unixTime, utc("2026-12-14T23:00:00Z"))
            XCTAssertEqual(config.issuer, "Build Farm#2")
            XCTAssertEqual(config.window, 2)
            XCTAssertEqual(config.maxFailures, 3)
            XCTAssertEqual(config.lockoutSeconds, 600)
            XCTAssertEqual(config.secretFilePath(user: "alice", home: "/home/alice"), "/var/lib/engage2fa-secrets/alice")
            XCTAssertFalse(config.secretFileIsInHome(user: "alice", home: "/home/alice"))
            XCTAssertEqual(config.newDeviceParameters, OTPParameters(algorithm: .sha256, digits: 8, period: 60))
            XCTAssertEqual(config.deadlines["bob"]?.unixTime, utc("2026-12-20T08:30:00Z"))
            XCTAssertEqual(parsed.deadlineLines, ["alice": 14, "bob": 15])
        }
    }

    /// Issue 16: a host's entry in an app differs from another host's (`user@host` by default).
    func testLabelTemplate() {
        XCTAssertEqual(Config().label, "%u@%h")
        XCTAssertEqual(Config().accountLabel(user: "alice", host: "build-01"), "alice@build-01")
        let parsed = Config.parse("label = %u on %h (100%%)\n", file: "f")
        XCTAssertEqual(parsed.diagnostics, [])
        XCTAssertEqual(parsed.config.accountLabel(user: "bob", host: "web"), "bob on web (100%)")
        XCTAssertEqual(Config.parse("label = %u\n", file: "f").config.accountLabel(user: "bob", host: "web"), "bob")
        // The host name and the user name are values, not templates: their '%' is not expanded again.
        XCTAssertEqual(Config().accountLabel(user: "a%h", host: "x%u"), "a%h@x%u")

        let bad = Config.parse("label = %u:%h\n", file: "f")
        XCTAssertEqual(bad.errors.map(\.description), ["f:1: error: label must not contain ':' (apps split issuer and account at ':'), not '%u:%h'"])
        XCTAssertEqual(bad.config.label, "%u@%h")
        XCTAssertEqual(Config.parse("label = %u@%H\n", file: "f").errors.map(\.message),
                       ["label: '%' must be followed by u (the user), h (the host), f (the fleet) or % (a percent sign), in '%u@%H'"])
        XCTAssertEqual(Config.parse("label = %u%\n", file: "f").errors.count, 1)
        XCTAssertEqual(Config.parse("label = \(String(repeating: "x", count: 129))\n", file: "f").errors.map(\.message),
                       ["label must be a name template of 1 to 128 bytes, such as %u@%h"])
        XCTAssertEqual(Config.parse("label =\n", file: "f").errors.count, 1)
    }

    /// Issue 15: in fleet mode one device serves every host, so the label names the fleet: ldap_base's
    /// domain unless fleet_name says otherwise; an explicit label still wins.
    func testFleetLabelNamesTheFleetNotTheHost() {
        let fleet = "store = ldap\nldap_uri = ldapi:///\nldap_base = ou=engage2fa, DC=example,dc=org\n"
        let parsed = Config.parse(fleet, file: "f")
        XCTAssertEqual(parsed.diagnostics, [])
        XCTAssertEqual(parsed.config.label, "%u@%f")
        XCTAssertEqual(parsed.config.accountLabel(user: "alice", host: "web1"), "alice@example.org")
        XCTAssertEqual(parsed.config.accountLabel(user: "alice", host: "web2"), "alice@example.org")
        XCTAssertEqual(Config.parse(fleet + "fleet_name = Example Corp\n", file: "f").config.accountLabel(user: "a", host: "web1"), "a@Example Corp")
        XCTAssertEqual(Config.parse(fleet + "label = %u (%f, %h)\n", file: "f").config.accountLabel(user: "a", host: "web1"), "a (example.org, web1)")
        // No dc= parts: the host's name, as in local mode; local mode's %f likewise.
        XCTAssertEqual(Config.parse("store = ldap\nldap_uri = ldapi:///\nldap_base = o=Example\n", file: "f").config.accountLabel(user: "a", host: "h"), "a@h")
        XCTAssertEqual(Config.parse("label = %u@%f\n", file: "f").config.accountLabel(user: "a", host: "h"), "a@h")
        for bad in ["fleet_name = a:b", "fleet_name = \(String(repeating: "x", count: 65))", "fleet_name ="] {
            XCTAssertEqual(Config.parse(bad + "\n", file: "f").errors.count, 1, bad)
        }
    }

    /// Issue 16: settings that common apps mishandle are warnings naming the apps, at their line.
    func testAppCaveats() {
        XCTAssertEqual(Config().appCaveats, [])
        XCTAssertEqual(Config().appCaveatsSentence, "")
        let fine = Config.parse("digits = 8\nperiod = 30\nalgorithm = SHA1\nissuer = Build Farm\n", file: "f")
        XCTAssertEqual(fine.diagnostics, [])
        let parsed = Config.parse("issuer = R&D#1?\ndigits = 7\nperiod = 45\nalgorithm = SHA512\n", file: "f")
        XCTAssertTrue(parsed.isValid)
        let warnings = parsed.diagnostics.sorted { $0.line < $1.line }
        XCTAssertEqual(warnings.map(\.severity), [.warning, .warning, .warning, .warning])
        XCTAssertEqual(warnings.map(\.description), [
            "f:1: warning: issuer = R&D#1?: '&', '#', '?' in the issuer break 2FAS's import of the QR code ('&', '?', '#' and '%' do)",
            "f:2: warning: digits = 7: outside the Key Uri Format (6 or 8 digits); Google Authenticator and Microsoft Authenticator show 6-digit codes instead, which are refused",
            "f:3: warning: period = 45: Google Authenticator ignores period and shows a new code every 30 seconds, which is refused; 2FAS accepts only 10, 30, 60 or 90",
            "f:4: warning: algorithm = SHA512: Google Authenticator on Android and Microsoft Authenticator ignore algorithm and compute SHA1 codes, which are refused",
        ])
        XCTAssertEqual(Config.parse("period = 60\n", file: "f").diagnostics.map(\.message),
                       ["period = 60: Google Authenticator ignores period and shows a new code every 30 seconds, which is refused"])
        XCTAssertEqual(Config.parse("issuer = 100%\n", file: "f").diagnostics.count, 1)
        // A refused code at enrollment names the settings (not the issuer: it does not change codes).
        XCTAssertEqual(parsed.config.appCaveatsSentence,
                       " This host's codes use digits = 7, period = 45, algorithm = SHA512, which some apps ignore (Google Authenticator, Microsoft Authenticator): if yours shows codes of another kind, type the secret in by hand with these settings, or use an app that supports them.")
    }

    func testEmptyFileIsNotConfigured() {
        let parsed = Config.parse("# nothing yet\n\n", file: "x.conf")
        XCTAssertTrue(parsed.isValid)
        XCTAssertEqual(parsed.config, Config())
        XCTAssertNil(parsed.config.startDate)
    }

    func testEveryErrorNamesFileAndLine() {
        let text = """
            start_date = 2026-02-30
            colour = blue
            window = 11
            window = 1
            max_failures = 0
            lockout_seconds = soon
            secret_path = /etc/shared-secret
            state_dir = relative/dir
            digits = 9
            period = 10
            algorithm = md5
            issuer = a:b
            just some words
            [groups]
            [deadlines]
            a/b = 2027-01-01
            carol = next week
            carol = 2027-01-01
            dave = 2027-01-01T10:00
            """
        let parsed = Config.parse(text, file: "/etc/engage2fa.conf")
        let lines = parsed.errors.map(\.line)
        XCTAssertEqual(lines, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19])
        XCTAssertEqual("\(parsed.errors[0])", "/etc/engage2fa.conf:1: error: start_date: '2026-02-30' names a day or time that does not exist")
        XCTAssertEqual(parsed.errors[1].message, "unknown key 'colour' (known: start_date, issuer, label, fleet_name, window, max_failures, lockout_seconds, secret_path, state_dir, algorithm, digits, period, unprivileged, exempt_groups, only_groups, exempt_services, store, ldap_uri, ldap_base, ldap_bind_dn, ldap_bind_password_file, ldap_ca, ldap_cert, ldap_key, ldap_timeout, fleet_socket_dir)")
        XCTAssertEqual(parsed.errors[3].message, "duplicate key 'window' (first set on line 3)")
        XCTAssertTrue(parsed.errors[6].message.contains("every user would share one file"))
        XCTAssertEqual(parsed.errors[14].message, "'a/b' is not a valid user name")
        XCTAssertTrue(parsed.errors[16].message.contains("no time zone"))
        // Only carol's second (valid) line was taken; settings that failed keep their defaults.
        XCTAssertEqual(parsed.config.deadlines.keys.sorted(), ["carol"])
        XCTAssertEqual(parsed.config.window, 1)
        XCTAssertNil(parsed.config.startDate)
    }

    /// A parse notes each known key's line by its place in the key table, in room of a fixed size: every key fits
    /// (a key beyond it would trap in the module), and `keyLines` names each key the file sets, unknown ones too.
    func testEveryKeyHasRoomForItsLine() {
        XCTAssertLessThanOrEqual(Config.keyCount, ConfigLines.keyCapacity)
        var text = ""
        for index in 0..<Config.keyCount { text += Config.keyName(at: index).uppercased() + " = x\n" }
        text += "Colour = red\n"
        let keyLines = Config.parse(text, file: "f").keyLines
        XCTAssertEqual(keyLines.count, Config.keyCount + 1)
        for index in 0..<Config.keyCount { XCTAssertEqual(keyLines[Config.keyName(at: index)], index + 1) }
        XCTAssertEqual(keyLines["colour"], Config.keyCount + 1)
    }

    func testALineCutOffOrOversizedAtTheEndOfTheFileIsAnError() {
        func errors(_ text: String) -> [String] { Config.parse(text, file: "c").errors.map { "\($0.file):\($0.line): \($0.message)" } }
        XCTAssertEqual(errors("window = 1\nmax_failures"), ["c:2: expected 'key = value', found 'max_failures'"])
        XCTAssertEqual(errors("[deadlines"), ["c:1: malformed section header (expected [deadlines])"])
        XCTAssertEqual(errors("["), ["c:1: malformed section header (expected [deadlines])"])
        XCTAssertEqual(errors("window ="), ["c:1: window must be a whole number of steps from 0 to 10, not ''"])
        XCTAssertEqual(errors("window = 99999999999999999999999"), ["c:1: window must be a whole number of steps from 0 to 10, not '99999999999999999999999'"])
        XCTAssertEqual(errors("="), ["c:1: missing key before '='"])
    }

    /// Issue 13 C: what a parse error quotes from the file is escaped (it reaches root's terminal and the log).
    func testErrorsQuoteTheFileEscaped() {
        let text = "colour\u{9B}2J = red\nwindow = 1\u{200B}\n[dead\u{202E}lines]\nstate_dir = rel\u{85}\nstart_date = 2026\u{2028}\n"
            + "just\u{FEFF} words\n" + "issuer = " + String(repeating: "x", count: 10) + "\n" + "digits = " + String(repeating: "\u{AD}", count: 300) + "\n"
        let messages = Config.parse(text, file: "f").errors.map(\.message)
        XCTAssertEqual(messages[0], "unknown key 'colour\\x9b2j' (known: start_date, issuer, label, fleet_name, window, max_failures, lockout_seconds, secret_path, state_dir, algorithm, digits, period, unprivileged, exempt_groups, only_groups, exempt_services, store, ldap_uri, ldap_base, ldap_bind_dn, ldap_bind_password_file, ldap_ca, ldap_cert, ldap_key, ldap_timeout, fleet_socket_dir)")
        XCTAssertEqual(messages[1], "window must be a whole number of steps from 0 to 10, not '1\\u{200b}'")
        XCTAssertEqual(messages[2], "unknown section [dead\\u{202e}lines] (the only section is [deadlines])")
        XCTAssertEqual(messages[3], "state_dir must be an absolute path without '..', not 'rel\\x85'")
        XCTAssertTrue(messages[4].hasPrefix("start_date: '2026\\u{2028}' is not a date"), messages[4])
        XCTAssertEqual(messages[5], "expected 'key = value', found 'just\\u{feff} words'")
        XCTAssertEqual(messages[6], "digits must be 6, 7 or 8, not '\(String(repeating: "\\xad", count: 16))…'")  // scalars below U+0100 as \xNN
        for message in messages { XCTAssertFalse(message.unicodeScalars.contains { isUnsafeForDisplay($0.value) }, message) }
    }

    func testUnknownDeadlineUserIsOnlyAWarning() {
        let parsed = Config.parse("[deadlines]\nalice = 2027-01-01\nghost = 2027-01-01\n", file: "f")
        XCTAssertTrue(parsed.isValid)
        let warnings = parsed.userWarnings(file: "f") { $0 == "alice" }
        XCTAssertEqual(warnings.map(\.description), ["f:3: warning: [deadlines]: no user 'ghost' on this host"])
    }

    func testDates() throws {
        let midnightUTC = utc("2026-12-15T00:00:00Z")
        XCTAssertEqual(try PolicyDate(parsing: "2026-12-15T00:00:00Z").unixTime, midnightUTC)
        XCTAssertEqual(try PolicyDate(parsing: "2026-12-15T01:00+01:00").unixTime, midnightUTC)
        XCTAssertEqual(try PolicyDate(parsing: "2026-12-14T19:00:00-0500").unixTime, midnightUTC)
        XCTAssertEqual(try PolicyDate(parsing: "2000-02-29T12:00:00Z").unixTime, utc("2000-02-29T12:00:00Z"))
        XCTAssertEqual(try PolicyDate(parsing: "2100-03-01T00:00:00Z").unixTime, utc("2100-03-01T00:00:00Z"))
        XCTAssertEqual(try PolicyDate(parsing: "2028-02-29").isDateOnly, true)
        XCTAssertThrowsError(try PolicyDate(parsing: "2027-02-29"))
        XCTAssertThrowsError(try PolicyDate(parsing: "2026-13-01"))
        XCTAssertThrowsError(try PolicyDate(parsing: "2026-12-15T24:00Z"))
        XCTAssertThrowsError(try PolicyDate(parsing: "15-12-2026"))
        XCTAssertThrowsError(try PolicyDate(parsing: "2026-12-15 junk"))
        XCTAssertThrowsError(try PolicyDate(parsing: "2026-12-15T10:00:00+25:00"))
        try withTimeZone("America/New_York") {
            XCTAssertEqual(try PolicyDate(parsing: "2026-12-15").unixTime, utc("2026-12-15T05:00:00Z"))
            // The spring-forward day still starts at 00:00 (the jump is at 02:00).
            XCTAssertEqual(try PolicyDate(parsing: "2027-03-14").unixTime, utc("2027-03-14T05:00:00Z"))
            XCTAssertEqual(try PolicyDate(parsing: "2027-03-15").unixTime, utc("2027-03-15T04:00:00Z"))
        }
        try withTimeZone("UTC") { XCTAssertEqual(try PolicyDate(parsing: "2026-12-15").unixTime, midnightUTC) }
    }

    /// A policy file may hold a `secret_path` of 256 KiB, and the directory may give a home of a megabyte:
    /// the path's buffer is the expansion's size, not the count of '%'s times the longest replacement
    /// (which here asked for 256 GiB, and a failed allocation takes sshd's child down); an expansion that is
    /// itself that large is cut at `expansionLimit`, a path no open(2) takes.
    func testSecretPathExpansionReservesOnlyWhatItWrites() {
        var config = Config()
        config.secretPath = "/srv/" + String(repeating: "%%", count: 131_072) + "/%u"
        let home = "/home/" + String(repeating: "h", count: 1 << 20)
        let path = config.secretFilePath(user: "bob", home: home)
        XCTAssertEqual(path, "/srv/" + String(repeating: "%", count: 131_072) + "/bob")
        XCTAssertEqual(Config.expand("", user: "bob", home: home), "")
        XCTAssertEqual(Config.expand("~/", user: "bob", home: "/home/bob"), "/home/bob/")
        XCTAssertEqual(Config.expand("/x/%q%", user: "bob", home: "/home/bob"), "/x/%q%")
        // 131,072 homes of a megabyte: 128 GiB asked for, 1 MiB made (the home's first megabyte).
        config.secretPath = String(repeating: "%h", count: 131_072)
        let cut = config.secretFilePath(user: "bob", home: home)
        XCTAssertEqual(cut.utf8.count, 1 << 20)  // Config.expansionLimit
        XCTAssertTrue(home.hasPrefix(cut))
    }

    func testSecretPathExpansion() {
        var config = Config()
        XCTAssertEqual(config.secretFilePath(user: "alice", home: "/home/alice"), "/home/alice/.engage2fa")
        XCTAssertTrue(config.secretFileIsInHome(user: "alice", home: "/home/alice"))
        config.secretPath = "%h/.config/engage2fa-%u"
        XCTAssertEqual(config.secretFilePath(user: "bob", home: "/srv/bob"), "/srv/bob/.config/engage2fa-bob")
        XCTAssertTrue(config.secretFileIsInHome(user: "bob", home: "/srv/bob"))
        // A home that is a prefix of the path's directory name is not the same directory.
        config.secretPath = "/srv/bobby/%u"
        XCTAssertFalse(config.secretFileIsInHome(user: "bob", home: "/srv/bob"))
    }

    func testUserNames() {
        // Whatever NSS resolves is a user (sssd/AD names with '@', long names, digits only); only what is
        // unsafe in a path or a log line is refused.
        for good in ["alice", "a", "bob.smith", "svc_build", "host$", "Ann-Marie", "user1", "aud5@corp", "12345", ".hidden",
                     String(repeating: "a", count: 64), "é", "al ice"] {
            XCTAssertTrue(isSafeUserName(good), good)
        }
        for bad in ["", ".", "..", "a/b", "../x", "tab\tname", "new\nline", "nul\u{0}", "del\u{7F}", String(repeating: "a", count: 257)] {
            XCTAssertFalse(isSafeUserName(bad), bad)
        }
    }

    /// The policy file rule is "nobody but its owner may write it" (644 is fine): a refusal says that rule,
    /// not the device file's "600".
    func testPolicyFileTooPermissiveNamesTheRuleBroken() throws {
        let path = try temporaryDirectory(self) + "/engage2fa.conf"
        try writeFileAtomically(path, contents: bytes("start_date = 2026-01-01\n"), permissions: .ownerReadWriteAllRead)
        XCTAssertNotNil(try Config.readPolicyFile(path: path))
        XCTAssertEqual(chmod(path, 0o664), 0)
        XCTAssertThrowsError(try Config.readPolicyFile(path: path)) { error in
            let text = (error as? PolicyFileError)?.description ?? "\(error)"
            XCTAssertEqual(text, "\(path): mode 664 lets group or others write to it (only its owner may: chmod go-w)")
        }
    }
}
