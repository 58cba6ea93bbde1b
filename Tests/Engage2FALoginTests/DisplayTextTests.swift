import XCTest
@testable import Engage2FALogin

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

    func testAMessageOfEscapedPartsIsNotEscapedTwice() {
        // Sinks (the module's log, a command's error) take whole messages whose parts were escaped already.
        let message = "user \(displayText("evil\n")): device name 'C:\\x'"
        XCTAssertEqual(message, "user evil\\x0a: device name 'C:\\x'")
        XCTAssertEqual(displayText(message, limit: 1000, escapingBackslashes: false), message)
        XCTAssertEqual(displayText("a\\b\u{1B}[2J\nc", limit: 1000, escapingBackslashes: false), "a\\b\\x1b[2J\\x0ac")
        XCTAssertEqual(displayText(bytes: [0x5C, 0xE9], escapingBackslashes: false), "\\\\xe9")
    }

    func testNewlinesCanBeKeptAndNothingElse() {
        XCTAssertEqual(displayText("errors:\n  a\r\n  b\u{202E}", keepingNewlines: true), "errors:\n  a\\x0d\n  b\\u{202e}")
        XCTAssertEqual(displayText("one\ntwo"), "one\\x0atwo")
    }

    func testPlainTextIsReturnedAsItIs() {
        XCTAssertEqual(displayText("user alice: code accepted from device 'Phone'", limit: 1000, escapingBackslashes: false),
                       "user alice: code accepted from device 'Phone'")
        XCTAssertEqual(displayText("a\\b"), "a\\\\b")  // the fast path still doubles a backslash by default
        XCTAssertEqual(displayText("abcdef", limit: 3), "abc…")  // and bounds
        XCTAssertEqual(displayText(""), "")
    }

    func testTheBoundHoldsForEveryKindOfInput() {
        for text in [String(repeating: "a", count: 5000), String(repeating: "\u{1B}", count: 5000), String(repeating: "é", count: 5000),
                     String(repeating: "\u{202E}", count: 5000), String(repeating: "\\", count: 5000)] {
            for backslashes in [true, false] {
                let shown = displayText(text, limit: 1000, escapingBackslashes: backslashes)
                XCTAssertLessThanOrEqual(shown.utf8.count, 1000 + 8 + 3)  // one last escape, then "…"
                XCTAssertTrue(shown.hasSuffix("…"))
            }
        }
    }

    func testEveryOutputIsFreeOfUnsafeScalars() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for shown in [displayText(bytes: bytes), displayText(bytes: bytes, escapingBackslashes: false),
                          displayText(String(decoding: bytes, as: UTF8.self), limit: 30, escapingBackslashes: false)] {
                XCTAssertFalse(shown.unicodeScalars.contains { isUnsafeForDisplay($0.value) }, "\(bytes)")
            }
            let lines = displayText(bytes: bytes, keepingNewlines: true)
            XCTAssertFalse(lines.unicodeScalars.contains { isUnsafeForDisplay($0.value) && $0 != "\n" }, "\(bytes)")
        }
    }

    func testLogFieldEscapesSpacesAndControls() {
        XCTAssertEqual(logField("rhost", bytes: Array("203.0.113.7".utf8)), "rhost=203.0.113.7")
        XCTAssertEqual(logField("rhost", bytes: Array("a b\ntty=x".utf8)), "rhost=a\\x20b\\x0atty=x")
        XCTAssertEqual(logField("tty", bytes: [0x1B, 0x5C, 0xFF]), "tty=\\x1b\\\\\\xff")
    }
}
