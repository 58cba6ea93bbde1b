import Engage2FACore

/// Any bytes as a policy file: never a crash; every diagnostic names a line that exists and quotes the
/// file escaped; and text that parses cleanly still parses cleanly with a deadline added by the admin
/// tool's editor.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parsed = Config.parse(text, file: "fuzz.conf")
    let lines = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).count
    for diagnostic in parsed.diagnostics { precondition((1...max(lines, 1)).contains(diagnostic.line), "diagnostic on line \(diagnostic.line) of \(lines)") }
    // Diagnostics quote the file and reach root's terminal and the system log: escaped (issue 13 C).
    for diagnostic in parsed.diagnostics {
        precondition(!diagnostic.message.unicodeScalars.contains { isUnsafeForDisplay($0.value) }, "unsafe scalar in \(diagnostic.message.debugDescription)")
    }
    if parsed.isValid {
        let edited = ConfigEditor.settingDeadline(in: text, user: "fuzzuser", date: "2031-01-01")
        let reparsed = Config.parse(edited, file: "fuzz.conf")
        precondition(reparsed.config.deadlines["fuzzuser"]?.text == "2031-01-01", "the edit did not set the deadline")
    }
    return 0
}
