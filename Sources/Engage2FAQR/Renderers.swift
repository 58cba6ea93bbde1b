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

    /// A grayscale PNG (8 bits, `moduleSize` pixels a module), written without an image library:
    /// zlib "stored" blocks need no compressor, and a QR image is small.
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
            + pngChunk("IHDR", header) + pngChunk("IDAT", zlibStored(raw)) + pngChunk("IEND", [])
    }
}

private func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

private func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let typeBytes = Array(type.utf8)
    return bigEndian(UInt32(data.count)) + typeBytes + data + bigEndian(crc32(typeBytes + data))
}

/// zlib (RFC 1950) around deflate stored blocks (RFC 1951 §3.2.4).
private func zlibStored(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x78, 0x01]
    var offset = 0
    repeat {
        let length = min(65_535, data.count - offset)
        let final: UInt8 = offset + length == data.count ? 1 : 0
        out.append(final)
        out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
        out += data[offset..<offset + length]
        offset += length
    } while offset < data.count
    return out + bigEndian(adler32(data))
}

private func adler32(_ data: [UInt8]) -> UInt32 {
    var a: UInt32 = 1, b: UInt32 = 0
    for byte in data {
        a = (a + UInt32(byte)) % 65_521
        b = (b + a) % 65_521
    }
    return b << 16 | a
}

private func crc32(_ data: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
