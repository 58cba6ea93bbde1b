import XCTest
@testable import Engage2FACore

/// displayText: nothing a user controls reaches a terminal or a log line raw.
final class DisplayTextTests: XCTestCase {
    func testPrintableTextIsKept() {
        XCTAssertEqual(displayText("Pixel 8 — Jürgen's"), "Pixel 8 — Jürgen's")
    }

    func testControlsAndFormatMarksAreEscaped() {
        XCTAssertEqual(displayText("evil\npam_engage2fa(sshd:auth): ok"), "evil\\x0apam_engage2fa(sshd:auth): ok")
        XCTAssertEqual(displayText("\u{1B}]0;owned\u{07}"), "\\x1b]0;owned\\x07")
        XCTAssertEqual(displayText("a\u{7F}b\u{85}c"), "a\\x7fb\\x85c")
        XCTAssertEqual(displayText("abc\u{202E}gpj.exe"), "abc\\u{202e}gpj.exe")
        XCTAssertEqual(displayText("zero\u{200B}width\u{FEFF}"), "zero\\u{200b}width\\u{feff}")
        XCTAssertEqual(displayText("line\u{2028}sep"), "line\\u{2028}sep")
    }

    func testABackslashCannotForgeAnEscape() {
        XCTAssertEqual(displayText("\\x1b"), "\\\\x1b")
    }

    func testInvalidUTF8IsEscapedByteByByte() {
        XCTAssertEqual(displayText(bytes: [0x41, 0xE9, 0x42]), "A\\xe9B")          // Latin-1 é
        XCTAssertEqual(displayText(bytes: [0xC0, 0x80]), "\\xc0\\x80")             // overlong NUL
        XCTAssertEqual(displayText(bytes: [0xED, 0xA0, 0x80]), "\\xed\\xa0\\x80")  // a surrogate
        XCTAssertEqual(displayText(bytes: [0xF0, 0x9F, 0x98]), "\\xf0\\x9f\\x98")  // cut short
    }

    func testLengthIsBounded() {
        let long = String(repeating: "a", count: 5000)
        let shown = displayText(long, limit: 64)
        XCTAssertEqual(shown, String(repeating: "a", count: 64) + "…")
        XCTAssertLessThanOrEqual(displayText(String(repeating: "\n", count: 5000), limit: 64).utf8.count, 64 + 4 + 3)
    }

    func testEveryOutputIsFreeOfUnsafeScalars() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let shown = displayText(bytes: bytes)
            XCTAssertFalse(shown.unicodeScalars.contains { isUnsafeForDisplay($0.value) }, "\(bytes)")
        }
    }
}
