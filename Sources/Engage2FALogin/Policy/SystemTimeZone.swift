import CEngageSys

// The host's local time, for the dates of the policy file that have no offset (`start_date =
// 2026-12-15`: 00:00 local time) and for dates shown to people. It comes from the system time zone
// only, /etc/localtime, never from the caller's environment: glibc's mktime(3) and localtime(3)
// honour TZ, rule strings included, even in setuid programs such as sudo, so a user could move a
// deadline or the start date by hours with `TZ='<-167>+167' sudo …`.

/// A time zone read from a TZif file (RFC 8536): the transitions and local time types of its
/// version 2+ data (or of version 1 data in a version 1 file), leap-second records, and the
/// footer's POSIX TZ string for instants at or after the last transition.
///
/// Where RFC 8536 leaves room, this does what glibc does, so that the module agrees with date(1)
/// and the logs on the same host: the footer rule is applied to the UTC year of the instant, and a
/// leap-second correction ("right/" zones) is subtracted from the offset. Two cases follow RFC
/// 8536 instead, and differ from glibc only for files zic does not write: before the first
/// transition the first time type applies (glibc takes the first standard-time type), and with no
/// transitions at all the footer does (glibc ignores it then).
public struct TimeZoneRules: Equatable, Sendable {
    /// Strictly ascending.
    let transitions: [Int64]
    /// For each transition, the index of its time type.
    let transitionTypes: [UInt8]
    /// Seconds east of UTC of each time type.
    let typeOffsets: [Int32]
    /// Strictly ascending occurrence times of leap seconds, and the total correction from each on.
    let leapTimes: [Int64]
    let leapCorrections: [Int32]
    let footer: TimeZoneFooter

    /// UTC all the time: what a host without a (trustworthy) /etc/localtime gets, as with glibc.
    public static let utc = TimeZoneRules(
        transitions: [], transitionTypes: [], typeOffsets: [0], leapTimes: [], leapCorrections: [], footer: .fixed(offset: 0))

    init(transitions: [Int64], transitionTypes: [UInt8], typeOffsets: [Int32], leapTimes: [Int64], leapCorrections: [Int32], footer: TimeZoneFooter) {
        self.transitions = transitions
        self.transitionTypes = transitionTypes
        self.typeOffsets = typeOffsets
        self.leapTimes = leapTimes
        self.leapCorrections = leapCorrections
        self.footer = footer
    }

    /// Instants are clamped to ±2^40 s (±34,000 years) before any calendar arithmetic, so that no
    /// value read from any file can overflow.
    static let supportedRange: ClosedRange<Int64> = -(1 << 40)...(1 << 40)

    /// Longest stretch of local time that can be skipped or repeated, with margin: offsets are at most
    /// ±25:59:59 (RFC 8536) and leap-second corrections at most ±1 h here.
    static let window: Int64 = 28 * 3600

    /// Seconds east of UTC of local time at `unixTime`.
    @inline(never)  // called from every date function: one copy, not one inlined in each
    public func utcOffset(at unixTime: Int64) -> Int64 {
        let time = clamp(unixTime)
        return standardOrTransitionOffset(at: time) - leapCorrection(at: time)
    }

    /// The first instant at which the local clock reads `localTime` (seconds since 1970-01-01
    /// 00:00 of the local calendar) or later. Where a change of offset skips that time, the first
    /// time that exists after it (the instant of the change), as mktime(3) gives for a midnight at
    /// the start of a gap; where the clock shows that time twice (the hour after a change back), the
    /// first.
    @inline(never)  // called from every date function: one copy, not one inlined in each
    public func firstInstant(atOrAfterLocalTime localTime: Int64) -> Int64 {
        let wall = min(max(localTime, Self.supportedRange.lowerBound + 2 * Self.window), Self.supportedRange.upperBound - 2 * Self.window)
        // From an instant whose local time is surely earlier, segment by segment (the offset is
        // constant between two changes) until the local time of one reaches `wall`. Each step
        // passes one change, so this ends; the bound is for a file with very many of them.
        var time = wall - Self.window
        var steps = transitions.count + leapTimes.count + 64
        while true {
            let offset = utcOffset(at: time)
            guard steps > 0, let next = nextChange(after: time), next <= wall - offset else {
                // The local clock passes `wall` in [time, next): at wall - offset, or at `time`
                // itself if it already showed a later time there (a gap).
                return max(time, wall - offset)
            }
            time = next
            steps -= 1
        }
    }

    /// The local calendar day (days since 1970-01-01) and the seconds since its midnight.
    @inline(never)  // called from every date function: one copy, not one inlined in each
    func localTime(at unixTime: Int64) -> (day: Int64, secondsOfDay: Int64) {
        let local = clamp(unixTime) + utcOffset(at: unixTime)
        let day = floorDivide(local, 86_400)
        return (day, local - day * 86_400)
    }

