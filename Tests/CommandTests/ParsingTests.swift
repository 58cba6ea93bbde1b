import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import XCTest

@testable import Engage2FAAdmin
@testable import Engage2FAEnroll

/// The parsing rules of both commands, in process: what is a usage error (exit 64, the parser's
/// usage line), what is left to the run (exit 1), and what ends with the version or the help.
final class ParsingTests: XCTestCase {
    /// The error `parse` throws, or a failure if it parses.
    func parseError<Root: ParsableCommand>(_ root: Root.Type, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) -> Error? {
        do {
            let command = try root.parseCommand(arguments)
            XCTFail("\(arguments) parsed as \(type(of: command))", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func assertUsageError<Root: ParsableCommand>(
        _ root: Root.Type, _ arguments: [String], mentioning words: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        guard let error = parseError(root, arguments, file: file, line: line) else { return }
        XCTAssertEqual(root.exitCode(for: error), .validationFailure, "\(arguments)", file: file, line: line)
        XCTAssertEqual(root.exitCode(for: error).rawValue, 64, file: file, line: line)
        let message = root.fullMessage(for: error)
        XCTAssertTrue(message.contains("Usage: "), message, file: file, line: line)
        for word in words { XCTAssertTrue(message.contains(word), "\(word) not in: \(message)", file: file, line: line) }
        XCTAssertFalse(message.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "raw control in: \(message)", file: file, line: line)
    }

    // MARK: version

    func testVersionWithShortAndLongFlag() {
        for arguments in [["-V"], ["--version"], ["list", "-V"], ["list", "--version"]] {
            guard let error = parseError(Enroll.self, arguments) else { continue }
            XCTAssertEqual(Enroll.exitCode(for: error), .success, "\(arguments)")
            XCTAssertEqual(Enroll.fullMessage(for: error), "0.1.0", "\(arguments)")
        }
        for arguments in [["-V"], ["--version"], ["status", "-V"]] {
            guard let error = parseError(Admin.self, arguments) else { continue }
            XCTAssertEqual(Admin.exitCode(for: error), .success, "\(arguments)")
            XCTAssertEqual(Admin.fullMessage(for: error), "0.1.0", "\(arguments)")
        }
    }

    // MARK: subcommands

    func testAnUnknownSubcommandIsNamedWithTheRealOnes() {
        assertUsageError(Enroll.self, ["lsit"], mentioning: ["'lsit' is not a subcommand of engage2fa-enroll", "add, list, remove, recovery-codes, status",
                                                             "Usage: engage2fa-enroll [-V] <subcommand>"])
        assertUsageError(Enroll.self, ["lsit", "--json"], mentioning: ["'lsit'"])
        assertUsageError(Admin.self, ["stauts"], mentioning: ["'stauts' is not a subcommand of engage2fa-admin", "check, status, extend, reset, unlock"])
        // Not add's usage: the word was never add's.
        let error = parseError(Enroll.self, ["lsit"])
        XCTAssertFalse(error.map { Enroll.fullMessage(for: $0) }?.contains("engage2fa-enroll add") ?? true)
    }

    func testAnUnknownSubcommandIsEscapedInTheMessage() {
        assertUsageError(Enroll.self, ["l\u{1b}]0;owned\u{07}"], mentioning: ["'l\\x1b]0;owned\\x07'"])
    }

    func testAddIsStillTheDefault() throws {
        XCTAssertTrue(try Enroll.parseCommand([]) is Enroll.Add)
        let add = try XCTUnwrap(try Enroll.parseCommand(["--name", "Pixel 8", "--qr", "none"]) as? Enroll.Add)
        XCTAssertEqual(add.name, "Pixel 8")
        XCTAssertEqual(add.qr, Enroll.Add.QRMode.none)
        XCTAssertTrue(try Enroll.parseCommand(["add", "--name", "X"]) is Enroll.Add)
        XCTAssertTrue(try Enroll.parseCommand(["recovery-codes"]) is Enroll.RecoveryCodes)
        XCTAssertTrue(try Enroll.parseCommand(["status"]) is Enroll.Status)
        XCTAssertTrue(try Admin.parseCommand(["status", "--json"]) is Admin.Status)
    }

    func testHelpSubcommandIsNotAnUnknownOne() throws {
        var command = try Enroll.parseCommand(["help", "list"])
        XCTAssertThrowsError(try command.run()) { error in
            XCTAssertEqual(Enroll.exitCode(for: error), .success)
            XCTAssertTrue(Enroll.fullMessage(for: error).contains("--json"))
        }
    }

    // MARK: dates

    func testABadDateIsAUsageErrorWithTheCoresReason() {
        assertUsageError(Admin.self, ["extend", "alice", "next week"], mentioning: ["'next week' is not a date (expected YYYY-MM-DD", "engage2fa-admin extend"])
        assertUsageError(Admin.self, ["extend", "alice", "2026-02-30"], mentioning: ["names a day or time that does not exist"])
        assertUsageError(Admin.self, ["extend", "alice", "2030-01-01T09:00"], mentioning: ["has a time but no time zone"])
        assertUsageError(Admin.self, ["reset", "alice", "--deadline", "soon"], mentioning: ["'soon' is not a date", "engage2fa-admin reset"])
    }

    func testADeadlineInThePastIsAUsageError() {
        assertUsageError(Admin.self, ["extend", "alice", "2021-01-01"], mentioning: ["2021-01-01 is in the past: a deadline must be later than now"])
        assertUsageError(Admin.self, ["reset", "alice", "--deadline", "2021-01-01T00:00:00Z", "--yes"], mentioning: ["is in the past"])
    }

    func testAFutureDeadlineParses() throws {
        let extend = try XCTUnwrap(try Admin.parseCommand(["extend", "alice", "2099-06-30", "--config", "/tmp/x.conf"]) as? Admin.Extend)
        XCTAssertEqual(extend.user.name, "alice")
        XCTAssertEqual(try extend.date.date().text, "2099-06-30")
        XCTAssertEqual(extend.policy.config, "/tmp/x.conf")
        let reset = try XCTUnwrap(try Admin.parseCommand(["reset", "alice", "--deadline", "2099-03-04T09:00:00+01:00"]) as? Admin.Reset)
        XCTAssertEqual(try reset.deadline?.date(), try PolicyDate(parsing: "2099-03-04T09:00:00+01:00"))
        let plain = try XCTUnwrap(try Admin.parseCommand(["reset", "alice", "--yes"]) as? Admin.Reset)
        XCTAssertNil(plain.deadline)
        XCTAssertTrue(plain.yes)
    }

    // MARK: user names

    func testAnUnsafeUserNameIsAUsageError() {
        for name in ["a/b", "..", ".", "", "evil\u{1b}[31m", "new\nline", String(repeating: "x", count: 257)] {
            assertUsageError(Admin.self, ["unlock", name], mentioning: ["is not a valid user name"])
            assertUsageError(Admin.self, ["extend", name, "2099-01-01"], mentioning: ["is not a valid user name"])
            assertUsageError(Admin.self, ["reset", name, "--yes"], mentioning: ["is not a valid user name"])
            assertUsageError(Admin.self, ["status", "root", name], mentioning: ["is not a valid user name"])
            assertUsageError(Enroll.self, ["list", "--user", name], mentioning: ["is not a valid user name"])
            assertUsageError(Enroll.self, ["add", "--user", name], mentioning: ["is not a valid user name"])
        }
        assertUsageError(Admin.self, ["unlock", "evil\u{1b}[31m"], mentioning: ["'evil\\x1b[31m'"])
    }

    /// Whether the host knows a well-formed name is found out when the command runs: exit 1, not 64.
    func testAWellFormedUnknownNameParsesAndFailsAtRunTime() throws {
        let unlock = try XCTUnwrap(try Admin.parseCommand(["unlock", "no-such-user-e2fa"]) as? Admin.Unlock)
        XCTAssertEqual(unlock.user.name, "no-such-user-e2fa")
        XCTAssertThrowsError(try existingAccount("no-such-user-e2fa")) { error in
            XCTAssertEqual(Admin.exitCode(for: error), .failure)
            XCTAssertTrue(Admin.fullMessage(for: error).contains("there is no user 'no-such-user-e2fa'"))
        }
        // NSS names may be anything else: spaces, '@', capitals, non-ASCII.
        for name in ["Jane Doe", "jane@EXAMPLE.ORG", "jürgen", "-dash"] {
            let status = try XCTUnwrap(try Admin.parseCommand(["status", "--", name]) as? Admin.Status)
            XCTAssertEqual(status.users.map(\.name), [name])
        }
    }

    func testRunTimeFailuresExitOne() {
        XCTAssertEqual(Admin.exitCode(for: CommandFailure("x")), .failure)
        XCTAssertEqual(Enroll.exitCode(for: CommandFailure("x")), .failure)
    }
}
