import XCTest

@testable import Engage2FALogin

/// Every row of the policy table, its boundaries and the ratchet.
final class PolicyTests: XCTestCase {
    let start = utc("2026-12-15T00:00:00Z")

    func config(deadlines: [String: String] = [:], start startText: String? = "2026-12-15T00:00:00Z") throws -> Config {
        var config = Config()
        config.startDate = try startText.map { try PolicyDate(parsing: $0) }
        for (user, date) in deadlines { config.deadlines[user] = try PolicyDate(parsing: date) }
        return config
    }

    func decide(_ now: Int64, _ config: ConfigState, _ activation: ActivationState = .never, _ enrollment: EnrollmentState, user: String = "alice") -> PolicyOutcome {
        decidePolicy(now: now, user: user, config: config, activation: activation, enrollment: enrollment)
    }

    func testNotConfiguredAndNeverActivated() {
        let outcome = decide(start, .valid(Config()), .never, .notEnrolled)
        XCTAssertEqual(outcome.decision, .notApplicable(.notConfigured))
        XCTAssertNil(outcome.activationToRecord)
    }

    func testBeforeStartNobodyIsAskedAndTheUnenrolledAreNudged() throws {
        try withTimeZone("UTC") {
            let config = try config(start: "2026-12-15")
            let start = try XCTUnwrap(config.startDate)
            let now = utc("2026-11-29T15:00:00Z")
            XCTAssertEqual(decide(now, .valid(config), .never, .enrolled(devices: 1, recoveryCodes: 0)).decision,
                           .noCodeRequired(.beforeStart(start: start, enrolled: true)))
            XCTAssertEqual(decide(now, .valid(config), .never, .notEnrolled).decision, .noCodeRequired(.beforeStart(start: start, enrolled: false)))
            XCTAssertEqual(decide(self.start - 60, .valid(config), .never, .notEnrolled).decision, .noCodeRequired(.beforeStart(start: start, enrolled: false)))
            XCTAssertNil(decide(now, .valid(config), .never, .notEnrolled).activationToRecord)
            // A start with a time later today.
            let evening = try self.config(start: "2026-12-15T18:00:00Z")
            XCTAssertEqual(decide(self.start + 12 * 3600, .valid(evening), .never, .notEnrolled).decision,
                           .noCodeRequired(.beforeStart(start: try XCTUnwrap(evening.startDate), enrolled: false)))
        }
    }

    func testOneSecondBeforeAndAtStart() throws {
        let config = try config()
        XCTAssertEqual(decide(start - 1, .valid(config), .never, .enrolled(devices: 1, recoveryCodes: 0)).decision,
                       .noCodeRequired(.beforeStart(start: try XCTUnwrap(config.startDate), enrolled: true)))
        let atStart = decide(start, .valid(config), .never, .enrolled(devices: 1, recoveryCodes: 0))
        XCTAssertEqual(atStart.decision, .codeRequired)
        XCTAssertEqual(atStart.activationToRecord, ActivationRecord(activatedAt: start, recordedAt: start))
        XCTAssertEqual(decide(start + 1, .valid(config), .never, .enrolled(devices: 2, recoveryCodes: 0)).decision, .codeRequired)
    }

    func testActiveWithoutDeviceRefusedWithWhyAndWhatToDo() throws {
        try withTimeZone("UTC") {
            let outcome = decide(start + 10, .valid(try config()), .never, .notEnrolled)
            XCTAssertEqual(outcome.decision, .refuse(.noDevice(activeSince: start)))
            XCTAssertNotNil(outcome.activationToRecord)
        }
    }

    /// A `[deadlines]` name is the user database's bytes: "José" spelled with a combining accent (NFD) is
    /// another user than "José" with a precomposed é (NFC), as getpwnam(3) sees them, though Swift's String
    /// `==` calls them equal.
    func testDeadlinesMatchUserNamesByteForByte() throws {
        try withTimeZone("UTC") {
            let config = try config(deadlines: ["Jose\u{301}": "2030-01-01"])
            XCTAssertEqual(decide(start + 3600, .valid(config), .never, .notEnrolled, user: "Jos\u{e9}").decision, .refuse(.noDevice(activeSince: start)))
            let date = try XCTUnwrap(config.deadlines["Jose\u{301}"])
            XCTAssertEqual(decide(start + 3600, .valid(config), .never, .notEnrolled, user: "Jose\u{301}").decision, .noCodeRequired(.personalDeadline(date)))
        }
    }

    func testPersonalDeadlineInTheFutureAndPassed() throws {
        try withTimeZone("UTC") {
            let config = try config(deadlines: ["alice": "2026-12-20"])
            let deadline = try PolicyDate(parsing: "2026-12-20").unixTime
            let date = try XCTUnwrap(config.deadlines["alice"])
            XCTAssertEqual(decide(deadline - 1, .valid(config), .never, .notEnrolled).decision, .noCodeRequired(.personalDeadline(date)))
            XCTAssertEqual(decide(start + 3600, .valid(config), .never, .notEnrolled).decision, .noCodeRequired(.personalDeadline(date)))
            XCTAssertEqual(decide(deadline, .valid(config), .never, .notEnrolled).decision, .refuse(.deadlinePassed(date)))
            // A deadline from root's state counts too, and the later of the two wins.
            let later = try PolicyDate(parsing: "2026-12-22")
            let earlier = try PolicyDate(parsing: "2026-12-18")
            XCTAssertEqual(decidePolicy(now: deadline, user: "alice", config: .valid(config), activation: .never, enrollment: .notEnrolled,
                                        stateDeadline: later).decision, .noCodeRequired(.personalDeadline(later)))
            XCTAssertEqual(decidePolicy(now: start + 3600, user: "alice", config: .valid(config), activation: .never, enrollment: .notEnrolled,
                                        stateDeadline: earlier).decision, .noCodeRequired(.personalDeadline(date)))
            // Another user's deadline does not help bob, and alice's deadline does not spare her a code once enrolled.
            XCTAssertEqual(decide(start + 3600, .valid(config), .never, .notEnrolled, user: "bob").decision, .refuse(.noDevice(activeSince: start)))
            XCTAssertEqual(decide(start + 3600, .valid(config), .never, .enrolled(devices: 1, recoveryCodes: 0)).decision, .codeRequired)
        }
    }

