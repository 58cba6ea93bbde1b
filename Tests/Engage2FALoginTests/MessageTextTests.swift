import XCTest
@testable import Engage2FALogin

/// MessageText: the module's messages read byte for byte as the String interpolation they replaced.
final class MessageTextTests: XCTestCase {
    func testInterpolatedValuesReadAsStringInterpolationWritesThem() {
        let name = "Pixel 8 — Jürgen's"
        let nested: MessageText = "inner \(Int64(7))"
        for (value, minutes) in [(Int64.min, 1), (-1, 2), (0, 59), (Int64.max, 60)] {
            let built: MessageText = "user \(name): \(value) s, \(minutes) minute\(minutes == 1 ? "" : "s"), uid \(UInt32.max), \(Int32.min) [\(nested)]"
            XCTAssertEqual(built.text, "user \(name): \(value) s, \(minutes) minute\(minutes == 1 ? "" : "s"), uid \(UInt32.max), \(Int32.min) [inner 7]")
        }
        let error = SystemError("open", Errno(rawValue: ENOENT))
        XCTAssertEqual(MessageText("denied: \(error)").text, "denied: \(error.description)")
        XCTAssertEqual(MessageText("only a literal").text, "only a literal")
    }

    /// A log line is escaped into its own buffer (`appendDisplayText`, `appendLogField`) exactly as
    /// `displayText` and `logField` escape it, for any bytes.
    func testEscapingIntoABufferMatchesDisplayText() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<1100, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for limit in [64, 1000] {
                for backslashes in [true, false] {
                    var line: [UInt8] = Array("kept ".utf8)
                    bytes.withUnsafeBufferPointer { appendDisplayText($0, limit: limit, escapingBackslashes: backslashes, to: &line) }
                    XCTAssertEqual(String(decoding: line, as: UTF8.self), "kept " + displayText(bytes: bytes, limit: limit, escapingBackslashes: backslashes))
                }
            }
            var field: [UInt8] = []
            bytes.withUnsafeBufferPointer { appendLogField("rhost", bytes: $0, to: &field) }
            XCTAssertEqual(String(decoding: field, as: UTF8.self), logField("rhost", bytes: bytes))
        }
    }
}
