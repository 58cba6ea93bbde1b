import XCTest

@testable import Engage2FALogin

/// The scope keys: their grammar, and the decisions they lead to (data: `.noCodeRequired(.exempt(…))`).
final class ScopeTests: XCTestCase {
    let start = utc("2026-12-15T00:00:00Z")
    let active = ActivationState.active(ActivationRecord(activatedAt: utc("2026-12-15T00:00:00Z"), recordedAt: utc("2026-12-15T00:00:00Z")))

    func parsed(_ text: String) -> ParsedConfig { Config.parse("start_date = 2026-12-15T00:00:00Z\n" + text, file: "/etc/engage2fa.conf") }

    func testListsParseWithCommasOrSpacesAndServicesInLowerCase() {
        let config = parsed("exempt_groups = ops, backup  ops\nonly_groups = staff\nexempt_services = Dovecot,cups\n").config
        XCTAssertEqual(config.exemptGroups, ["ops", "backup"])
        XCTAssertEqual(config.onlyGroups, ["staff"])
        XCTAssertEqual(config.exemptServices, ["dovecot", "cups"])
        XCTAssertEqual(config.scopeGroups, ["ops", "backup", "staff"])
    }

    func testBadNamesAndEmptyListsAreErrorsWithTheirLine() {
        let bad = parsed("exempt_groups = ops, ../x\nonly_groups = ,\n")
        XCTAssertEqual(bad.errors.map(\.line), [2, 3])
        XCTAssertTrue(bad.errors[0].message.contains("'../x' is not a valid group name"), bad.errors[0].message)
        XCTAssertTrue(bad.errors[1].message.contains("only_groups needs at least one name"), bad.errors[1].message)
        XCTAssertEqual(bad.config.exemptGroups, [])
    }

    func testExemptionsAreDecisionsOnlyFromAUsablePolicy() {
        var config = parsed("exempt_groups = ops\nexempt_services = cups\n").config
        func decide(_ state: ConfigState, service: String? = nil, membership: GroupMembership) -> PolicyDecision {
            decidePolicy(now: start + 10, user: "alice", config: state, activation: active, enrollment: .notEnrolled,
                         service: service, membership: membership).decision
        }
        XCTAssertEqual(decide(.valid(config), membership: .known(memberOf: ["ops"])), .noCodeRequired(.exempt(.group("ops"))))
        XCTAssertEqual(decide(.valid(config), service: "cups", membership: .unknown), .noCodeRequired(.exempt(.service("cups"))))
        XCTAssertEqual(decide(.valid(config), service: "sshd", membership: .known(memberOf: [])), .refuse(.noDevice(activeSince: start)))
        // A lookup that failed exempts nobody; a broken file grants nothing once active.
        XCTAssertEqual(decide(.valid(config), membership: .unknown), .refuse(.noDevice(activeSince: start)))
        let broken = ConfigState.invalid(config, errors: [ConfigDiagnostic(file: "f", line: 1, severity: .error, message: "x")])
        XCTAssertEqual(decide(broken, service: "cups", membership: .known(memberOf: ["ops"])), .refuse(.noDevice(activeSince: start)))

        config.onlyGroups = ["staff"]
        XCTAssertEqual(decide(.valid(config), membership: .known(memberOf: [])), .noCodeRequired(.exempt(.outsideOnlyGroups)))
        XCTAssertEqual(decide(.valid(config), membership: .known(memberOf: ["staff"])), .refuse(.noDevice(activeSince: start)))
        // An unknown user (or a failed lookup) counts as in only_groups: asked, never let through.
        XCTAssertEqual(decide(.valid(config), membership: .unknown), .refuse(.noDevice(activeSince: start)))
        // exempt_groups wins over only_groups.
        XCTAssertEqual(decide(.valid(config), membership: .known(memberOf: ["staff", "ops"])), .noCodeRequired(.exempt(.group("ops"))))
    }

    func testExemptLoginsSeeNothingAtThePromptAndTheLogSaysWhy() {
        XCTAssertNil(PolicyDecision.NoCode.exempt(.group("ops")).promptText(now: start))
        let outcome = decidePolicy(now: start + 10, user: "alice", config: .valid(parsed("exempt_services = cups\n").config), activation: active,
                                   enrollment: .enrolled(devices: 1, recoveryCodes: 0), service: "cups")
        XCTAssertEqual(outcome.logNotes, ["no code asked: service cups (exempt_services)"])
    }

    func testUnknownGroupsAndServicesAreWarningsOnTheirLine() {
        let file = parsed("exempt_groups = ops, gone\nonly_groups = nope\nexempt_services = cups\n")
        let warnings = file.scopeWarnings(file: "/etc/engage2fa.conf", groupExists: { $0 == "ops" }, serviceExists: { _ in false })
        XCTAssertEqual(warnings.map(\.description), [
            "/etc/engage2fa.conf:2: warning: exempt_groups: no group 'gone' on this host",
            "/etc/engage2fa.conf:3: warning: only_groups: no group 'nope' on this host",
            "/etc/engage2fa.conf:3: warning: only_groups names no group this host has: no login is asked for a code",
            "/etc/engage2fa.conf:4: warning: exempt_services: no PAM service 'cups' (no /etc/pam.d/cups)",
        ])
    }

    func testMembershipThroughTheUserDatabaseIncludesThePrimaryGroup() throws {
        let me = try XCTUnwrap(Account.lookup(uid: getuid()))
        guard case .success(let id?) = groupID(named: "root"), id == me.gid || getuid() == 0 else {
            throw XCTSkip("needs the primary group 'root'")
        }
        XCTAssertEqual(me.membership(of: ["root", "engage2fa-no-such-group"]), .known(memberOf: ["root"]))
        XCTAssertEqual(me.membership(of: []), .known(memberOf: []))
    }
}
