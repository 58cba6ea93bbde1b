import CEngageSys

// Percent-encoding (RFC 3986), the escape of the line formats' free-text values (device names, paths)
// and of otpauth URIs.

/// RFC 3986 percent-encoding of everything but unreserved characters (and `keeping`).
package func percentEncode(_ text: String, keeping kept: UInt8? = nil) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count * 3)
    for byte in text.utf8 {
        switch byte {
        case _ where byte == kept: out.append(byte)
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.append(byte)
        default:
            // Three appends into the reserved buffer: an array literal per escaped byte would allocate.
            out.append(UInt8(ascii: "%"))
            out.append(upperHexDigit(byte >> 4))
            out.append(upperHexDigit(byte & 15))
        }
    }
    return String(decoding: out, as: UTF8.self)
}

@inline(__always)
private func upperHexDigit(_ value: UInt8) -> UInt8 {
    value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
}

/// Decodes `%XX` escapes (and `+` as a space, as query strings use it); nil on a malformed escape or invalid UTF-8.
package func percentDecode<Bytes: Collection>(_ text: Bytes) -> String? where Bytes.Element == UInt8 {
    if let decoded = text.withContiguousStorageIfAvailable({ percentDecode(bytes: $0) }) { return decoded }
    return Array(text).withUnsafeBufferPointer { percentDecode(bytes: $0) }
}

/// The same for bytes in place: decoded on the stack, so the String is the only allocation.
func percentDecode(bytes text: UnsafeBufferPointer<UInt8>) -> String? {
    // Nothing escaped (a name or a path, as they usually are): the bytes are their own decoding, checked
    // without the copy (two memchr(3) calls within the buffer).
    if let base = text.baseAddress, memchr(base, Int32(UInt8(ascii: "%")), text.count) == nil, memchr(base, Int32(UInt8(ascii: "+")), text.count) == nil {
        return String(validating: text, as: UTF8.self)
    }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: text.count) { out -> String? in
        var index = 0, count = 0
        while index < text.count {
            var byte = text[index]
            index += 1
            if byte == UInt8(ascii: "%") {
                guard index + 1 < text.count, let high = hexValue(text[index]), let low = hexValue(text[index + 1]) else { return nil }
                byte = high << 4 | low
                index += 2
            } else if byte == UInt8(ascii: "+") {
                byte = UInt8(ascii: " ")
            }
            out[count] = byte
            count += 1
        }
        return String(validating: UnsafeBufferPointer(rebasing: out[..<count]), as: UTF8.self)
    }
}

package func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
