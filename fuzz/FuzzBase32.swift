import Engage2FALogin
import Engage2FAManagement

/// Any text to decode: never a crash; what decodes re-encodes to the same bytes; any bytes encode and
/// decode back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let decoded = try? Base32.decode(String(decoding: bytes, as: UTF8.self)) {
        precondition((try? Base32.decode(Base32.encode(decoded))) == decoded, "decode/encode mismatch")
    }
    precondition((try? Base32.decode(Base32.grouped(Base32.encode(bytes)))) == bytes, "encode/decode mismatch")
    return 0
}
