import Foundation
import XCTest

@testable import Engage2FALogin

/// The TZif reader against glibc: for real zones, zic-made slim and fat files and hand-made TZif,
/// the offset at every change 1970–2100 (and either side of it), at random instants and twice a
/// day, and 00:00 of every day 1970–2100, compared with localtime_r(3)/mktime(3) in this process
/// with TZ naming the same file (the test process may set TZ: here glibc is the reference). Then:
/// TZ in the environment changes nothing the core returns, and /etc/localtime is trusted only as
/// documented.
final class TimeZoneTests: XCTestCase {
    static let zoneinfo = "/usr/share/zoneinfo"
    static let realZones = [
        "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "America/Sao_Paulo",
        "Asia/Kolkata", "Pacific/Kiritimati", "Africa/Casablanca", "UTC",
        // Negative DST, a two-hour DST, negative and 26-hour rule times, a skipped day, a zone that
        // changes at midnight, leap seconds.
        "Europe/Dublin", "Antarctica/Troll", "America/Nuuk", "Asia/Jerusalem", "Pacific/Apia", "America/Havana",
        "America/Santiago", "Asia/Tehran", "America/St_Johns", "Pacific/Kwajalein", "right/Europe/Amsterdam",
    ]

    var savedTZ: String?

    override func setUp() {
        savedTZ = getenv("TZ").map { String(cString: $0) }
    }

    override func tearDown() {
        if let savedTZ { setenv("TZ", savedTZ, 1) } else { unsetenv("TZ") }
        tzset()
        SystemTimeZone.testOverride = nil
    }

    // MARK: - against glibc

    func testRealZonesAgreeWithGlibc() throws {
        for zone in Self.realZones {
            let path = Self.zoneinfo + "/" + zone
            guard FileManager.default.fileExists(atPath: path) else {
                if zone.hasPrefix("right/") { continue }  // tzdata without the leap-second zones
                return XCTFail("\(path) missing")
            }
            try compareWithGlibc(path: path, name: zone)
        }
    }

