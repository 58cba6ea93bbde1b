import Engage2FALogin
import Engage2FAManagement

/// Any text as an otpauth URI: never a crash, and a parsed URI's text parses back to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let uri = try? OTPAuthURI(parsing: text) else { return 0 }
    precondition((try? OTPAuthURI(parsing: uri.text)) == uri, "URI did not survive a round trip")
    return 0
}
