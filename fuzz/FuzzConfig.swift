import Engage2FALogin

/// Any bytes as a policy file: never a crash; every diagnostic names a line that exists and quotes the
/// file escaped.
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
    return 0
}
