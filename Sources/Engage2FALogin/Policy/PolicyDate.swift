/// A moment named in the policy file: `YYYY-MM-DD` (00:00 in the system time zone, /etc/localtime;
/// the caller's TZ plays no part) or an ISO 8601 date-time with `Z` or a UTC offset
/// (`2026-12-15T09:00:00+01:00`).
///
/// A date-only value is kept as its day and resolved to an instant when `unixTime` is read, so a
/// login that needs no date (2FA already active, the user enrolled) never reads the time zone.
public struct PolicyDate: Equatable, Sendable, CustomStringConvertible {
    private enum Moment: Equatable, Sendable {
        case instant(Int64)
        /// Days since 1970-01-01 of the local calendar: 00:00 of that day in the system time zone.
        case localMidnight(day: Int64)
    }

    private var moment: Moment

    public var unixTime: Int64 {
        get {
            switch moment {
            case .instant(let time): time
            case .localMidnight(let day): localMidnight(day: day)
            }
        }
        set { moment = .instant(newValue) }
    }

    /// The text as the admin wrote it, shown back in messages so that users see the date they were told.
    public var text: String
    public var isDateOnly: Bool

    public var description: String { text }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case outOfRange(String)
        case missingOffset(String)

        public var description: String {
            // The quoted text, then what is wrong: one concatenation, not an interpolation per case.
            let (text, explanation): (String, String) = switch self {
            case .malformed(let text): (text, "' is not a date (expected YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS] with Z or ±HH:MM)")
            case .outOfRange(let text): (text, "' names a day or time that does not exist")
            case .missingOffset(let text):
                (text, "' has a time but no time zone: add Z (UTC) or an offset such as +01:00, or give just the date")
            }
            return "'" + text + explanation
        }
    }

    public init(unixTime: Int64, text: String, isDateOnly: Bool) {
        self.moment = .instant(unixTime)
        self.text = text
        self.isDateOnly = isDateOnly
    }

    private init(localMidnightOf day: Int64, text: String) {
        self.moment = .localMidnight(day: day)
        self.text = text
        self.isDateOnly = true
    }

    /// The same text and moment (a date-only value and an instant are compared as instants).
    public static func == (lhs: PolicyDate, rhs: PolicyDate) -> Bool {
        lhs.text.hasSameBytes(as: rhs.text) && lhs.isDateOnly == rhs.isDateOnly && (lhs.moment == rhs.moment || lhs.unixTime == rhs.unixTime)
    }

    public init(parsing text: String) throws(ParseError) {
        // Read through the String's own bytes: no copy of them.
        let bytes = text.utf8.span
        var scanner = DigitScanner()
        guard let year = scanner.number(digits: 4, in: bytes), scanner.expect("-", in: bytes),
            let month = scanner.number(digits: 2, in: bytes), scanner.expect("-", in: bytes),
            let day = scanner.number(digits: 2, in: bytes)
        else { throw .malformed(text) }
        guard (1...12).contains(month), (1...daysInMonth(year: year, month: month)).contains(day), year >= 1970 else {
            throw .outOfRange(text)
        }
        if scanner.position == bytes.count {
            self.init(localMidnightOf: daysFromCivil(year: year, month: month, day: day), text: text)
            return
        }
        guard scanner.expect("T", in: bytes) || scanner.expect("t", in: bytes) || scanner.expect(" ", in: bytes),
            let hour = scanner.number(digits: 2, in: bytes), scanner.expect(":", in: bytes), let minute = scanner.number(digits: 2, in: bytes)
        else { throw .malformed(text) }
        var second = 0
        if scanner.expect(":", in: bytes) {
            guard let value = scanner.number(digits: 2, in: bytes) else { throw .malformed(text) }
            second = value
        }
        guard hour < 24, minute < 60, second < 60 else { throw .outOfRange(text) }
        var offsetSeconds = 0
        if scanner.expect("Z", in: bytes) || scanner.expect("z", in: bytes) {
        } else if scanner.peek("+", in: bytes) || scanner.peek("-", in: bytes) {
            let sign = scanner.expect("-", in: bytes) ? -1 : 1
            _ = scanner.expect("+", in: bytes)
            guard let offsetHours = scanner.number(digits: 2, in: bytes) else { throw .malformed(text) }
            _ = scanner.expect(":", in: bytes)
            guard let offsetMinutes = scanner.number(digits: 2, in: bytes) else { throw .malformed(text) }
            guard offsetHours <= 14, offsetMinutes < 60 else { throw .outOfRange(text) }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        } else if scanner.position == bytes.count {
            throw .missingOffset(text)
        } else {
            throw .malformed(text)
        }
        guard scanner.position == bytes.count else { throw .malformed(text) }
        let utc = daysFromCivil(year: year, month: month, day: day) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        self.init(unixTime: utc - Int64(offsetSeconds), text: text, isDateOnly: false)
    }
}

/// A position in a date's bytes, read forward.
private struct DigitScanner {
    var position = 0

    mutating func number(digits: Int, in bytes: Span<UInt8>) -> Int? {
        guard position + digits <= bytes.count else { return nil }
        var value = 0
        for index in position..<position + digits {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        position += digits
        return value
    }

    func peek(_ character: Unicode.Scalar, in bytes: Span<UInt8>) -> Bool {
        position < bytes.count && bytes[position] == UInt8(ascii: character)
    }

    mutating func expect(_ character: Unicode.Scalar, in bytes: Span<UInt8>) -> Bool {
        guard peek(character, in: bytes) else { return false }
        position += 1
        return true
    }
}

func isLeapYear(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

func daysInMonth(year: Int, month: Int) -> Int {
    switch month {
    case 2: isLeapYear(year) ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
    let y = Int64(month <= 2 ? year - 1 : year)
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let m = Int64(month)
    let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
}

/// 00:00 of that day in the system time zone (/etc/localtime, never TZ: see `SystemTimeZone`).
/// Where a change of offset skips midnight, the first time that exists after it; where midnight
/// happens twice, the first.
@inline(never)
func localMidnight(day: Int64) -> Int64 {
    SystemTimeZone.current.firstInstant(atOrAfterLocalTime: day * 86_400)
}

/// The host's local calendar date of a moment, as days since 1970-01-01, so that "days left"
/// counts calendar days the way a person reads a date, across DST changes.
public func localDayNumber(_ unixTime: Int64) -> Int64 {
    SystemTimeZone.current.localTime(at: unixTime).day
}

/// Calendar days from `now` to `until` in the host's time zone, as a person counts them (0 when
/// `until` is today or past). The one count of "days left" every renderer uses (`daysLeftText`,
/// `engage2fa-admin status`).
public func daysLeft(now: Int64, until: Int64) -> Int64 {
    max(0, localDayNumber(until) - localDayNumber(now))
}

/// `YYYY-MM-DD` of a moment in the system time zone.
public func localDateText(_ unixTime: Int64) -> String {
    dateText(day: SystemTimeZone.current.localTime(at: unixTime).day)
}

/// `YYYY-MM-DD HH:MM` of a moment in the system time zone.
public func localDateTimeText(_ unixTime: Int64) -> String {
    let local = SystemTimeZone.current.localTime(at: unixTime)
    let minutes = Int(local.secondsOfDay / 60)
    return dateText(day: local.day) + " " + pad(minutes / 60, 2) + ":" + pad(minutes % 60, 2)
}

private func dateText(day: Int64) -> String {
    let date = civilFromDays(day)
    return pad(date.year, 4) + "-" + pad(date.month, 2) + "-" + pad(date.day, 2)
}

func pad(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.utf8.count)) + digits
}
