import Foundation
import XCTest

@testable import Engage2FALogin
@testable import Engage2FAManagement

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

func unhex(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        out.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return out
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

/// Runs a program and returns its exit status and standard output.
@discardableResult
func runProgram(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    if let stdin {
        let input = Pipe()
        process.standardInput = input
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
    } else {
        try process.run()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A fresh directory, mode 700, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> String {
    var template = Array((NSTemporaryDirectory() + "engage2fa-test-XXXXXX").utf8CString)
    let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// Runs `body` with `zone` (a name under /usr/share/zoneinfo) as the system time zone, restoring the
/// previous one afterwards. TZ plays no part: the core reads only /etc/localtime.
func withTimeZone<T>(_ zone: String, _ body: () throws -> T) rethrows -> T {
    let previous = SystemTimeZone.testOverride
    SystemTimeZone.testOverride = zoneRules(zone)
    defer { SystemTimeZone.testOverride = previous }
    return try body()
}

/// The rules of a zone under /usr/share/zoneinfo (or of a TZif file at an absolute path).
func zoneRules(_ zone: String) -> TimeZoneRules {
    let path = zone.hasPrefix("/") ? zone : "/usr/share/zoneinfo/" + zone
    guard let data = FileManager.default.contents(atPath: path) else { fatalError("no zone file \(path)") }
    do { return try TimeZoneRules(tzif: [UInt8](data)) } catch { fatalError("\(path): \(error)") }
}

func writeFile(_ path: String, _ text: String, mode: mode_t = 0o600) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    XCTAssertEqual(chmod(path, mode), 0)
}

/// Unix time of an ISO 8601 date-time, by Foundation: a reference independent of the core's date code.
func utc(_ text: String) -> Int64 {
    let formatter = ISO8601DateFormatter()
    guard let date = formatter.date(from: text) else { fatalError("bad test date \(text)") }
    return Int64(date.timeIntervalSince1970)
}
