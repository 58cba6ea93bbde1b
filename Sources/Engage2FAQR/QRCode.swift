import CQREncode
import Glibc

/// A QR code's modules, from libqrencode: `isDark(x, y)` for 0 ≤ x, y < size.
public struct QRCode: Sendable {
    public let size: Int
    private let modules: [Bool]

    public enum EncodingError: Error, CustomStringConvertible {
        case failed(errno: Int32)
        public var description: String { "could not encode the QR code: \(String(cString: strerror(errno)))" }
        var errno: Int32 { if case .failed(let code) = self { return code }; return 0 }
    }

    /// The symbol's version (1–40): its side is 17 + 4 × version modules.
    public let version: Int

    /// Encodes text in the smallest symbol that holds it, at the strongest error-correction level
    /// that symbol allows (level L at worst, as displayed codes are not soiled or torn; M, Q or H
    /// when the text leaves room). libqrencode splits the text into segments: the Base32 secret is
    /// alphanumeric (5.5 bits a character instead of 8), the rest bytes, case kept. A key URI of a
    /// 160-bit secret is then version 4 or 5: 21 or 23 text lines, which fit an 80×24 terminal.
    public init(encoding text: String) throws(EncodingError) {
        guard let smallest = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1) else { throw .failed(errno: errno) }
        var code = smallest
        for level in [QR_ECLEVEL_H, QR_ECLEVEL_Q, QR_ECLEVEL_M] {
            guard let stronger = QRcode_encodeString(text, smallest.pointee.version, level, QR_MODE_8, 1) else { continue }
            if stronger.pointee.version == smallest.pointee.version {
                code = stronger
                break
            }
            QRcode_free(stronger)
        }
        defer {
            if code != smallest { QRcode_free(code) }
            QRcode_free(smallest)
        }
        let width = Int(code.pointee.width)
        size = width
        version = Int(code.pointee.version)
        modules = (0..<width * width).map { code.pointee.data[$0] & 1 == 1 }
    }

    public func isDark(_ x: Int, _ y: Int) -> Bool {
        x >= 0 && y >= 0 && x < size && y < size && modules[y * size + x]
    }
}