    private func clamp(_ time: Int64) -> Int64 {
        min(max(time, Self.supportedRange.lowerBound), Self.supportedRange.upperBound)
    }

    private func standardOrTransitionOffset(at time: Int64) -> Int64 {
        guard let last = transitions.last else {
            if case .absent = footer { return Int64(typeOffsets[0]) }
            return footerOffset(at: time)
        }
        if time < transitions[0] { return Int64(typeOffsets[0]) }
        if time >= last {
            if case .absent = footer { return Int64(typeOffsets[Int(transitionTypes[transitions.count - 1])]) }
            return footerOffset(at: time)
        }
        // The last transition at or before `time`.
        let index = firstIndex(in: transitions, after: time) - 1
        return Int64(typeOffsets[Int(transitionTypes[index])])
    }

    private func leapCorrection(at time: Int64) -> Int64 {
        guard !leapTimes.isEmpty else { return 0 }
        let index = firstIndex(in: leapTimes, after: time)
        return index == 0 ? 0 : Int64(leapCorrections[index - 1])
    }

    /// The first instant after `time` at which the offset may change; nil if it never does again.
    func nextChange(after time: Int64) -> Int64? {
        var next: Int64? = nil
        let index = firstIndex(in: transitions, after: time)
        if index < transitions.count {
            next = transitions[index]
        } else if case .daylightSaving = footer, time < Self.supportedRange.upperBound {
            next = footerNextChange(after: time)
        }
        if !leapTimes.isEmpty {
            let leap = firstIndex(in: leapTimes, after: time)
            if leap < leapTimes.count { next = min(next ?? leapTimes[leap], leapTimes[leap]) }
        }
        return next
    }

    private func footerOffset(at time: Int64) -> Int64 {
        switch footer {
        case .absent: return Int64(typeOffsets[0])
        case .fixed(let offset): return offset
        case .daylightSaving(let standard, let daylight, let start, let end):
            // As glibc's __tz_compute: both changes of the instant's UTC year; a start after the end
            // is a southern-hemisphere rule (daylight saving time across the new year).
            let year = civilFromDays(floorDivide(time, 86_400)).year
            let starts = start.instant(year: year, offsetBefore: standard)
            let ends = end.instant(year: year, offsetBefore: daylight)
            let isDaylight = starts > ends ? (time < ends || time >= starts) : (time >= starts && time < ends)
            return isDaylight ? daylight : standard
        }
    }

    private func footerNextChange(after time: Int64) -> Int64 {
        guard case .daylightSaving(let standard, let daylight, let start, let end) = footer else { return Int64.max }
        let year = civilFromDays(floorDivide(time, 86_400)).year
        // The year's two changes, and the new year, where the rule is applied to the next year.
        var next = daysFromCivil(year: year + 1, month: 1, day: 1) * 86_400
        let starts = start.instant(year: year, offsetBefore: standard)
        let ends = end.instant(year: year, offsetBefore: daylight)
        if starts > time && starts < next { next = starts }
        if ends > time && ends < next { next = ends }
        return next
    }
}

/// The first index whose value is greater than `time` (binary search in a strictly ascending array).
private func firstIndex(in values: [Int64], after time: Int64) -> Int {
    var low = 0
    var high = values.count
    while low < high {
        let middle = low + (high - low) / 2
        if values[middle] <= time { low = middle + 1 } else { high = middle }
    }
    return low
}

/// What a TZif footer says about instants at or after the last transition.
enum TimeZoneFooter: Equatable, Sendable {
    /// No TZ string (an empty one, or a version 1 file): the last transition's type holds.
    case absent
    case fixed(offset: Int64)
    /// Offsets in seconds east of UTC; DST from `start` (given in standard time) to `end` (in DST).
    case daylightSaving(standard: Int64, daylight: Int64, start: TimeZoneChangeRule, end: TimeZoneChangeRule)
}

/// One of the two yearly changes of a POSIX TZ rule: the day, and the local time of day (before the
/// change) at which it happens, −167…167 h (RFC 8536 §3.3.1).
struct TimeZoneChangeRule: Equatable, Sendable {
    enum Day: Equatable, Sendable {
        /// `Jn`, 1…365: February 29 is never counted, so J60 is March 1.
        case julian(Int)
        /// `n`, 0…365: February 29 is counted in leap years.
        case dayOfYear(Int)
        /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (1…5, 5 = the last) of month `m`.
        case monthWeekDay(month: Int, week: Int, weekday: Int)
    }

    var day: Day
    var secondsIntoDay: Int64