    func testZicSlimAndFatFilesAgreeWithGlibcAndEachOther() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/zic") else { throw XCTSkip("no zic(8)") }
        let directory = try temporaryDirectory(self)
        let source = directory + "/rules.zi"
        try writeFile(source, """
            # Footer rules from 2005 (slim files leave the rest to the TZ string), an LMT before 1985.
            Rule\tTst\t1990\t2004\t-\tApr\tSun>=1\t2:00\t1:00\tD
            Rule\tTst\t1990\t2004\t-\tOct\tlastSun\t2:00\t0\tS
            Rule\tTst\t2005\tmax\t-\tMar\tSun>=8\t2:00\t1:00\tD
            Rule\tTst\t2005\tmax\t-\tNov\tSun>=1\t2:00\t0\tS
            Zone\tTest/Slim\t-3:30\t-\tLMT\t1985
            \t\t\t-3:00\tTst\tE%sT
            # Southern hemisphere, changes at midnight (DST across the new year).
            Rule\tSth\t2000\tmax\t-\tOct\tSun>=1\t0:00\t1:00\t-
            Rule\tSth\t2001\tmax\t-\tMar\tSun>=15\t0:00\t0\t-
            Zone\tTest/South\t10:00\tSth\t+10/+11
            # Negative DST in winter, as Europe/Dublin.
            Rule\tNeg\t1981\tmax\t-\tMar\tlastSun\t1:00u\t0\t-
            Rule\tNeg\t1996\tmax\t-\tOct\tlastSun\t1:00u\t-1:00\t-
            Zone\tTest/Negative\t1:00\tNeg\tIST/GMT
            # Rule times of 24:00 and later, as Asia/Jerusalem and America/Nuuk.
            Rule\tLate\t1980\tmax\t-\tMar\tFri>=23\t26:00\t1:00\tD
            Rule\tLate\t1980\tmax\t-\tOct\tlastSun\t24:00\t0\tS
            Zone\tTest/Late\t2:00\tLate\tI%sT
            Zone\tTest/Fixed\t5:45\t-\t+0545

            """)
        let zones = ["Test/Slim", "Test/South", "Test/Negative", "Test/Late", "Test/Fixed"]
        for size in ["slim", "fat"] {
            let result = try runProgram("/usr/sbin/zic", ["-b", size, "-d", directory + "/" + size, source])
            XCTAssertEqual(result.status, 0)
        }
        for zone in zones {
            let slim = directory + "/slim/" + zone
            let fat = directory + "/fat/" + zone
            // The slim file must really leave the years after its last transition to the footer.
            let slimRules = zoneRules(slim)
            if zone != "Test/Fixed" {
                XCTAssertLessThan(slimRules.transitions.last ?? 0, utc("2010-01-01T00:00:00Z"), zone)
                guard case .daylightSaving = slimRules.footer else { return XCTFail("\(zone): no DST rule in the footer") }
            }
            try compareWithGlibc(path: slim, name: zone + " (slim)")
            try compareWithGlibc(path: fat, name: zone + " (fat)")
            let fatRules = zoneRules(fat)
            var generator = SystemRandomNumberGenerator()
            // The slim file's footer against the fat file's transitions (to 2037), from 2010. Earlier,
            // slim files can say something else, for glibc too: zic keeps only the types it needs
            // (Test/South's slim file has DST before 2000).
            let from = utc("2010-01-01T00:00:00Z")
            for _ in 0..<5000 {
                let instant = Int64.random(in: from...Self.end2100, using: &generator)
                XCTAssertEqual(slimRules.utcOffset(at: instant), fatRules.utcOffset(at: instant), "\(zone) at \(instant)")
            }
        }
    }

    /// Footer rules straight against glibc's own TZ-string code (TZ=the string), from 1971 (glibc
    /// puts every change before 1971 at the epoch). Among them the rule strings of the attacks.
    func testFooterRulesAgreeWithGlibcTZStrings() throws {
        let strings = [
            "EST5EDT,M3.2.0,M11.1.0", "CET-1CEST,M3.5.0,M10.5.0/3", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
            "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", "IST-2IDT,M3.4.4/26,M10.5.0", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
            "IST-1GMT0,M10.5.0,M3.5.0/1", "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3", "<-03>3<-02>,M9.1.6/24,M4.1.6/24",
            "XXX3YYY,J60/0,J300/0", "XXX-3YYY,59/12:30:15,200", "AAA5BBB,J1/0,J365/25", "AAA-5BBB-6,0/-2,365/-3",
            "<+20>-20<+21>,M1.1.0,M12.5.0/167", "<-20>20<-21>,M2.5.6/-167,M11.3.3/100", "UTC0", "<+0545>-5:45",
            "<-167>24", "<+24>-24",
        ]
        let directory = try temporaryDirectory(self)
        for (index, string) in strings.enumerated() {
            let path = directory + "/footer\(index)"
            // One transition long before 1971, to the standard offset; the footer does the rest.
            let standard = try XCTUnwrap(standardOffset(ofTZString: string), string)
            try Data(makeTZif(transitions: [(-(1 << 40), 0)], types: [(standard, false)], footer: string)).write(to: URL(fileURLWithPath: path))
            let mismatches = compareOffsets(zoneRules(path), Glibc(tz: string), from: utc("1971-01-02T00:00:00Z"), name: string)
            XCTAssertEqual(mismatches, 0, string)
        }
    }

    static let end2100 = utc("2101-01-01T00:00:00Z")

    /// Offsets at every change from `from` to 2100 and either side of it, at random instants and twice
    /// a day; the number that differ (the first few are reported). XCTest's assertions are slow on
    /// Linux: the comparisons are counted, not asserted one by one.
    func compareOffsets(_ rules: TimeZoneRules, _ glibc: Glibc, from start: Int64, name: String, changes: inout Int) -> Int {
        var mismatches = 0
        func expectOffset(_ instant: Int64, _ what: String) {
            guard let expected = glibc.offset(instant) else { return }
            let got = rules.utcOffset(at: instant)
            if got != expected {
                mismatches += 1
                if mismatches <= 5 { XCTFail("\(name): offset at \(instant) (\(what)) is \(got), glibc says \(expected)") }
            }
        }
        var instant = start - 2 * 86_400
        while let next = rules.nextChange(after: instant), next < Self.end2100 {
            for probe in [next - 1, next, next + 1] where probe >= start { expectOffset(probe, "change") }
            instant = next
            changes += 1
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 { expectOffset(Int64.random(in: start...Self.end2100, using: &generator), "random") }
        var probe = start + Int64.random(in: 0..<43_200, using: &generator)
        while probe < Self.end2100 {
            expectOffset(probe, "sample")
            probe += 43_200
        }
        return mismatches
    }

    func compareOffsets(_ rules: TimeZoneRules, _ glibc: Glibc, from start: Int64, name: String) -> Int {
        var changes = 0
        return compareOffsets(rules, glibc, from: start, name: name, changes: &changes)
    }

    /// Offsets as above; midnights every day 1970–2100.
    func compareWithGlibc(path: String, name: String) throws {
        let rules = zoneRules(path)
        let glibc = Glibc(tz: path)
        var changes = 0
        var mismatches = compareOffsets(rules, glibc, from: utc("1970-01-01T00:00:00Z"), name: name, changes: &changes)

        // 00:00 of every day: the first instant at which glibc's clock shows that day, and what
        // mktime(3) says unless midnight is ambiguous or skipped.
        var skipped = 0
        var twice = 0
        for day in daysFromCivil(year: 1970, month: 1, day: 2)...daysFromCivil(year: 2100, month: 12, day: 31) {
            let wall = day * 86_400
            let mine = rules.firstInstant(atOrAfterLocalTime: wall)
            guard let atMine = glibc.localTime(mine), let beforeMine = glibc.localTime(mine - 1) else { continue }
            let date = civilFromDays(day)
            if !(atMine >= wall && beforeMine < wall) {
                mismatches += 1
                if mismatches <= 5 { XCTFail("\(name): \(date) 00:00 is not at \(mine) by glibc's clock (\(atMine - wall), \(beforeMine - wall))") }
                continue
            }
            let fromMktime = glibc.mktime(year: date.year, month: date.month, day: date.day)
            guard fromMktime != mine else { continue }
            if atMine == wall, glibc.localTime(fromMktime) == wall, fromMktime > mine {
                twice += 1  // midnight happens twice: the first is taken, mktime guessed the second
            } else if atMine > wall, fromMktime > mine {
                skipped += 1  // midnight inside a gap: the gap's end, mktime adds the time into the gap
            } else {
                mismatches += 1
                if mismatches <= 5 { XCTFail("\(name): \(date) 00:00 at \(mine), mktime says \(fromMktime)") }
            }
        }
        XCTAssertEqual(mismatches, 0, name)
        XCTAssertLessThan(skipped + twice, 5, "\(name): \(skipped) midnights in a gap, \(twice) twice")
        if name == "Europe/Amsterdam" || name == "America/New_York" { XCTAssertGreaterThan(changes, 250, name) }
    }

    // MARK: - the public functions

    func testLocalDateTextAndDayNumberFollowTheZone() throws {
        for zone in ["Europe/Amsterdam", "Pacific/Chatham", "America/Sao_Paulo", "Pacific/Kiritimati"] {
            try withTimeZone(zone) {
                let glibc = Glibc(tz: Self.zoneinfo + "/" + zone)
                var generator = SystemRandomNumberGenerator()
                for _ in 0..<2000 {
                    var instant = time_t(Int64.random(in: 0...Self.end2100, using: &generator))
                    var fields = tm()
                    XCTAssertNotNil(localtime_r(&instant, &fields))
                    var buffer = [UInt8](repeating: 0, count: 64)
                    let length = buffer.withUnsafeMutableBufferPointer { out in
                        out.withMemoryRebound(to: CChar.self) { strftime($0.baseAddress!, $0.count, "%Y-%m-%d %H:%M", &fields) }
                    }
                    let expected = String(decoding: buffer[..<length], as: UTF8.self)
                    XCTAssertEqual(localDateTimeText(Int64(instant)), expected, zone)
                    XCTAssertEqual(localDateText(Int64(instant)), String(expected.prefix(10)), zone)
                    XCTAssertEqual(localDayNumber(Int64(instant)),
                                   daysFromCivil(year: Int(fields.tm_year) + 1900, month: Int(fields.tm_mon) + 1, day: Int(fields.tm_mday)))
                }
                let midnight = try PolicyDate(parsing: "2026-12-15").unixTime
                XCTAssertEqual(midnight, glibc.mktime(year: 2026, month: 12, day: 15), zone)
            }
        }
        // Extreme instants neither trap nor leave the supported range.
        withTimeZone("Europe/Amsterdam") {
            for instant in [Int64.min, Int64.min + 1, -1, 0, Int64.max - 1, Int64.max] {
                _ = localDateTimeText(instant)
                _ = localDayNumber(instant)
                _ = SystemTimeZone.current.firstInstant(atOrAfterLocalTime: instant)
            }
        }
    }

    func testDaylightSavingEdgesOfPolicyDates() throws {
        // Sao Paulo started DST at 00:00 on 2018-11-04: that day began at 01:00 (03:00 UTC).
        try withTimeZone("America/Sao_Paulo") {
            XCTAssertEqual(try PolicyDate(parsing: "2018-11-04").unixTime, utc("2018-11-04T03:00:00Z"))
            XCTAssertEqual(localDateTimeText(utc("2018-11-04T03:00:00Z")), "2018-11-04 01:00")
            XCTAssertEqual(localDateTimeText(utc("2018-11-04T02:59:59Z")), "2018-11-03 23:59")
        }
        // Apia skipped 2011-12-30 entirely: it "began" when 2011-12-31 did.
        try withTimeZone("Pacific/Apia") {
            XCTAssertEqual(try PolicyDate(parsing: "2011-12-30").unixTime, try PolicyDate(parsing: "2011-12-31").unixTime)
        }
        // Havana ends DST at 01:00 back to 00:00: 2019-11-03 00:00 happens twice, the first counts.
        try withTimeZone("America/Havana") {
            XCTAssertEqual(try PolicyDate(parsing: "2019-11-03").unixTime, utc("2019-11-03T04:00:00Z"))
        }
        // Lord Howe's half-hour DST and Chatham's +12:45/+13:45.
        try withTimeZone("Australia/Lord_Howe") {
            XCTAssertEqual(try PolicyDate(parsing: "2027-01-10").unixTime, utc("2027-01-09T13:00:00Z"))
            XCTAssertEqual(try PolicyDate(parsing: "2027-07-10").unixTime, utc("2027-07-09T13:30:00Z"))
        }
        try withTimeZone("Pacific/Chatham") {
            XCTAssertEqual(try PolicyDate(parsing: "2027-01-10").unixTime, utc("2027-01-09T10:15:00Z"))
        }
    }

    // MARK: - TZ in the environment

    static let hostileTZ = ["<-167>+167", "<+24>-24", ":/etc/passwd", "UTC0", "garbage,,M13.9.9", "Pacific/Kiritimati",
                            "<-20>20<-21>,M2.5.6/-167,M11.3.3/100", "", ":", "/dev/zero", String(repeating: "A", count: 5000)]

    func testTZInTheEnvironmentChangesNothing() throws {
        unsetenv("TZ")
        tzset()
        let instants: [Int64] = [0, utc("2026-12-14T23:30:00Z"), utc("2027-03-28T01:30:00Z"), utc("2099-07-01T12:00:00Z")]
        func snapshot() throws -> [String] {
            var out: [String] = []
            for zone in [nil, "Pacific/Chatham"] as [String?] {
                SystemTimeZone.testOverride = zone.map(zoneRules)
                out.append(String(try PolicyDate(parsing: "2026-12-15").unixTime))
                out.append(String(Config.parse("start_date = 2027-01-10\n", file: "t").config.startDate?.unixTime ?? -1))
                for instant in instants {
                    out += [localDateText(instant), localDateTimeText(instant), String(localDayNumber(instant))]
                }
            }
            SystemTimeZone.testOverride = nil
            let fresh = try SystemTimeZone.load(SystemTimeZone.path)
            out.append(String(fresh.utcOffset(at: instants[1])) + " " + String(fresh.firstInstant(atOrAfterLocalTime: 20_000 * 86_400)))
            return out
        }
        let reference = try snapshot()
        for value in Self.hostileTZ {
            setenv("TZ", value, 1)
            tzset()
            XCTAssertEqual(try snapshot(), reference, "TZ=\(value.prefix(40))")
        }
        // And without TZ the system zone is what glibc reads from /etc/localtime.
        unsetenv("TZ")
        tzset()
        XCTAssertNil(SystemTimeZone.loadError)
        XCTAssertEqual(try PolicyDate(parsing: "2026-12-15").unixTime, Glibc(tz: nil).mktime(year: 2026, month: 12, day: 15))
    }

    // MARK: - trusting /etc/localtime

    func testLinksAreFollowedThroughTrustedDirectories() throws {
        let newYork = zoneRules("America/New_York")
        // A relative link (US/Eastern -> ../America/New_York), a link to a directory (posix/America ->
        // ../America), and a link to /etc/localtime, itself a link.
        XCTAssertEqual(try SystemTimeZone.load(Self.zoneinfo + "/US/Eastern"), newYork)
        XCTAssertEqual(try SystemTimeZone.load(Self.zoneinfo + "/posix/America/New_York"), newYork)
        XCTAssertEqual(try SystemTimeZone.load("//usr/./share/zoneinfo/Europe/../America/New_York"), newYork)
        XCTAssertEqual(try SystemTimeZone.load(Self.zoneinfo + "/localtime"), try SystemTimeZone.load("/etc/localtime"))
        XCTAssertThrowsError(try SystemTimeZone.load("/no/such/localtime")) { error in
            XCTAssertEqual(error as? TimeZoneFileError, .missing(path: "/no"))
        }
        XCTAssertThrowsError(try SystemTimeZone.load("relative/path"))
        XCTAssertThrowsError(try SystemTimeZone.load(Self.zoneinfo)) { error in
            XCTAssertEqual(error as? TimeZoneFileError, .untrusted(path: Self.zoneinfo, reason: "not a regular file"))
        }
        XCTAssertThrowsError(try SystemTimeZone.load("/etc/passwd")) { error in
            guard case .malformed(path: "/etc/passwd", _)? = error as? TimeZoneFileError else { return XCTFail("\(error)") }
        }
        // /tmp can be written by everyone.
        let scratch = try temporaryDirectory(self)
        try Data(try Data(contentsOf: URL(fileURLWithPath: Self.zoneinfo + "/UTC"))).write(to: URL(fileURLWithPath: scratch + "/zone"))
        XCTAssertThrowsError(try SystemTimeZone.load(scratch + "/zone")) { error in
            XCTAssertEqual(error as? TimeZoneFileError, .untrusted(path: "/tmp", reason: "mode 1777 lets group or others write it"))
        }
    }

    /// In a directory of root's that nobody else can write (below the package's .build), each way
    /// a file or a link on the way can be untrustworthy.
    func testUntrustedFilesAndLinksAreRefused() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to own and chown the files") }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let base = package + "/.build/tz-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: base) }
        XCTAssertEqual(chmod(base, 0o755), 0)
        do { _ = try readZoneFile(base + "/none") } catch TimeZoneFileError.missing {
        } catch { throw XCTSkip("the package directory is not trusted: \(error)") }

        let amsterdam = try Data(contentsOf: URL(fileURLWithPath: Self.zoneinfo + "/Europe/Amsterdam"))
        let good = base + "/good"
        try amsterdam.write(to: URL(fileURLWithPath: good))
        XCTAssertEqual(chmod(good, 0o644), 0)
        XCTAssertEqual(try SystemTimeZone.load(good), zoneRules("Europe/Amsterdam"))

        func refused(_ path: String, _ expected: TimeZoneFileError, line: UInt = #line) {
            XCTAssertThrowsError(try SystemTimeZone.load(path), line: line) { error in
                XCTAssertEqual(error as? TimeZoneFileError, expected, line: line)
            }
        }
        let writable = base + "/writable"
        try amsterdam.write(to: URL(fileURLWithPath: writable))
        XCTAssertEqual(chmod(writable, 0o664), 0)
        refused(writable, .untrusted(path: writable, reason: "mode 664 lets group or others write it"))

        let owned = base + "/owned"
        try amsterdam.write(to: URL(fileURLWithPath: owned))
        XCTAssertEqual(chmod(owned, 0o644), 0)
        XCTAssertEqual(chown(owned, 65534, 65534), 0)
        refused(owned, .untrusted(path: owned, reason: "owned by uid 65534, not root"))

        let openDirectory = base + "/open"
        XCTAssertEqual(mkdir(openDirectory, 0o755), 0)
        XCTAssertEqual(chmod(openDirectory, 0o775), 0)
        try amsterdam.write(to: URL(fileURLWithPath: openDirectory + "/zone"))
        refused(openDirectory + "/zone", .untrusted(path: openDirectory, reason: "mode 775 lets group or others write it"))

        // A link owned by someone else (in a directory only root can write: it must have been chowned).
        XCTAssertEqual(symlink(good, base + "/their-link"), 0)
        XCTAssertEqual(lchown(base + "/their-link", 65534, 65534), 0)
        refused(base + "/their-link", .untrusted(path: base + "/their-link", reason: "symbolic link owned by uid 65534, not root"))

        // A relative link and a link to a link, then a loop.
        XCTAssertEqual(symlink("good", base + "/relative"), 0)
        XCTAssertEqual(symlink(base + "/relative", base + "/chain"), 0)
        XCTAssertEqual(try SystemTimeZone.load(base + "/chain"), zoneRules("Europe/Amsterdam"))
        XCTAssertEqual(symlink("loop-b", base + "/loop-a"), 0)
        XCTAssertEqual(symlink("loop-a", base + "/loop-b"), 0)
        refused(base + "/loop-a", .tooManyLinks(path: base + "/loop-a"))
        // A link that leads through a world-writable directory.
        XCTAssertEqual(symlink("/tmp/../" + String(good.dropFirst()), base + "/via-tmp"), 0)
        refused(base + "/via-tmp", .untrusted(path: "/tmp", reason: "mode 1777 lets group or others write it"))

        // Not a regular file, without blocking on a FIFO; too large; not TZif.
        XCTAssertEqual(mkfifo(base + "/fifo", 0o644), 0)
        refused(base + "/fifo", .untrusted(path: base + "/fifo", reason: "not a regular file"))
        refused(base + "/good/x", .untrusted(path: base + "/good", reason: "not a directory"))
        let large = base + "/large"
        try Data(count: TimeZoneRules.maxFileSize + 1).write(to: URL(fileURLWithPath: large))
        XCTAssertEqual(chmod(large, 0o644), 0)
        refused(large, .malformed(path: large, .tooLarge))
        XCTAssertEqual(TimeZoneFileError.malformed(path: large, .tooLarge).description, large + ": not a usable TZif file: larger than 65536 bytes")

        // What the system zone falls back to: UTC, with the reason kept.
        XCTAssertEqual(SystemTimeZone.rulesOrUTC(writable).rules, .utc)
        XCTAssertEqual(SystemTimeZone.rulesOrUTC(writable).error, .untrusted(path: writable, reason: "mode 664 lets group or others write it"))
        XCTAssertEqual(SystemTimeZone.rulesOrUTC("/nonexistent").rules, .utc)
        XCTAssertEqual(SystemTimeZone.rulesOrUTC(good).rules, zoneRules("Europe/Amsterdam"))
        XCTAssertNil(SystemTimeZone.rulesOrUTC(good).error)
    }

    // MARK: - parsing

    func testMalformedTZifIsRefusedAndNothingTraps() throws {
        let real = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.zoneinfo + "/Europe/Amsterdam")))
        XCTAssertNoThrow(try TimeZoneRules(tzif: real))
        // Every truncation.
        for length in 0..<real.count {
            XCTAssertThrowsError(try TimeZoneRules(tzif: Array(real[..<length])), "\(length) bytes")
        }
        // Random damage: parsed or refused, never a trap, and what parses answers within range.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var damaged = real
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if let rules = try? TimeZoneRules(tzif: damaged) {
                for _ in 0..<5 {
                    let instant = Int64.random(in: Int64.min...Int64.max, using: &generator)
                    XCTAssertLessThanOrEqual(abs(rules.utcOffset(at: instant)), 93_599 + 3600)
                    let midnight = rules.firstInstant(atOrAfterLocalTime: instant)
                    _ = rules.localTime(at: midnight)
                }
            }
        }
        // Specific lies.
        func tzif(_ transitions: [(Int64, UInt8)], _ types: [(Int32, Bool)], footer: String = "UTC0", leaps: [(Int64, Int32)] = []) -> [UInt8] {
            makeTZif(transitions: transitions, types: types, footer: footer, leaps: leaps)
        }
        XCTAssertNoThrow(try TimeZoneRules(tzif: tzif([(0, 0), (100, 1)], [(0, false), (3600, true)])))
        XCTAssertThrowsError(try TimeZoneRules(tzif: tzif([(100, 0), (100, 0)], [(0, false)])), "not ascending")
        XCTAssertThrowsError(try TimeZoneRules(tzif: tzif([(0, 1)], [(0, false)])), "type index")
        XCTAssertThrowsError(try TimeZoneRules(tzif: tzif([], [(93_600, false)])), "offset")
        XCTAssertThrowsError(try TimeZoneRules(tzif: tzif([], [(Int32.min, false)])), "offset")
        XCTAssertThrowsError(try TimeZoneRules(tzif: tzif([], [])), "no types")
        XCTAssertThrowsError(try TimeZoneRules(tzif: tzif([], [(0, false)], leaps: [(10, 1), (5, 2)])), "leaps not ascending")
        XCTAssertThrowsError(try TimeZoneRules(tzif: tzif([], [(0, false)], leaps: [(10, 4000)])), "leap correction")
        for footer in ["EST", "EST25", "<AB>5", "EST5EDT,M13.1.0,M1.1.0", "EST5EDT,M3.2.0", "EST5EDT,M3.2.0,M11.1.0,x",
                       "EST5EDT,J0,J1", "EST5EDT,366,0", "EST5EDT,M3.6.0,M11.1.0", "EST5EDT,M3.2.7,M11.1.0",
                       "EST5EDT,M3.2.0/168,M11.1.0", "EST5:60", "EST5EDT4:00:60", "5EST", "EST5\nEDT", "EST0000005"] {
            XCTAssertThrowsError(try TimeZoneRules(tzif: tzif([(0, 0)], [(0, false)], footer: footer)), footer)
        }
        // A count far beyond the file.
        var huge = tzif([], [(0, false)])
        huge.replaceSubrange(32..<36, with: [0xFF, 0xFF, 0xFF, 0xFF])
        XCTAssertThrowsError(try TimeZoneRules(tzif: huge))
        // Version 1 data only (no footer): the last type holds after the last transition.
        let version1 = makeTZif(transitions: [(0, 1), (1000, 0)], types: [(0, false), (7200, true)], footer: nil)
        let rules = try TimeZoneRules(tzif: version1)
        XCTAssertEqual(rules.utcOffset(at: -5), 0)
        XCTAssertEqual(rules.utcOffset(at: 500), 7200)
        XCTAssertEqual(rules.utcOffset(at: 1 << 50), 0)
        // No transitions: the footer from the beginning of time (RFC 8536).
        let footerOnly = try TimeZoneRules(tzif: tzif([], [(-18_000, false)], footer: "EST5EDT,M3.2.0,M11.1.0"))
        XCTAssertEqual(footerOnly.utcOffset(at: utc("1990-07-01T00:00:00Z")), -14_400)
        XCTAssertEqual(footerOnly.utcOffset(at: utc("1990-01-01T00:00:00Z")), -18_000)
    }

    func testLeapSecondCorrectionsAsGlibc() throws {
        // right/ zones: the offset includes the correction, as glibc's localtime does (the leap
        // seconds of 1972, where glibc shows 23:59:60).
        let path = try temporaryDirectory(self) + "/leaps"
        try Data(makeTZif(transitions: [(0, 0)], types: [(3600, false)], footer: "<+01>-1", leaps: [(78_796_800, 1), (94_694_401, 2), (126_230_402, 3)]))
            .write(to: URL(fileURLWithPath: path))
        try compareWithGlibc(path: path, name: "leaps")
    }
}