    func testRatchetKeepsEnforcingWhateverStartDateSaysLater() throws {
        let record = ActivationState.active(ActivationRecord(activatedAt: start, recordedAt: start + 5))
        let now = start + 86_400
        let moved = try config(start: "2030-01-01T00:00:00Z")
        let removed = try config(start: nil)
        for config in [moved, removed] {
            XCTAssertEqual(decide(now, .valid(config), record, .enrolled(devices: 1, recoveryCodes: 0)).decision, .codeRequired)
            XCTAssertEqual(decide(now, .valid(config), record, .notEnrolled).decision, .refuse(.noDevice(activeSince: start)))
            XCTAssertNil(decide(now, .valid(config), record, .notEnrolled).activationToRecord)
        }
        // Even a clock set back before the start date does not undo it.
        XCTAssertEqual(decide(start - 86_400 * 30, .valid(removed), record, .enrolled(devices: 1, recoveryCodes: 0)).decision, .codeRequired)
    }

    func testBrokenOrUnreadablePolicyFailsClosedOnlyAfterActivation() throws {
        let record = ActivationState.active(ActivationRecord(activatedAt: start, recordedAt: start))
        let error = ConfigDiagnostic(file: "f", line: 3, severity: .error, message: "bad")
        var partial = try config(deadlines: ["alice": "2030-01-01"])
        partial.startDate = nil
        // After activation: codes required, and a broken file grants no deadline.
        XCTAssertEqual(decide(start + 10, .unreadable(reason: "EIO"), record, .enrolled(devices: 1, recoveryCodes: 0)).decision, .codeRequired)
        XCTAssertEqual(decide(start + 10, .invalid(partial, errors: [error]), record, .notEnrolled).decision, .refuse(.noDevice(activeSince: start)))
        let outcome = decide(start + 10, .unreadable(reason: "EIO"), record, .notEnrolled)
        XCTAssertEqual(outcome.decision, .refuse(.noDevice(activeSince: start)))
        XCTAssertTrue(outcome.logNotes.contains { $0.contains("policy file unreadable: EIO") })
        // Before activation: nobody is locked out by what cannot be read.
        XCTAssertEqual(decide(start + 10, .unreadable(reason: "EIO"), .never, .notEnrolled).decision, .notApplicable(.policyUnreadableNeverActivated))
        XCTAssertEqual(decide(start + 10, .invalid(partial, errors: [error]), .never, .notEnrolled).decision, .notApplicable(.notConfigured))
    }

    func testUnreadableActivationRecordCountsAsActive() throws {
        let outcome = decide(start - 100, .valid(try config()), .unreadable(reason: "mode 666"), .enrolled(devices: 1, recoveryCodes: 0))
        XCTAssertEqual(outcome.decision, .codeRequired)
        XCTAssertNil(outcome.activationToRecord)
    }

    func testUnreadableDeviceFile() throws {
        let config = try config()
        // Before activation an unreadable device file is not worth a nudge; after it, the login is refused.
        XCTAssertEqual(decide(start - 10, .valid(config), .never, .unreadable(reason: "symlink")).decision,
                       .noCodeRequired(.beforeStart(start: try XCTUnwrap(config.startDate), enrolled: true)))
        XCTAssertEqual(decide(start + 10, .valid(config), .never, .unreadable(reason: "symlink")).decision, .refuse(.devicesUnreadable))
    }

    func testDaysLeftCountsCalendarDaysAcrossDSTAndZones() throws {
        // Europe/Amsterdam leaves DST on 2026-10-25: 23 h from 10-24 12:00 to 10-25 12:00 is still one day.
        try withTimeZone("Europe/Amsterdam") {
            let config = try config(start: "2026-10-26")
            let start = try XCTUnwrap(config.startDate)
            let noon24 = try PolicyDate(parsing: "2026-10-24T12:00:00+02:00").unixTime
            XCTAssertEqual(decide(noon24, .valid(config), .never, .notEnrolled).decision, .noCodeRequired(.beforeStart(start: start, enrolled: false)))
            XCTAssertEqual(daysLeft(now: noon24, until: start.unixTime), 2)
            let lateOn25 = try PolicyDate(parsing: "2026-10-25T23:59:59+01:00").unixTime
            XCTAssertEqual(daysLeft(now: lateOn25, until: start.unixTime), 1)
            XCTAssertEqual(decide(lateOn25 + 1, .valid(config), .never, .enrolled(devices: 1, recoveryCodes: 0)).decision, .codeRequired)
        }
        // The same date-only start is a different moment in another zone.
        let tokyo = try withTimeZone("Asia/Tokyo") { try PolicyDate(parsing: "2026-12-15").unixTime }
        let losAngeles = try withTimeZone("America/Los_Angeles") { try PolicyDate(parsing: "2026-12-15").unixTime }
        XCTAssertEqual(losAngeles - tokyo, 17 * 3600)
    }
}