    /// The instant of this change in `year`, for local time `offsetBefore` seconds east of UTC.
    func instant(year: Int, offsetBefore: Int64) -> Int64 {
        let days: Int64
        switch day {
        case .julian(let number):
            days = daysFromCivil(year: year, month: 1, day: 1) + Int64(number - 1) + (number >= 60 && isLeapYear(year) ? 1 : 0)
        case .dayOfYear(let number):
            days = daysFromCivil(year: year, month: 1, day: 1) + Int64(number)
        case .monthWeekDay(let month, let week, let weekday):
            let first = daysFromCivil(year: year, month: month, day: 1)
            // 1970-01-01 was a Thursday (4).
            let firstWeekday = Int(floorModulo(first + 4, 7))
            var dayOfMonth = (weekday - firstWeekday + 7) % 7
            let length = daysInMonth(year: year, month: month)
            var counted = 1
            while counted < week && dayOfMonth + 7 < length {
                dayOfMonth += 7
                counted += 1
            }
            days = first + Int64(dayOfMonth)
        }
        return days * 86_400 - offsetBefore + secondsIntoDay
    }
}

func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
    let quotient = value / divisor
    return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient
}

func floorModulo(_ value: Int64, _ divisor: Int64) -> Int64 { value - floorDivide(value, divisor) * divisor }

/// The proleptic Gregorian date of a day number (days since 1970-01-01; Howard Hinnant's civil_from_days).
func civilFromDays(_ days: Int64) -> (year: Int, month: Int, day: Int) {
    let z = days + 719_468
    let era = floorDivide(z, 146_097)
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    return (Int(year), Int(month), Int(day))
}

// MARK: - Parsing TZif

/// Why a TZif file was not used: one case per check, worded by `reason` alone (a String built at each
/// check made every throw site of the parser bigger).
public enum TimeZoneDataError: Error, Equatable, CustomStringConvertible {
    case tooLarge, bytesAfterData, secondHeaderVersion1, truncatedData, transitionsNotAscending, missingTimeType
    case offsetOutOfRange, daylightIndicator, designationIndex, leapSecondsNotAscending, leapCorrectionOutOfRange
    case standardOrUniversalIndicator, noFooter, footerNotEnded, truncated, truncatedHeader, noMagic, unknownVersion
    case countOutOfRange, typeCount, indicatorCounts, noDesignations
    case footerNoRulesComma, footerNoRuleEnd, footerTextAfterRules, footerQuotedName, footerName, footerHours
    case footerMinutes, footerSeconds, footerJulianDay, footerMonthWeekDay, footerDayOfYear
    /// The file grew between fstat(2) and read(2).
    case changedWhileRead

    public var reason: String { reasonText.text }

    public var description: String { "not a usable TZif file: " + reason }

    private var reasonText: StaticString {
        switch self {
        case .tooLarge: "larger than 65536 bytes"
        case .bytesAfterData: "bytes after the data"
        case .secondHeaderVersion1: "the second header has version 1"
        case .truncatedData: "truncated data"
        case .transitionsNotAscending: "transition times not in ascending order"
        case .missingTimeType: "a transition to a time type that does not exist"
        case .offsetOutOfRange: "a UTC offset out of range"
        case .daylightIndicator: "a DST indicator not 0 or 1"
        case .designationIndex: "designation index out of range"
        case .leapSecondsNotAscending: "leap seconds not in ascending order"
        case .leapCorrectionOutOfRange: "a leap-second correction out of range"
        case .standardOrUniversalIndicator: "standard/UT indicator not 0 or 1"
        case .noFooter: "no footer"
        case .footerNotEnded: "footer not ended by the end of the file"
        case .truncated: "truncated"
        case .truncatedHeader: "truncated header"
        case .noMagic: "no TZif magic"
        case .unknownVersion: "an unknown version"
        case .countOutOfRange: "a count out of range"
        case .typeCount: "no time types, or more than 256"
        case .indicatorCounts: "indicator counts differ from the type count"
        case .noDesignations: "no designations"
        case .footerNoRulesComma: "footer: ',' expected before the DST rules"
        case .footerNoRuleEnd: "footer: the DST rule has no end"
        case .footerTextAfterRules: "footer: text after the DST rules"
        case .footerQuotedName: "footer: bad quoted zone name"
        case .footerName: "footer: zone name expected"
        case .footerHours: "footer: hours expected"
        case .footerMinutes: "footer: minutes expected"
        case .footerSeconds: "footer: seconds expected"
        case .footerJulianDay: "footer: Jn with n in 1–365 expected"
        case .footerMonthWeekDay: "footer: Mm.w.d expected"
        case .footerDayOfYear: "footer: day of the year (0–365) expected"
        case .changedWhileRead: "changed while read"
        }
    }
}

extension TimeZoneRules {
    /// The largest TZif file read (real ones are under 4 KiB).
    public static let maxFileSize = 64 * 1024

