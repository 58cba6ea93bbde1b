import Engage2FACommandSupport
import Foundation
import XCTest

@testable import Engage2FAAdmin
@testable import Engage2FALogin
@testable import Engage2FAManagement
@testable import Engage2FAEnroll

/// `--json` output: written by JSONEncoder, every scalar unsafe on a terminal escaped as \uXXXX, and
/// the documents parse back to exactly the values put in.
final class JSONTests: XCTestCase {
    /// Controls, DEL, C1, bidi and zero-width marks, separators, quotes and backslashes.
    let hostile = [
        "Phone\u{1b}]0;owned\u{07}\u{1b}[2K\r\nroot  1: Phone  10  -  enforced\u{1b}[8m",
        "spoof\u{202e}resu", "zero\u{200b}width", "soft\u{ad}hyphen", "bom\u{feff}", "next\u{85}line", "del\u{7f}",
        "sep\u{2028}\u{2029}", "iso\u{2066}late\u{2069}", "quote\"back\\slash", "\\\u{202e}", "tab\tnul\u{0}", "/etc/passwd", "emoji 😀",
    ]

    func assertSafe(_ json: String, file: StaticString = #filePath, line: UInt = #line) {
        let raw = json.unicodeScalars.first { isUnsafeForDisplay($0.value) }
        XCTAssertNil(raw, "raw U+\(String(raw?.value ?? 0, radix: 16)) in \(json)", file: file, line: line)
    }

    func testHostileStringsAreEscapedAndParseBack() throws {
        let json = try jsonText(hostile)
        assertSafe(json)
        XCTAssertFalse(json.contains("\n"))
        XCTAssertTrue(json.contains("spoof\\u202eresu") && json.contains("zero\\u200bwidth") && json.contains("del\\u007f"), json)
        XCTAssertTrue(json.contains("\"/etc/passwd\""), json)  // slashes are not escaped
        XCTAssertTrue(json.contains("emoji 😀"), json)  // what is safe stays as it is
        let back = try JSONDecoder().decode([String].self, from: Data(json.utf8))
        XCTAssertEqual(back, hostile)
    }

    func testEscapingAnAlreadyEscapedDocument() throws {
        XCTAssertEqual(escapingUnsafeScalars(inJSON: "[\"a\"]"), "[\"a\"]")
        XCTAssertEqual(escapingUnsafeScalars(inJSON: "[\"\\\\\u{202e}\"]"), "[\"\\\\\\u202e\"]")
        let back = try JSONDecoder().decode([String].self, from: Data(escapingUnsafeScalars(inJSON: "[\"\\\\\u{202e}\"]").utf8))
        XCTAssertEqual(back, ["\\\u{202e}"])
    }

    func testAdminStatusReport() throws {
        let rows = [
            UserStatus(user: "evil\u{1b}[31m", deviceNames: hostile, recoveryCodesLeft: 7, deadline: nil, state: .enforced),
            UserStatus(user: "bob", deviceNames: [], recoveryCodesLeft: 0, deadline: try PolicyDate(parsing: "2031-03-04T09:00:00+01:00"),
                       state: .unreadable(reason: "/home/bob/.engage2fa:3: unknown record 'dev\u{1b}]0;x\u{07}'")),
        ]
        let report = Admin.Status.Report(users: rows.map(Admin.Status.Report.Row.init), summary: .init(ready: 1, pending: 0, overdue: 1))
        let json = try jsonText(report)
        assertSafe(json)
        XCTAssertTrue(json.hasPrefix("{\"summary\":{\"overdue\":1,\"pending\":0,\"ready\":1},\"users\":[{\"deadline\":null,"), json)
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let users = try XCTUnwrap(parsed["users"] as? [[String: Any]])
        XCTAssertEqual(Set(users[0].keys), ["user", "devices", "recovery_codes_left", "deadline", "state", "readiness"])
        XCTAssertEqual(users[0]["user"] as? String, "evil\u{1b}[31m")
        XCTAssertEqual(users[0]["devices"] as? [String], hostile)
        XCTAssertEqual(users[0]["recovery_codes_left"] as? Int, 7)
        XCTAssertTrue(users[0]["deadline"] is NSNull)
        XCTAssertEqual(users[0]["state"] as? String, "enforced")
        XCTAssertEqual(users[0]["readiness"] as? String, "ready")
        XCTAssertEqual(users[1]["deadline"] as? String, "2031-03-04T09:00:00+01:00")
        // The state is escaped as the table shows it, so `jq -r` prints no raw control either.
        XCTAssertEqual(users[1]["state"] as? String, "device file unreadable: /home/bob/.engage2fa:3: unknown record 'dev\\x1b]0;x\\x07'")
        XCTAssertEqual(parsed["summary"] as? [String: Int], ["ready": 1, "pending": 0, "overdue": 1])
    }

    func testEnrollListing() throws {
        let device = Device(id: "00", name: "Pho\u{202e}ne", secret: [1, 2, 3], parameters: OTPParameters(algorithm: .sha256, digits: 8, period: 60), addedAt: 1_800_000_000)
        let listing = Enroll.List.Listing(user: "alice", devices: [.init(ListedDevice(name: device.name, addedAt: device.addedAt, parameters: device.parameters))], recoveryCodesLeft: 9)
        let json = try jsonText(listing)
        assertSafe(json)
        XCTAssertTrue(json.contains("\"name\":\"Pho\\u202ene\""), json)
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        XCTAssertEqual(Set(parsed.keys), ["user", "devices", "recovery_codes_left"])
        XCTAssertEqual(parsed["recovery_codes_left"] as? Int, 9)
        let first = try XCTUnwrap((parsed["devices"] as? [[String: Any]])?.first)
        XCTAssertEqual(Set(first.keys), ["name", "added", "added_unix", "algorithm", "digits", "period"])
        XCTAssertEqual(first["name"] as? String, "Pho\u{202e}ne")
        XCTAssertEqual(first["added_unix"] as? Int, 1_800_000_000)
        XCTAssertEqual(first["added"] as? String, localDateText(1_800_000_000))
        XCTAssertEqual(first["algorithm"] as? String, "SHA256")
        XCTAssertEqual(first["digits"] as? Int, 8)
        XCTAssertEqual(first["period"] as? Int, 60)
    }

    /// The same input gives the same bytes (sorted keys).
    func testOutputIsStable() throws {
        let listing = Enroll.List.Listing(user: "alice", devices: [], recoveryCodesLeft: 0)
        XCTAssertEqual(try jsonText(listing), "{\"devices\":[],\"recovery_codes_left\":0,\"user\":\"alice\"}")
    }
}
