import CZlib
extension QRCode {
    /// Scanners need a light border four modules wide (ISO/IEC 18004).
    public static let quietZone = 4

    /// The code in UTF-8 half blocks, two module rows per text line, drawn black on an explicit
    /// white background so that it scans on dark and light terminal themes alike.
    public func terminalText(colors: Bool = true) -> String {
        let quiet = Self.quietZone
        let range = -quiet..<(size + quiet)
        var lines: [String] = []
        for y in stride(from: -quiet, to: size + quiet, by: 2) {
            var line = colors ? "\u{1B}[30;107m" : ""
            for x in range {
                switch (isDark(x, y), isDark(x, y + 1)) {
                case (true, true): line += "█"
                case (true, false): line += "▀"
                case (false, true): line += "▄"
                case (false, false): line += " "
                }
            }
            lines.append(line + (colors ? "\u{1B}[0m" : ""))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Columns the terminal rendering needs.
    public var terminalWidth: Int { size + 2 * Self.quietZone }

    /// Lines the terminal rendering takes (two module rows a line).
    public var terminalHeight: Int { (size + 2 * Self.quietZone + 1) / 2 }

    /// An SVG drawing, one path of unit squares, with the quiet zone.
    public func svg(moduleSize: Int = 8) -> String {
        let total = (size + 2 * Self.quietZone) * moduleSize
        var path = ""
        for y in 0..<size {
            for x in 0..<size where isDark(x, y) {
                path += "M\(x + Self.quietZone) \(y + Self.quietZone)h1v1h-1z"
            }
        }
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(total)" height="\(total)" \
            viewBox="0 0 \(size + 2 * Self.quietZone) \(size + 2 * Self.quietZone)" shape-rendering="crispEdges">
            <rect width="100%" height="100%" fill="#fff"/>
            <path fill="#000" d="\(path)"/>
            </svg>

            """
    }

    /// A grayscale PNG (8 bits, `moduleSize` pixels a module), compressed with zlib (deflate at its
    /// best level: each row repeats one of two bytes, a few hundred bytes in all).
    public func png(moduleSize: Int = 8) -> [UInt8] {
        let side = (size + 2 * Self.quietZone) * moduleSize
        var raw: [UInt8] = []
        raw.reserveCapacity((side + 1) * side)
        for row in 0..<side {
            raw.append(0)  // filter type None
            let y = row / moduleSize - Self.quietZone
            for column in 0..<side {
                raw.append(isDark(column / moduleSize - Self.quietZone, y) ? 0 : 255)
            }
        }
        var header: [UInt8] = []
        header += bigEndian(UInt32(side)) + bigEndian(UInt32(side))
        header += [8, 0, 0, 0, 0]  // bit depth 8, grayscale, deflate, no filter method, no interlace
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + pngChunk("IHDR", header) + pngChunk("IDAT", zlibCompressed(raw)) + pngChunk("IEND", [])
    }
}

private func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

private func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let typeBytes = Array(type.utf8)
    return bigEndian(UInt32(data.count)) + typeBytes + data + bigEndian(UInt32(truncatingIfNeeded: crc32(0, typeBytes + data, UInt32(typeBytes.count + data.count))))
}

/// A zlib stream (RFC 1950) of `data`, as PNG's IDAT holds it.
private func zlibCompressed(_ data: [UInt8]) -> [UInt8] {
    var length = compressBound(uLong(data.count))
    var out = [UInt8](repeating: 0, count: Int(length))
    // Only Z_MEM_ERROR or Z_BUF_ERROR could fail it: the bound is large enough, and an allocation failure
    // is the end of the process anyway.
    let status = compress2(&out, &length, data, uLong(data.count), Z_BEST_COMPRESSION)
    precondition(status == Z_OK, "zlib compress2 failed (\(status))")
    return Array(out.prefix(Int(length)))
}