    /// Parses a TZif file. Every count is checked against the bytes there are, every index against
    /// what it indexes, every offset against RFC 8536's range; nothing in `bytes` can trap.
    public init(tzif bytes: [UInt8]) throws(TimeZoneDataError) {
        guard bytes.count <= Self.maxFileSize else { throw TimeZoneDataError.tooLarge }
        var reader = BigEndianReader(bytes)
        let first = try reader.header()
        if first.version == 0 {
            try self.init(reading: &reader, header: first, timeSize: 4)
            guard reader.atEnd else { throw TimeZoneDataError.bytesAfterData }
            return
        }
        // Version 2 and later: skip the 32-bit data; the 64-bit data and the footer follow.
        try reader.skip(first.dataSize(timeSize: 4))
        let second = try reader.header()
        guard second.version != 0 else { throw TimeZoneDataError.secondHeaderVersion1 }
        try self.init(reading: &reader, header: second, timeSize: 8)
    }

    private init(reading reader: inout BigEndianReader, header: TZifHeader, timeSize: Int) throws(TimeZoneDataError) {
        // The whole block is there before any of it is read.
        guard reader.remaining >= header.dataSize(timeSize: timeSize) else { throw TimeZoneDataError.truncatedData }
        // Every value is read straight from the bytes (checked to be there above), not value by value
        // through the reader, into arrays made at their size (no append, no growing). The first problem
        // in the file's order is thrown once all is read.
        var problem: TimeZoneDataError? = nil
        let count = header.timeCount
        var position = reader.position
        let file = reader.bytes  // the span below borrows this copy, not the reader, which moves on after
        let bytes = file.span
        let transitionsStart = position
        let transitions = [Int64](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                let time = bigEndian(bytes, at: transitionsStart + index * timeSize, size: timeSize)
                if index > 0 && time <= buffer[index - 1] && problem == nil { problem = .transitionsNotAscending }
                buffer[index] = time
            }
            initialized = count
        }
        position += count * timeSize
        let typesStart = position
        let transitionTypes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                let type = bytes[typesStart + index]
                if Int(type) >= header.typeCount && problem == nil { problem = .missingTimeType }
                buffer[index] = type
            }
            initialized = count
        }
        position += count
        let recordsStart = position
        let typeOffsets = [Int32](unsafeUninitializedCapacity: header.typeCount) { buffer, initialized in
            for index in 0..<header.typeCount {
                let record = recordsStart + index * 6
                let offset = bigEndian(bytes, at: record, size: 4)
                if problem == nil {
                    // RFC 8536 §3.2: −25:59:59 is not allowed, −24:59:59…+25:59:59 is.
                    if !(-89_999...93_599).contains(offset) {
                        problem = .offsetOutOfRange
                    } else if bytes[record + 4] > 1 {
                        problem = .daylightIndicator
                    } else if Int(bytes[record + 5]) >= header.characterCount {
                        problem = .designationIndex
                    }
                }
                buffer[index] = Int32(truncatingIfNeeded: offset)  // read as 4 bytes: it fits
            }
            initialized = header.typeCount
        }
        position += header.typeCount * 6 + header.characterCount
        let leapStart = position
        let leapSize = timeSize + 4
        // Both checks of each record in this pass, so that the first problem is the file's first.
        let leapTimes = [Int64](unsafeUninitializedCapacity: header.leapCount) { buffer, initialized in
            for index in 0..<header.leapCount {
                let time = bigEndian(bytes, at: leapStart + index * leapSize, size: timeSize)
                let correction = bigEndian(bytes, at: leapStart + index * leapSize + timeSize, size: 4)
                if problem == nil {
                    if index > 0 && time <= buffer[index - 1] {
                        problem = .leapSecondsNotAscending
                    } else if !(-3600...3600).contains(correction) {
                        problem = .leapCorrectionOutOfRange
                    }
                }
                buffer[index] = time
            }
            initialized = header.leapCount
        }
        let leapCorrections = [Int32](unsafeUninitializedCapacity: header.leapCount) { buffer, initialized in
            for index in 0..<header.leapCount {
                buffer[index] = Int32(truncatingIfNeeded: bigEndian(bytes, at: leapStart + index * leapSize + timeSize, size: 4))
            }
            initialized = header.leapCount
        }
        position += header.leapCount * leapSize
        for index in 0..<(header.standardCount + header.universalCount) where bytes[position + index] > 1 && problem == nil {
            problem = .standardOrUniversalIndicator
        }
        if let problem { throw problem }
        try reader.skip(header.dataSize(timeSize: timeSize))
        var footer = TimeZoneFooter.absent
        if timeSize == 8 {
            // "\n" TZ string "\n", and the end of the file.
            guard try reader.byte() == 0x0A else { throw TimeZoneDataError.noFooter }
            let text = reader.rest()
            guard let newline = text.firstIndex(of: 0x0A), newline == text.endIndex - 1 else { throw TimeZoneDataError.footerNotEnded }
            footer = try parsePOSIXTimeZone(text[..<newline])
        }
        self.init(transitions: transitions, transitionTypes: transitionTypes, typeOffsets: typeOffsets,
                  leapTimes: leapTimes, leapCorrections: leapCorrections, footer: footer)
    }
}