/// glibc as the reference: TZ set to a file (or a rule string, or nothing), then localtime_r/mktime.
struct Glibc {
    init(tz: String?) {
        if let tz { setenv("TZ", tz, 1) } else { unsetenv("TZ") }
        tzset()
    }

    /// Seconds east of UTC, leap-second correction included: the local fields read as UTC, minus the
    /// instant (by arithmetic: glibc's timegm applies a "right/" zone's leap seconds too).
    func offset(_ instant: Int64) -> Int64? {
        var seconds = time_t(instant)
        var fields = tm()
        guard localtime_r(&seconds, &fields) != nil, fields.tm_sec != 60 else { return nil }
        let day = daysFromCivil(year: Int(fields.tm_year) + 1900, month: Int(fields.tm_mon) + 1, day: Int(fields.tm_mday))
        return day * 86_400 + Int64(fields.tm_hour) * 3600 + Int64(fields.tm_min) * 60 + Int64(fields.tm_sec) - instant
    }

    /// Local time as seconds since 1970-01-01 00:00 local.
    func localTime(_ instant: Int64) -> Int64? { offset(instant).map { instant + $0 } }

    func mktime(year: Int, month: Int, day: Int) -> Int64 {
        var fields = tm()
        fields.tm_year = Int32(year - 1900)
        fields.tm_mon = Int32(month - 1)
        fields.tm_mday = Int32(day)
        fields.tm_isdst = -1
        return Int64(Foundation.mktime(&fields))
    }
}

