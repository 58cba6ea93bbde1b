#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Engage2FALogin
import Engage2FAManagement

/// `value` as one line of JSON, for `--json`: written by Foundation's `JSONEncoder` with sorted keys
/// (the same input gives the same bytes) and `/` unescaped, then made safe to show on a terminal.
///
/// The encoder escapes only what RFC 8259 requires (`"`, `\` and U+0000…U+001F); DEL, the C1
/// controls, bidi and zero-width marks and the line separators would stay raw, and `cat` or `jq .`
/// of the output would then move the cursor or reorder what an administrator reads. So every scalar
/// `isUnsafeForDisplay` names is written as `\uXXXX` afterwards. Outside strings JSON text is only
/// ASCII punctuation, digits and literals, so such a scalar can only be inside a string, where the
/// escape means the same scalar: the document parses back to exactly the same values.
public func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    return escapingUnsafeScalars(inJSON: String(decoding: data, as: UTF8.self))
}

/// JSON text with every scalar `isUnsafeForDisplay` names written as `\uXXXX` (a UTF-16 surrogate
/// pair above U+FFFF).
public func escapingUnsafeScalars(inJSON json: String) -> String {
    guard json.unicodeScalars.contains(where: { isUnsafeForDisplay($0.value) }) else { return json }
    var out = String.UnicodeScalarView()
    for scalar in json.unicodeScalars {
        guard isUnsafeForDisplay(scalar.value) else {
            out.append(scalar)
            continue
        }
        for unit in String(scalar).utf16 {
            let hex = String(unit, radix: 16)
            out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
        }
    }
    return String(out)
}
