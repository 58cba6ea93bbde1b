import ArgumentParser
import XCTest

@testable import Engage2FAAdmin
@testable import Engage2FAEnroll

/// Every subcommand's `--help` renders, exits 0 and names each of its options.
final class HelpTests: XCTestCase {
    /// The help `root` prints for `arguments` (which ask for it), checked to be a clean exit.
    func help<Root: ParsableCommand>(_ root: Root.Type, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            var command = try root.parseCommand(arguments)
            // `help SUBCOMMAND` parses as the parser's help command, which shows the help when run.
            guard String(describing: type(of: command)) == "HelpCommand" else {
                XCTFail("\(arguments) did not ask for help", file: file, line: line)
                return ""
            }
            try command.run()
            XCTFail("help did not exit", file: file, line: line)
            return ""
        } catch {
            XCTAssertEqual(root.exitCode(for: error), .success, "\(arguments)", file: file, line: line)
            return root.fullMessage(for: error)
        }
    }

    /// The text with its line breaks (the help is wrapped to the terminal's width) as single spaces.
    func flat(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }

    func assertHelp<Root: ParsableCommand>(
        _ root: Root.Type, _ subcommand: String, mentions words: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        for arguments in [[subcommand, "--help"], [subcommand, "-h"], ["help", subcommand]] {
            let text = help(root, arguments, file: file, line: line)
            XCTAssertTrue(text.hasPrefix("OVERVIEW: "), text, file: file, line: line)
            XCTAssertTrue(text.contains("USAGE: \(root._commandName) \(subcommand)"), text, file: file, line: line)
            for word in words + ["--help", "--version"] {
                XCTAssertTrue(text.contains(word), "\(word) not in the help of \(subcommand): \(text)", file: file, line: line)
            }
        }
    }

    func testEnrollSubcommands() {
        assertHelp(Enroll.self, "add", mentions: ["--config <path>", "--user <name>", "--name <name>", "--qr <qr>", "terminal", "none", "--qr-png <file>", "--qr-svg <file>"])
        assertHelp(Enroll.self, "list", mentions: ["--config <path>", "--user <name>", "--json"])
        assertHelp(Enroll.self, "remove", mentions: ["--config <path>", "--user <name>", "<name>", "--yes"])
        assertHelp(Enroll.self, "recovery-codes", mentions: ["--config <path>", "--user <name>"])
        assertHelp(Enroll.self, "status", mentions: ["--config <path>", "--user <name>"])
    }

    func testAdminSubcommands() {
        assertHelp(Admin.self, "check", mentions: ["--config <path>"])
        assertHelp(Admin.self, "status", mentions: ["--config <path>", "--json", "<users>"])
        assertHelp(Admin.self, "extend", mentions: ["--config <path>", "<user>", "<date>", "YYYY-MM-DD"])
        assertHelp(Admin.self, "reset", mentions: ["--config <path>", "<user>", "--deadline <date>", "--yes"])
        assertHelp(Admin.self, "unlock", mentions: ["--config <path>", "<user>"])
        // The option for tests stays out of the help.
        XCTAssertFalse(help(Admin.self, ["status", "--help"]).contains("passwd-file"))
    }

    func testTopLevelHelp() {
        let enroll = flat(help(Enroll.self, ["--help"]))
        for word in ["add (default)", "list", "remove", "recovery-codes", "status", "-V", "--version", "64 for a usage error"] {
            XCTAssertTrue(enroll.contains(word), "\(word) not in: \(enroll)")
        }
        let admin = flat(help(Admin.self, ["-h"]))
        for word in ["check", "status", "extend", "reset", "unlock", "-V", "--version", "64 for a usage error"] {
            XCTAssertTrue(admin.contains(word), "\(word) not in: \(admin)")
        }
    }

    /// The policy sets the number of digits (6 to 8): the help names none.
    func testHelpNamesNoFixedNumberOfDigits() {
        for text in [help(Enroll.self, ["--help"]), help(Enroll.self, ["add", "--help"])] {
            XCTAssertFalse(text.contains("6-digit"), text)
            XCTAssertFalse(text.contains("6 digit"), text)
        }
        XCTAssertTrue(flat(help(Enroll.self, ["--help"])).contains("as many digits as the host's policy says"))
    }

    /// `helpMessage(for:)` as well: the rendering the man pages are checked against by hand.
    func testEveryHelpMessageRenders() {
        for sub in Enroll.configuration.subcommands {
            XCTAssertTrue(Enroll.helpMessage(for: sub).contains("OPTIONS:"), "\(sub)")
        }
        for sub in Admin.configuration.subcommands {
            XCTAssertTrue(Admin.helpMessage(for: sub).contains("OPTIONS:"), "\(sub)")
        }
    }
}