private struct TZifHeader {
    var version: UInt8
    var universalCount: Int
    var standardCount: Int
    var leapCount: Int
    var timeCount: Int
    var typeCount: Int
    var characterCount: Int

    func dataSize(timeSize: Int) -> Int {
        timeCount * (timeSize + 1) + typeCount * 6 + characterCount + leapCount * (timeSize + 4) + standardCount + universalCount
    }
}

/// A signed big-endian integer of 4 or 8 bytes at `position`, read through the span's bounds check.
@inline(__always)
private func bigEndian(_ bytes: Span<UInt8>, at position: Int, size: Int) -> Int64 {
    let raw = bytes.bytes
    return size == 4
        ? Int64(Int32(bitPattern: UInt32(bigEndian: raw.unsafeLoadUnaligned(fromByteOffset: position, as: UInt32.self))))
        : Int64(bitPattern: UInt64(bigEndian: raw.unsafeLoadUnaligned(fromByteOffset: position, as: UInt64.self)))
}

private struct BigEndianReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }
    var atEnd: Bool { position == bytes.count }

    mutating func byte() throws(TimeZoneDataError) -> UInt8 {
        guard position < bytes.count else { throw TimeZoneDataError.truncated }
        position += 1
        return bytes[position - 1]
    }

    /// A signed big-endian integer of 4 or 8 bytes.
    mutating func integer(size: Int) throws(TimeZoneDataError) -> Int64 {
        guard remaining >= size else { throw TimeZoneDataError.truncated }
        let value = bigEndian(bytes.span, at: position, size: size)
        position += size
        return value
    }

    mutating func skip(_ count: Int) throws(TimeZoneDataError) {
        guard count >= 0, remaining >= count else { throw TimeZoneDataError.truncated }
        position += count
    }

    func rest() -> ArraySlice<UInt8> { bytes[position...] }

    mutating func header() throws(TimeZoneDataError) -> TZifHeader {
        guard remaining >= 44 else { throw TimeZoneDataError.truncatedHeader }
        guard bytes[position] == 0x54, bytes[position + 1] == 0x5A, bytes[position + 2] == 0x69, bytes[position + 3] == 0x66 else {
            throw TimeZoneDataError.noMagic
        }
        let version = bytes[position + 4]
        guard version == 0 || version >= UInt8(ascii: "2") else { throw TimeZoneDataError.unknownVersion }
        position += 20
        // A count more than the bytes of the largest file allowed is a lie; this also keeps every
        // size computed from the counts far from overflow. (A loop: one copy of the check, not six.)
        var counts = [Int](repeating: 0, count: 6)
        for index in 0..<6 {
            let value = try integer(size: 4)
            guard (0...Int64(TimeZoneRules.maxFileSize)).contains(value) else { throw TimeZoneDataError.countOutOfRange }
            counts[index] = Int(value)
        }
        let header = TZifHeader(version: version, universalCount: counts[0], standardCount: counts[1], leapCount: counts[2],
                                timeCount: counts[3], typeCount: counts[4], characterCount: counts[5])
        guard (1...256).contains(header.typeCount) else { throw TimeZoneDataError.typeCount }
        guard header.universalCount == 0 || header.universalCount == header.typeCount,
            header.standardCount == 0 || header.standardCount == header.typeCount
        else { throw TimeZoneDataError.indicatorCounts }
        guard header.characterCount >= 1 else { throw TimeZoneDataError.noDesignations }
        return header
    }
}

// MARK: - POSIX TZ strings (TZif footers)

/// `std offset [dst [offset] [,start[/time],end[/time]]]` (POSIX.1 TZ, with RFC 8536's extension
/// of rule times to −167…167 h). A DST name without rules means the US rules (M3.2.0,M11.1.0), as
/// glibc assumes when no posixrules file says otherwise.
func parsePOSIXTimeZone(_ text: ArraySlice<UInt8>) throws(TimeZoneDataError) -> TimeZoneFooter {
    if text.isEmpty { return .absent }
    var scanner = RuleScanner(text)
    try scanner.name()
    // POSIX offsets are hours west of UTC; the rules here use seconds east.
    let standard = -(try scanner.time(maxHours: 24))
    if scanner.atEnd { return .fixed(offset: standard) }
    try scanner.name()
    var daylight = standard + 3600
    if let next = scanner.peek, next != UInt8(ascii: ",") {
        daylight = -(try scanner.time(maxHours: 24))
    }
    let start: TimeZoneChangeRule
    let end: TimeZoneChangeRule
    if scanner.atEnd {
        start = TimeZoneChangeRule(day: .monthWeekDay(month: 3, week: 2, weekday: 0), secondsIntoDay: 7200)
        end = TimeZoneChangeRule(day: .monthWeekDay(month: 11, week: 1, weekday: 0), secondsIntoDay: 7200)
    } else {
        guard scanner.expect(",") else { throw TimeZoneDataError.footerNoRulesComma }
        start = try scanner.changeRule()
        guard scanner.expect(",") else { throw TimeZoneDataError.footerNoRuleEnd }
        end = try scanner.changeRule()
        guard scanner.atEnd else { throw TimeZoneDataError.footerTextAfterRules }
    }
    return .daylightSaving(standard: standard, daylight: daylight, start: start, end: end)
}

