import XCTest

@testable import Engage2FALogin

/// The exact sentences the person at the PAM prompt meets for each decision (PolicyTests assert the
/// decisions themselves).
final class PromptTextTests: XCTestCase {
    let start = utc("2026-12-15T00:00:00Z")

    func testDaysLeftTextIsTodayOneDayOrNDays() throws {
        try withTimeZone("UTC") {
            let start = try PolicyDate(parsing: "2026-12-15").unixTime
            XCTAssertEqual(daysLeftText(now: utc("2026-11-29T15:00:00Z"), until: start), "in 16 days")
            // A minute before midnight the start is tomorrow's date: one calendar day.
            XCTAssertEqual(daysLeftText(now: start - 60, until: start), "in 1 day")
            XCTAssertEqual(daysLeftText(now: start - 86_400 + 1, until: start), "in 1 day")
            XCTAssertEqual(daysLeftText(now: start - 86_400 - 1, until: start), "in 2 days")
            XCTAssertEqual(daysLeftText(now: start, until: start), "today")
            XCTAssertEqual(daysLeftText(now: start + 86_400 * 3, until: start), "today", "a past date is never negative")
        }
    }

    func testDaysLeftTextCountsCalendarDaysAcrossDST() throws {
        try withTimeZone("Europe/Amsterdam") {
            let start = try PolicyDate(parsing: "2026-10-26").unixTime
            XCTAssertEqual(daysLeftText(now: try PolicyDate(parsing: "2026-10-24T12:00:00+02:00").unixTime, until: start), "in 2 days")
            XCTAssertEqual(daysLeftText(now: try PolicyDate(parsing: "2026-10-25T23:59:59+01:00").unixTime, until: start), "in 1 day")
        }
    }

    func testBeforeStartNotice() throws {
        try withTimeZone("UTC") {
            let date = try PolicyDate(parsing: "2026-12-15")
            XCTAssertNil(PolicyDecision.NoCode.beforeStart(start: date, enrolled: true).promptText(now: start - 86_400))
            XCTAssertEqual(PolicyDecision.NoCode.beforeStart(start: date, enrolled: false).promptText(now: utc("2026-11-29T15:00:00Z")),
                           "Two-factor authentication becomes mandatory on 2026-12-15 (in 16 days). Run engage2fa-enroll to link your authenticator app.")
            XCTAssertEqual(PolicyDecision.NoCode.beforeStart(start: date, enrolled: false).promptText(now: start - 60),
                           "Two-factor authentication becomes mandatory on 2026-12-15 (in 1 day). Run engage2fa-enroll to link your authenticator app.")
            // A start with a time later today.
            let evening = try PolicyDate(parsing: "2026-12-15T18:00:00Z")
            XCTAssertEqual(PolicyDecision.NoCode.beforeStart(start: evening, enrolled: false).promptText(now: start + 12 * 3600),
                           "Two-factor authentication becomes mandatory on 2026-12-15 18:00 (today). Run engage2fa-enroll to link your authenticator app.")
        }
    }

    func testPersonalDeadlineNotice() throws {
        try withTimeZone("UTC") {
            let deadline = try PolicyDate(parsing: "2026-12-20")
            XCTAssertEqual(PolicyDecision.NoCode.personalDeadline(deadline).promptText(now: deadline.unixTime - 1),
                           "Two-factor authentication is mandatory on this host. Your personal deadline is 2026-12-20 (in 1 day): link your authenticator app before then with engage2fa-enroll.")
            XCTAssertEqual(PolicyDecision.NoCode.personalDeadline(deadline).promptText(now: start + 3600),
                           "Two-factor authentication is mandatory on this host. Your personal deadline is 2026-12-20 (in 5 days): link your authenticator app before then with engage2fa-enroll.")
        }
    }

    func testRefusalsSayWhyAndWhatToDo() throws {
        try withTimeZone("UTC") {
            XCTAssertEqual(PolicyDecision.Refusal.noDevice(activeSince: start).promptText(user: "alice"),
                           "Two-factor authentication has been mandatory since 2026-12-15, and you have not linked an authenticator app. "
                           + "Ask an administrator for a personal deadline (engage2fa-admin extend alice DATE), then log in and run engage2fa-enroll.")
            XCTAssertEqual(PolicyDecision.Refusal.deadlinePassed(try PolicyDate(parsing: "2026-12-20")).promptText(user: "alice"),
                           "Your deadline to link an authenticator app passed on 2026-12-20. "
                           + "Ask an administrator for a personal deadline (engage2fa-admin extend alice DATE), then log in and run engage2fa-enroll.")
            XCTAssertEqual(PolicyDecision.Refusal.devicesUnreadable.promptText(user: "alice"),
                           "Two-factor authentication is mandatory, and your authenticator devices could not be read. Ask an administrator to check the system log.")
            // The name is escaped: no byte of it reaches the terminal raw.
            XCTAssertFalse(PolicyDecision.Refusal.noDevice(activeSince: start).promptText(user: "ev\u{1b}[2Jil").contains("\u{1b}"))
        }
    }
}
