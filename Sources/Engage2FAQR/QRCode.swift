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

    /// Encodes text in byte mode at error-correction level M, the smallest version that fits
    /// (an otpauth URI of a 160-bit secret needs version 5–7).
    public init(encoding text: String) throws(EncodingError) {
        guard let code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M) else { throw .failed(errno: errno) }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        size = width
        modules = (0..<width * width).map { code.pointee.data[$0] & 1 == 1 }
    }

    public func isDark(_ x: Int, _ y: Int) -> Bool {
        x >= 0 && y >= 0 && x < size && y < size && modules[y * size + x]
    }
}