private struct RuleScanner {
    let bytes: ArraySlice<UInt8>
    var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    var atEnd: Bool { position == bytes.endIndex }
    var peek: UInt8? { atEnd ? nil : bytes[position] }

    mutating func expect(_ character: Unicode.Scalar) -> Bool {
        guard peek == UInt8(ascii: character) else { return false }
        position += 1
        return true
    }

    /// A zone abbreviation: three or more letters, or `<…>` of three or more letters, digits, + and -.
    mutating func name() throws(TimeZoneDataError) {
        let start = position
        if expect("<") {
            while let byte = peek, isLetter(byte) || isDigit(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") { position += 1 }
            guard position - start - 1 >= 3, expect(">") else { throw TimeZoneDataError.footerQuotedName }
        } else {
            while let byte = peek, isLetter(byte) { position += 1 }
            guard position - start >= 3 else { throw TimeZoneDataError.footerName }
        }
    }

    /// `[+|-]hh[:mm[:ss]]` in seconds, hours at most `maxHours`.
    mutating func time(maxHours: Int64) throws(TimeZoneDataError) -> Int64 {
        var sign: Int64 = 1
        if expect("-") { sign = -1 } else { _ = expect("+") }
        guard let hours = number(maxDigits: 3), hours <= maxHours else { throw TimeZoneDataError.footerHours }
        var seconds = hours * 3600
        if expect(":") {
            guard let minutes = number(maxDigits: 2), minutes <= 59 else { throw TimeZoneDataError.footerMinutes }
            seconds += minutes * 60
            if expect(":") {
                guard let secs = number(maxDigits: 2), secs <= 59 else { throw TimeZoneDataError.footerSeconds }
                seconds += secs
            }
        }
        return sign * seconds
    }

    mutating func changeRule() throws(TimeZoneDataError) -> TimeZoneChangeRule {
        let day: TimeZoneChangeRule.Day
        if expect("J") {
            guard let number = number(maxDigits: 3), (1...365).contains(number) else { throw TimeZoneDataError.footerJulianDay }
            day = .julian(Int(number))
        } else if expect("M") {
            guard let month = number(maxDigits: 2), (1...12).contains(month), expect("."),
                let week = number(maxDigits: 1), (1...5).contains(week), expect("."),
                let weekday = number(maxDigits: 1), weekday <= 6
            else { throw TimeZoneDataError.footerMonthWeekDay }
            day = .monthWeekDay(month: Int(month), week: Int(week), weekday: Int(weekday))
        } else {
            guard let number = number(maxDigits: 3), number <= 365 else { throw TimeZoneDataError.footerDayOfYear }
            day = .dayOfYear(Int(number))
        }
        var seconds: Int64 = 7200
        if expect("/") { seconds = try time(maxHours: 167) }
        return TimeZoneChangeRule(day: day, secondsIntoDay: seconds)
    }

    mutating func number(maxDigits: Int) -> Int64? {
        var value: Int64 = 0
        var digits = 0
        while let byte = peek, isDigit(byte), digits < maxDigits {
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            digits += 1
            position += 1
        }
        // More digits than allowed is malformed, not a number followed by something else.
        if let byte = peek, isDigit(byte) { return nil }
        return digits == 0 ? nil : value
    }
}

private func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }
private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

// MARK: - The system time zone

/// Why the system time zone is UTC.
public enum TimeZoneFileError: Error, Equatable, CustomStringConvertible {
    case missing(path: String)
    /// A directory or link on the way, or the file, is not owned by root, or group or others may write it.
    case untrusted(path: String, reason: String)
    case tooManyLinks(path: String)
    case system(path: String, SystemError)
    case malformed(path: String, TimeZoneDataError)

    public var description: String {
        switch self {
        case .missing(let path): "\(path): does not exist"
        case .untrusted(let path, let reason): "\(path): \(reason)"
        case .tooManyLinks(let path): "\(path): too many symbolic links"
        case .system(let path, let error): "\(path): \(error)"
        case .malformed(let path, let error): "\(path): \(error)"
        }
    }
}

/// The system time zone: the TZif file /etc/localtime names (on Debian a symbolic link into
/// /usr/share/zoneinfo), never the TZ environment variable, which the user who runs sudo or su
/// controls.
///
/// The file is used only if it and every directory and symbolic link on the way to it are owned by
/// root and not writable by group or others, it is at most 64 KiB, and it parses. Otherwise —
/// and when there is no /etc/localtime — local time is UTC, as glibc does without /etc/localtime:
/// every date without an offset is then 00:00 UTC. `loadError` says why, for `engage2fa-admin check`.
///
/// Read at most once per process, at the first date that needs it.
public enum SystemTimeZone {
    public static let path = "/etc/localtime"

