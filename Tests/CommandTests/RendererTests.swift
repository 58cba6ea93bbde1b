import XCTest

@testable import Engage2FAAdmin
@testable import Engage2FALogin
@testable import Engage2FAManagement
@testable import Engage2FAEnroll

/// The words `engage2fa-admin status` and `engage2fa-enroll status` give each decision.
final class RendererTests: XCTestCase {
    func status(_ state: UserStatus.State, devices: [String] = []) -> UserStatus {
        UserStatus(user: "alice", deviceNames: devices, recoveryCodesLeft: 0, deadline: nil, state: state)
    }

    func testAdminStatusStateText() throws {
        let deadline = try PolicyDate(parsing: "2031-03-04")
        XCTAssertEqual(status(.notActiveYet).stateText, "not active yet")
        XCTAssertEqual(status(.enforced).stateText, "enforced")
        XCTAssertEqual(status(.grace(until: deadline, days: 4)).stateText, "grace until 2031-03-04 (4 days)")
        XCTAssertEqual(status(.grace(until: deadline, days: 1)).stateText, "grace until 2031-03-04 (1 day)")
        XCTAssertEqual(status(.refused(.noDevice(activeSince: 0))).stateText, "refused: no device, no deadline")
        XCTAssertEqual(status(.refused(.deadlinePassed(deadline))).stateText, "refused: no device, deadline passed")
        XCTAssertEqual(status(.notConfigured).stateText, "2FA not configured")
        XCTAssertEqual(status(.refused(.noDevice(activeSince: 0))).readiness, "overdue")
        XCTAssertEqual(status(.grace(until: deadline, days: 4)).readiness, "pending")
    }

    func testEnrollStatusText() throws {
        do {
            // Local midnight of the start date, less two and a half days: three calendar days in any zone.
            let start = try PolicyDate(parsing: "2026-12-15")
            let now = start.unixTime - 2 * 86_400 - 43_200
            XCTAssertEqual(statusText(.noCodeRequired(.beforeStart(start: start, enrolled: true)), enrollment: .enrolled(devices: 2, recoveryCodes: 10), user: "alice", now: now),
                           "Two-factor authentication becomes mandatory on 2026-12-15. You have 2 linked devices. You are ready.")
            XCTAssertEqual(statusText(.noCodeRequired(.beforeStart(start: start, enrolled: false)), enrollment: .notEnrolled, user: "alice", now: now),
                           "Two-factor authentication becomes mandatory on 2026-12-15 (in 3 days). Run engage2fa-enroll to link your authenticator app.")
            XCTAssertEqual(statusText(.notApplicable(.notConfigured), enrollment: .notEnrolled, user: "alice", now: now),
                           "Two-factor authentication is not enabled on this host. You have no linked device.")
            XCTAssertEqual(statusText(.codeRequired, enrollment: .enrolled(devices: 0, recoveryCodes: 1), user: "alice", now: now),
                           "Two-factor authentication is active: logins ask for a code. You have no linked device, but 1 recovery code left: link a new device with engage2fa-enroll.")
            XCTAssertEqual(statusText(.refuse(.noDevice(activeSince: start.unixTime)), enrollment: .notEnrolled, user: "alice", now: now),
                           PolicyDecision.Refusal.noDevice(activeSince: start.unixTime).promptText(user: "alice"))
        }
    }
}
