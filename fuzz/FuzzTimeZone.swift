import Engage2FALogin

/// Any bytes as a TZif file (or, if they do not start with the magic, as the footer's TZ string of
/// a minimal one): never a crash; offsets within RFC 8536's range; and 00:00 of a day is where the
/// local clock first reaches it (the instant before is earlier by that clock).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if !bytes.starts(with: [0x54, 0x5A, 0x69, 0x66]) { bytes = tzif(footer: bytes) }
    guard let rules = try? TimeZoneRules(tzif: bytes) else { return 0 }
    // Instants from the input's first bytes, and fixed ones: the epoch, 2026, 2100, extremes.
    var instants: [Int64] = [0, 1_796_000_000, 4_102_444_800, Int64.min, Int64.max, -(1 << 39), 1 << 39]
    var seed: UInt64 = 0
    for byte in bytes.prefix(16) { seed = seed &* 31 &+ UInt64(byte) }
    for _ in 0..<8 {
        seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        instants.append(Int64(bitPattern: seed) >> 25)  // within ±2^38 s
    }
    for instant in instants {
        let offset = rules.utcOffset(at: instant)
        precondition(abs(offset) <= 93_599 + 3600, "offset \(offset) out of range")
        guard instant.magnitude <= 1 << 39 else { _ = rules.firstInstant(atOrAfterLocalTime: instant); continue }
        let wall = instant - instant % 86_400
        let first = rules.firstInstant(atOrAfterLocalTime: wall)
        precondition(first + rules.utcOffset(at: first) >= wall, "the clock has not reached the local time at its instant")
        precondition(first - 1 + rules.utcOffset(at: first - 1) < wall, "the clock reached the local time before its instant")
    }
    return 0
}

/// A version 2 TZif file of one type (UTC) and one early transition, with `footer` as its TZ string.
func tzif(footer: [UInt8]) -> [UInt8] {
    func header(times: UInt8, characters: UInt8) -> [UInt8] {
        Array("TZif2".utf8) + [UInt8](repeating: 0, count: 15) + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            + [0, 0, 0, times, 0, 0, 0, 1, 0, 0, 0, characters]
    }
    let version1 = header(times: 0, characters: 1) + [0, 0, 0, 0, 0, 0, 0]
    let early: [UInt8] = [0xFF, 0xFF, 0xFF, 0x00, 0, 0, 0, 0]  // -2^40
    let version2 = header(times: 1, characters: 4) + early + [0] + [0, 0, 0, 0, 0, 0] + Array("UTC\0".utf8)
    return version1 + version2 + [0x0A] + footer + [0x0A]
}