    /// The rules in force: the system zone, or a test's.
    public static var current: TimeZoneRules { testOverride ?? loaded.rules }

    /// Why /etc/localtime was not used (local time is UTC then); nil if it was.
    public static var loadError: TimeZoneFileError? { loaded.error }

    private static let loaded = rulesOrUTC(path)

    /// The zone at `path`, or UTC and why not.
    static func rulesOrUTC(_ path: String) -> (rules: TimeZoneRules, error: TimeZoneFileError?) {
        do throws(TimeZoneFileError) {
            return (try load(path), nil)
        } catch {
            return (.utc, error)
        }
    }

    /// For the unit tests only (they set it before the code they test, one test at a time).
    nonisolated(unsafe) static var testOverride: TimeZoneRules? = nil

    /// Reads and parses the zone at `path` with the checks above.
    public static func load(_ path: String) throws(TimeZoneFileError) -> TimeZoneRules {
        let bytes = try readZoneFile(path)
        do throws(TimeZoneDataError) {
            return try TimeZoneRules(tzif: bytes)
        } catch {
            throw .malformed(path: path, error)
        }
    }
}

/// Opens `path` one component at a time from the root directory, each relative to the directory
/// before it (openat(2) with O_NOFOLLOW): what is checked is what is opened. Symbolic links are
/// followed by hand (at most 16), each after checking its owner; `..` goes back to the directory
/// before, already checked. Runs at the first date of a login that needs the zone: byte loops and
/// a few buffers, no collection algorithms (a split/map version cost 10× the instructions).
func readZoneFile(_ path: String) throws(TimeZoneFileError) -> [UInt8] {
    var walk = ZoneFileWalk(path)
    defer { walk.closeAll() }
    return try walk.run()
}

private struct ZoneFileWalk {
    let path: String
    /// What is left to resolve: the path, then each link's target followed by the rest.
    var pending: [UInt8]
    var cursor = 0
    /// The directories opened so far (the root first), and their path, for messages.
    var directories: [FileDescriptor] = []
    var resolved: [UInt8] = []
    /// The component being opened, NUL-terminated.
    var name = [CChar](repeating: 0, count: 256)
    var nameLength = 0

    static let slash = UInt8(ascii: "/")
    static let dot = UInt8(ascii: ".")
    static let maxPending = 8192

    init(_ path: String) {
        self.path = path
        pending = Array(path.utf8)
        directories.reserveCapacity(8)
        resolved.reserveCapacity(64)
    }

    mutating func closeAll() {
        for directory in directories { directory.close() }
        directories.removeAll()
    }

    mutating func run() throws(TimeZoneFileError) -> [UInt8] {
        guard pending.first == Self.slash, !pending.contains(0) else { throw .missing(path: path) }
        let root: FileDescriptor
        do { root = try FileDescriptor.openRootDirectory() } catch { throw failure(calling: "open", error, withName: false) }
        directories.append(root)
        try checkDirectory(root)
        var linksLeft = 16
        while let (start, end) = nextComponent() {
            let length = end - start
            if length == 1 && pending[start] == Self.dot { continue }
            if length == 2 && pending[start] == Self.dot && pending[start + 1] == Self.dot {
                if directories.count > 1 {
                    directories.removeLast().close()
                    while let last = resolved.last, last != Self.slash { resolved.removeLast() }
                    resolved.removeLast()
                }
                continue
            }
            guard length < name.count else { throw untrusted("a name longer than 255 bytes", withName: false) }
            pending.withUnsafeBufferPointer { source in
                name.withUnsafeMutableBufferPointer { target in
                    for index in 0..<length { target[index] = CChar(bitPattern: source[start + index]) }
                    target[length] = 0
                }
            }
            nameLength = length
            let isLast = atEnd
            let directory = directories[directories.count - 1]
            let options: FileDescriptor.OpenOptions = isLast ? [.nonBlocking, .noControllingTerminal] : .directory
            // `name` goes to each call as a pointer to its NUL-terminated bytes.
            let opened = Result { () throws(Errno) in try directory.open(at: name, .readOnly, options: options) }
            switch opened {
            case .success(let file):
                if isLast { return try file.closeAfter { () throws(TimeZoneFileError) in try readFile(file) } }
                directories.append(file)
                resolved.append(Self.slash)
                resolved.append(contentsOf: pending[start..<end])
                try checkDirectory(file)
                continue
            case .failure(let openError):
                guard openError == .tooManySymbolicLinkLevels || openError == .notDirectory else {
                    if openError == .noSuchFileOrDirectory { throw .missing(path: shown(withName: true)) }
                    throw failure(calling: "open", openError, withName: true)
                }
            }
            // A symbolic link, or not a directory: which, and if a link, to where.
            let status: FileStatus
            do throws(Errno) { status = try directory.status(at: name) } catch {
                throw failure(calling: "fstatat", error, withName: true)
            }
            guard status.type == .symbolicLink else {
                throw untrusted(isLast ? "not a regular file" : "not a directory", withName: true)
            }
            guard status.owner == 0 else {
                throw untrusted(ownerText("symbolic link owned by uid ", status.owner), withName: true)
            }
            linksLeft -= 1
            guard linksLeft >= 0 else { throw .tooManyLinks(path: path) }
            let target: [UInt8]
            do throws(Errno) {
                target = try directory.symbolicLinkTarget(at: name)
            } catch {
                throw failure(calling: "readlink", error, withName: true)
            }
            guard !target.isEmpty, !target.contains(0) else { throw failure(calling: "readlink", .noSuchFileOrDirectory, withName: true) }
            guard target.count + 1 + pending.count - cursor <= Self.maxPending else { throw .tooManyLinks(path: path) }
            if target[0] == Self.slash {
                while directories.count > 1 { directories.removeLast().close() }
                resolved.removeAll(keepingCapacity: true)
            }
            var next = target
            next.append(Self.slash)
            next.append(contentsOf: pending[cursor...])
            pending = next
            cursor = 0
        }
        // The path ended in a directory ("/", "..", or a link to one).
        throw untrusted("not a regular file", withName: false)
    }