/// The standard offset (seconds east) a POSIX TZ string starts with, read by the core's own parser.
func standardOffset(ofTZString string: String) -> Int32? {
    switch try? parsePOSIXTimeZone(Array(string.utf8)[...]) {
    case .fixed(let offset)?: Int32(offset)
    case .daylightSaving(let standard, _, _, _)?: Int32(standard)
    default: nil
    }
}

/// A TZif file: version 2 with a minimal version 1 block, or (footer nil) version 1 only.
func makeTZif(transitions: [(Int64, UInt8)], types: [(Int32, Bool)], footer: String?, leaps: [(Int64, Int32)] = []) -> [UInt8] {
    func be(_ value: Int64, _ size: Int) -> [UInt8] { (0..<size).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    func header(version: UInt8, leaps: Int, times: Int, types: Int, characters: Int) -> [UInt8] {
        Array("TZif".utf8) + [version] + [UInt8](repeating: 0, count: 15)
            + be(0, 4) + be(0, 4) + be(Int64(leaps), 4) + be(Int64(times), 4) + be(Int64(types), 4) + be(Int64(characters), 4)
    }
    func block(timeSize: Int) -> [UInt8] {
        var out = header(version: footer == nil ? 0 : UInt8(ascii: "2"), leaps: leaps.count, times: transitions.count, types: types.count, characters: 4)
        for (time, _) in transitions { out += be(time, timeSize) }
        for (_, type) in transitions { out.append(type) }
        for (offset, isDaylight) in types { out += be(Int64(offset), 4) + [isDaylight ? 1 : 0, 0] }
        out += Array("ZZZ\0".utf8)
        for (time, correction) in leaps { out += be(time, timeSize) + be(Int64(correction), 4) }
        return out
    }
    guard let footer else { return block(timeSize: 4) }
    // A version 1 block of one type, as zic -b slim writes.
    let minimal = header(version: UInt8(ascii: "2"), leaps: 0, times: 0, types: 1, characters: 1) + [0, 0, 0, 0, 0, 0, 0]
    return minimal + block(timeSize: 8) + [0x0A] + Array(footer.utf8) + [0x0A]
}