    /// The next name between slashes, as a range of `pending`.
    mutating func nextComponent() -> (Int, Int)? {
        while cursor < pending.count && pending[cursor] == Self.slash { cursor += 1 }
        guard cursor < pending.count else { return nil }
        let start = cursor
        while cursor < pending.count && pending[cursor] != Self.slash { cursor += 1 }
        return (start, cursor)
    }

    /// Whether only slashes are left.
    var atEnd: Bool {
        var index = cursor
        while index < pending.count && pending[index] == Self.slash { index += 1 }
        return index == pending.count
    }

    /// The path resolved so far (with the name being opened), for messages.
    func shown(withName: Bool = false) -> String {
        var bytes = resolved
        if withName {
            bytes.append(Self.slash)
            for index in 0..<nameLength { bytes.append(UInt8(bitPattern: name[index])) }
        }
        return bytes.isEmpty ? "/" : String(decoding: bytes, as: UTF8.self)
    }

    /// The errors of the walk, made here rather than at each of its checks.
    @inline(never)
    func untrusted(_ reason: String, withName: Bool) -> TimeZoneFileError {
        .untrusted(path: shown(withName: withName), reason: reason)
    }

    @inline(never)
    func failure(calling call: String, _ error: Errno, withName: Bool) -> TimeZoneFileError {
        .system(path: shown(withName: withName), SystemError(call, error))
    }

    @inline(never)  // called for the root and for each directory: one copy
    func checkDirectory(_ directory: FileDescriptor) throws(TimeZoneFileError) {
        let status: FileStatus
        do { status = try directory.status() } catch { throw failure(calling: "fstat", error, withName: false) }
        guard status.type == .directory else { throw untrusted("not a directory", withName: false) }
        if let reason = untrustedOwnerOrMode(status) { throw untrusted(reason, withName: false) }
    }

    func readFile(_ file: FileDescriptor) throws(TimeZoneFileError) -> [UInt8] {
        let status: FileStatus
        do { status = try file.status() } catch { throw failure(calling: "fstat", error, withName: true) }
        guard status.type == .regular else { throw untrusted("not a regular file", withName: true) }
        if let reason = untrustedOwnerOrMode(status) { throw untrusted(reason, withName: true) }
        guard status.size <= TimeZoneRules.maxFileSize else { throw .malformed(path: shown(withName: true), TimeZoneDataError.tooLarge) }
        // Up to the end of the file, and one byte more than fstat saw, to notice a file that grew.
        let contents: [UInt8]
        do { contents = try file.readAll(expectedSize: status.size, limit: status.size) } catch {
            throw failure(calling: "read", error, withName: true)
        }
        guard contents.count <= status.size else { throw .malformed(path: shown(withName: true), TimeZoneDataError.changedWhileRead) }
        return contents
    }
}

/// Why a file or directory owned by someone else, or writable by group or others, is not trusted.
private func untrustedOwnerOrMode(_ status: FileStatus) -> String? {
    if status.owner != 0 { return ownerText("owned by uid ", status.owner) }
    if !status.permissions.isDisjoint(with: .groupOrOthersWrite) { return "mode \(status.permissions) lets group or others write it" }
    return nil
}

/// `before`, the uid, then ", not root".
@inline(never)  // for a link and for a file or directory: one copy
private func ownerText(_ before: String, _ owner: uid_t) -> String {
    before + String(owner) + ", not root"
}
