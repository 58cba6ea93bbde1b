import Foundation
import XCTest

@testable import Engage2FALogin
@testable import Engage2FAManagement

// The whole login flow (Login.run: policy, activation record, devices, state, decision, prompt, the check
// under the user's lock, what is recorded and logged) through its seams, without root: a scripted
// conversation, a recording log, a settable clock, and a temporary directory for the policy file, the
// state_dir, the activation root (owned by whoever runs the tests) and admin-managed device storage
// (`secret_path = DIR/devices/%u`) for the account that runs the tests. Each test is named after the
// rule it checks; Tests/README.md maps the rules to these names.

/// What the person at the prompt would see and type: answers are given in order, nil (or running out)
/// ends the conversation as a closed ssh session would.
final class RecordingConversation: LoginConversation {
    var answers: [[UInt8]?]
    private(set) var prompts: [String] = []
    private(set) var infos: [String] = []
    private(set) var errors: [String] = []
    /// Called with each prompt before it is answered (to change files while the login waits).
    var onAsk: ((String) -> Void)?

    init(answers: [[UInt8]?] = []) { self.answers = answers }

    func askHidden(_ prompt: String) -> [UInt8]? {
        prompts.append(prompt)
        onAsk?(prompt)
        return answers.isEmpty ? nil : answers.removeFirst()
    }

    func showInfo(_ text: String) { infos.append(text) }
    func showError(_ text: String) { errors.append(text) }

    /// PAM_AUTHTOK as an earlier module left it, and what this module forwarded.
    var earlier: [UInt8]?
    private(set) var forwarded: [[UInt8]] = []
    func earlierPassword() -> [UInt8]? { earlier }
    func forwardPassword(_ password: [UInt8]) { forwarded.append(password) }
}

/// What the module would send to syslog.
final class RecordingLog: LoginLog {
    private(set) var lines: [(priority: LogPriority, message: String)] = []
    func log(_ priority: LogPriority, _ message: MessageText) { lines.append((priority, message.text)) }
    var messages: [String] { lines.map { $0.message } }
}

/// The login's clock (`Login.now`), set by the test.
final class TestClock {
    var now: Int64
    init(_ now: Int64) { self.now = now }
}

/// One login as the test saw it.
struct LoginRun {
    var result: LoginResult
    var conversation: RecordingConversation
    /// The log lines of this login only.
    var log: [String]
    var prompts: [String] { conversation.prompts }
    var infos: [String] { conversation.infos }
    var errors: [String] { conversation.errors }
}

/// A host in a temporary directory: the policy file, state_dir, activation root and device storage of
/// one account (the one running the tests), and every secret and code it handed out, so that each
/// login's log can be checked for them.
final class LoginHost {
    let directory: String
    let configPath: String
    let stateDir: String
    let activationRoot: String
    let devicesDir: String
    let account: Account
    let clock: TestClock
    let log = RecordingLog()
    /// Devices and recovery codes of the account's file, as last written by `writeDevices`.
    var file = DeviceFile()
    private var secrets: [[UInt8]] = []
    private var recoveryCodes: [String] = []

    init(_ test: XCTestCase, now: Int64 = LoginTests.now) throws {
        directory = try temporaryDirectory(test)
        configPath = directory + "/engage2fa.conf"
        stateDir = directory + "/state"
        activationRoot = directory + "/activation-root"
        devicesDir = directory + "/devices"
        XCTAssertEqual(mkdir(devicesDir, 0o700), 0)
        account = try XCTUnwrap(Account.lookup(uid: getuid()), "the user running the tests has no passwd entry")
        clock = TestClock(now)
    }

    var store: StateStore { StateStore(directory: stateDir) }
    var activationStore: ActivationStore { ActivationStore(configPath: configPath, root: activationRoot, owner: geteuid()) }
    func devicePath(_ user: String? = nil) -> String { devicesDir + "/" + (user ?? account.name) }

    /// Writes the policy file (root's or ours, mode 644, as the module requires) with this host's paths.
    func configure(start: String?, _ extra: String = "", mode: mode_t = 0o644) throws {
        var text = "state_dir = \(stateDir)\nsecret_path = \(devicesDir)/%u\n"
        if let start { text += "start_date = \(start)\n" }
        text += extra
        try writeFile(configPath, text, mode: mode)
    }

    /// A start date long past: 2FA is mandatory (and the first login records it).
    func activate(_ extra: String = "") throws { try configure(start: "2020-01-01T00:00:00Z", extra) }

    /// Adds a device (SHA1, 6 digits, 30 s unless told) to the account's file and writes the file.
    @discardableResult
    func addDevice(_ name: String = "Phone", verifiedStep: Int64? = nil) throws -> Device {
        let secret = try newSecret()
        secrets.append(secret)
        let device = try file.addDevice(name: name, secret: secret, parameters: OTPParameters(), now: clock.now, verifiedStep: verifiedStep)
        try writeDevices()
        return device
    }

    /// Gives the account a set of recovery codes (1,000 PBKDF2 iterations: the least the parser takes).
    func addRecoveryCodes(keep: Int = RecoveryCodes.codeCount) throws -> [String] {
        var (codes, stored) = try RecoveryCodes.generate(now: clock.now, iterations: 1000)
        codes = Array(codes.prefix(keep))
        stored.hashes = Array(stored.hashes.prefix(keep))
        recoveryCodes += codes
        file.recovery = stored
        try writeDevices()
        return codes
    }

    /// Writes `file` as the account's device file (mode 600, owned by whoever runs the tests).
    func writeDevices(_ file: DeviceFile? = nil, for user: String? = nil) throws {
        try writeFileAtomically(devicePath(user), contents: (file ?? self.file).serialized(), permissions: .ownerReadWrite)
    }

    func state() throws -> UserState { try store.read(account: account) }

    func changeState(_ change: (inout UserState) -> Void) throws {
        try store.transaction(account: account, devices: nil) { (state: inout UserState, _: DeviceFile?) throws(CoreError) in change(&state) }
    }

    /// The device's code at the host's clock, `steps` periods away.
    func code(_ device: Device, steps: Int64 = 0) -> [UInt8] {
        totp(secret: device.secret, at: clock.now + steps * Int64(device.parameters.period), parameters: device.parameters)
    }

    /// Six digits that are none of the device's codes within `window` steps of now.
    func wrongCode(_ device: Device, window: Int64 = 1) -> [UInt8] {
        let valid = (-window...window).map { code(device, steps: $0) }
        var candidate = 0
        while true {
            let digits = Array(String(format: "%06d", candidate).utf8)
            if !valid.contains(digits) { return digits }
            candidate += 111_111
        }
    }

    /// Runs one login of `user` (the account by default) with the answers given, through every seam.
    func login(
        _ user: String? = nil, answers: [[UInt8]?] = [], privileged: Bool = true, debug: Bool = true,
        passwordEntry: PasswordEntry = .separate, earlierPassword: [UInt8]? = nil,
        onAsk: ((String) -> Void)? = nil, file: StaticString = #filePath, line: UInt = #line
    ) -> LoginRun {
        let conversation = RecordingConversation(answers: answers)
        conversation.onAsk = onAsk
        conversation.earlier = earlierPassword
        var login = Login(user: user ?? account.name, configPath: configPath, conversation: conversation, log: log)
        login.passwordEntry = passwordEntry
        let clock = self.clock
        login.now = { clock.now }
        login.debug = debug
        login.privileged = privileged
        login.activationRoot = activationRoot
        login.activationOwner = geteuid()
        let before = log.lines.count
        let result = login.run()
        let run = LoginRun(result: result, conversation: conversation, log: Array(log.messages[before...]))
        assertNothingSecret(in: run, typed: answers.compactMap { $0 }, file: file, line: line)
        return run
    }

    /// No log line holds a code that was typed, a secret, or a recovery code; nothing shown to the person
    /// echoes what they typed.
    private func assertNothingSecret(in run: LoginRun, typed: [[UInt8]], file: StaticString, line: UInt) {
        let typedTexts = typed.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespaces) }.filter { $0.count >= 6 }
        let secretTexts = secrets.flatMap { [Base32.encode($0), hexString($0)] }
            + recoveryCodes.flatMap { [$0, $0.replacingOccurrences(of: "-", with: "")] }
        for message in run.log {
            for text in secretTexts where message.contains(text) {
                XCTFail("log line holds a secret or recovery code: \(message)", file: file, line: line)
            }
            for text in typedTexts where containsToken(message, text) {
                XCTFail("log line holds the code typed (\(text)): \(message)", file: file, line: line)
            }
        }
        for message in run.infos + run.errors {
            for text in typedTexts where containsToken(message, text) {
                XCTFail("message shown to the person echoes the code typed: \(message)", file: file, line: line)
            }
        }
    }
}

/// `token` in `text` not as part of a longer run of letters or digits (a sha256 in a path may hold six
/// digits in a row by chance; the code as a word may not appear).
func containsToken(_ text: String, _ token: String) -> Bool {
    let characters = Array(text.unicodeScalars), wanted = Array(token.unicodeScalars)
    guard wanted.count <= characters.count else { return false }
    func isWordCharacter(_ index: Int) -> Bool {
        index >= 0 && index < characters.count && CharacterSet.alphanumerics.contains(characters[index])
    }
    for start in 0...(characters.count - wanted.count) where Array(characters[start..<start + wanted.count]) == wanted {
        if !isWordCharacter(start - 1) && !isWordCharacter(start + wanted.count) { return true }
    }
    return false
}

final class LoginTests: XCTestCase {
    /// The clock of most tests: a few days after the usual start date, mid-step.
    static let now = utc("2026-12-20T12:00:10Z")
    /// The start date of most tests: before `now`, after the clock of the tests of "before the start date".
    let start = "2026-12-15T00:00:00Z"
    let wrongMessage = "Wrong verification code."

    // MARK: Not configured, before the start date

    func testNotConfiguredIsNotApplicableWithoutAPrompt() throws {
        let host = try LoginHost(self, now: utc("2026-12-01T00:00:00Z"))
        try host.addDevice()
        try host.configure(start: nil)
        let run = host.login()
        XCTAssertEqual(run.result, .notApplicable)
        XCTAssertEqual(run.prompts, [])
        XCTAssertEqual(run.infos + run.errors, [])
        XCTAssertEqual(host.activationStore.read(), .never)
        // An unenrolled user too: nobody is told anything while 2FA is not configured.
        try host.writeDevices(DeviceFile())
        let unenrolled = host.login()
        XCTAssertEqual(unenrolled.result, .notApplicable)
        XCTAssertEqual(unenrolled.prompts + unenrolled.infos + unenrolled.errors, [])
    }

    func testBeforeStartEnrolledUserIsSilent() throws {
        let host = try LoginHost(self, now: utc("2026-12-01T00:00:00Z"))
        try host.addDevice()
        try host.configure(start: start)
        let run = host.login()
        XCTAssertEqual(run.result, .notApplicable)
        XCTAssertEqual(run.prompts + run.infos + run.errors, [])
        XCTAssertEqual(host.activationStore.read(), .never)
    }

    func testBeforeStartUnenrolledUserIsToldTheDateAndDaysLeft() throws {
        try withTimeZone("UTC") {
            let host = try LoginHost(self, now: utc("2026-11-29T15:00:00Z"))
            try host.configure(start: "2026-12-15")
            let run = host.login()
            XCTAssertEqual(run.result, .notApplicable)
            XCTAssertEqual(run.prompts, [])
            XCTAssertEqual(run.infos, ["Two-factor authentication becomes mandatory on 2026-12-15 (in 16 days). Run engage2fa-enroll to link your authenticator app."])
            XCTAssertEqual(run.errors, [])
            host.clock.now = utc("2026-12-14T23:59:00Z")
            XCTAssertEqual(host.login().infos, ["Two-factor authentication becomes mandatory on 2026-12-15 (in 1 day). Run engage2fa-enroll to link your authenticator app."])
        }
    }

    // MARK: Activation and the ratchet

    func testActivationIsRecordedOnceAtTheStartDate() throws {
        let startTime = utc(start)
        let host = try LoginHost(self, now: startTime - 1)
        let device = try host.addDevice()
        try host.configure(start: start)
        XCTAssertEqual(host.login().result, .notApplicable)
        XCTAssertEqual(host.activationStore.read(), .never, "one second before the start date nothing is recorded")

        host.clock.now = startTime
        let first = host.login(answers: [host.code(device)])
        XCTAssertEqual(first.prompts, [loginPrompt])
        XCTAssertEqual(first.result, .success)
        XCTAssertEqual(host.activationStore.read(), .active(ActivationRecord(activatedAt: startTime, recordedAt: startTime,
                                                                             configPath: host.configPath, stateDirectory: host.stateDir)))
        XCTAssertEqual(first.log.filter { $0.hasPrefix("2FA is now mandatory: activation recorded in \(host.activationStore.recordPath)") }.count, 1, "\(first.log)")

        host.clock.now = startTime + 100
        let second = host.login(answers: [host.code(device)])
        XCTAssertEqual(second.result, .success)
        XCTAssertEqual(host.activationStore.read(), .active(ActivationRecord(activatedAt: startTime, recordedAt: startTime,
                                                                             configPath: host.configPath, stateDirectory: host.stateDir)),
                       "written once, never replaced")
        XCTAssertFalse(second.log.contains { $0.contains("now mandatory") }, "\(second.log)")
    }

    /// Activates the host with one enrolled device; returns it.
    func activatedHost() throws -> (LoginHost, Device) {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.configure(start: start)
        XCTAssertEqual(host.login(answers: [host.code(device)]).result, .success)
        XCTAssertNotEqual(host.activationStore.read(), .never, "activation recorded")
        host.clock.now += 30
        return (host, device)
    }

    func testRatchetStartDateRemovedStillRequiresACode() throws {
        let (host, device) = try activatedHost()
        try host.configure(start: nil)
        let run = host.login(answers: [host.code(device)])
        XCTAssertEqual(run.prompts, [loginPrompt])
        XCTAssertEqual(run.result, .success)
        XCTAssertTrue(run.log.contains { $0.contains("no start_date in the policy file; enforcing because 2FA was activated") }, "\(run.log)")
    }

    func testRatchetStartDateMovedLaterStillRequiresACode() throws {
        let (host, device) = try activatedHost()
        try host.configure(start: "2030-01-01T00:00:00Z")
        let run = host.login(answers: [host.wrongCode(device)])
        XCTAssertEqual(run.prompts, [loginPrompt])
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.errors, [wrongMessage])
    }

    /// Enforced: the login is either asked for a code or refused, never let through. The answer is nil, so
    /// a login that falls back to the default paths (~/.engage2fa, /var/lib/engage2fa) writes nothing there.
    func assertEnforced(_ run: LoginRun, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(run.result, .notApplicable, "\(run.log)", file: file, line: line)
        XCTAssertNotEqual(run.result, .success, file: file, line: line)
        XCTAssertTrue(run.prompts == [loginPrompt] || !run.errors.isEmpty, "neither asked nor refused: \(run)", file: file, line: line)
    }

    func testRatchetPolicyFileDeletedStillEnforced() throws {
        let (host, _) = try activatedHost()
        XCTAssertEqual(unlink(host.configPath), 0)
        assertEnforced(host.login(answers: [nil]))
    }

    func testRatchetPolicyFileMode664StillEnforced() throws {
        let (host, _) = try activatedHost()
        XCTAssertEqual(chmod(host.configPath, 0o664), 0)
        let run = host.login(answers: [nil])
        assertEnforced(run)
        XCTAssertTrue(run.log.contains { $0.contains("policy file unreadable") && $0.contains("mode 664") }, "\(run.log)")
    }

    func testRatchetInvalidPolicyFileStillRequiresACode() throws {
        let (host, device) = try activatedHost()
        // The settings that parse (state_dir, secret_path) are kept; start_date is gone and a line is broken.
        try host.configure(start: nil, "window = 99\n")
        let run = host.login(answers: [host.code(device)])
        XCTAssertEqual(run.prompts, [loginPrompt])
        XCTAssertEqual(run.result, .success)
        XCTAssertTrue(run.log.contains { $0.contains("policy file has 1 error(s)") }, "\(run.log)")
    }

    func testUntrustedActivationRecordIsEnforced() throws {
        let host = try LoginHost(self, now: utc("2026-12-01T00:00:00Z"))
        let device = try host.addDevice()
        try host.configure(start: start)  // not reached: without a record, nobody is asked
        XCTAssertEqual(mkdir(host.activationRoot, 0o755), 0)
        XCTAssertEqual(mkdir(host.activationRoot + "/activation.d", 0o755), 0)
        try writeFile(host.activationStore.recordPath, "not a record\n", mode: 0o644)
        let garbage = host.login(answers: [host.code(device)])
        XCTAssertEqual(garbage.prompts, [loginPrompt])
        XCTAssertEqual(garbage.result, .success)
        XCTAssertTrue(garbage.log.contains { $0.contains("activation record unreadable") }, "\(garbage.log)")

        // A directory others can write to: a record missing from it proves nothing.
        XCTAssertEqual(unlink(host.activationStore.recordPath), 0)
        XCTAssertEqual(chmod(host.activationRoot, 0o777), 0)
        host.clock.now += 30
        let writable = host.login(answers: [host.wrongCode(device)])
        XCTAssertEqual(writable.prompts, [loginPrompt])
        XCTAssertEqual(writable.result, .denied)
        XCTAssertTrue(writable.log.contains { $0.contains("lets others write") }, "\(writable.log)")
    }

    func testLegacyActivationRecordInStateDirStillCountsAndIsCopied() throws {
        guard geteuid() == 0 else { throw XCTSkip("the legacy record must be root's (it is read with owner root only)") }
        let host = try LoginHost(self, now: utc("2026-12-01T00:00:00Z"))
        let device = try host.addDevice()
        try host.configure(start: nil)
        try host.store.prepare()
        // Copied with the policy file it now belongs to and the state_dir it was found in.
        let legacy = ActivationRecord(activatedAt: 1_700_000_000, recordedAt: 1_700_000_001, configPath: host.configPath, stateDirectory: host.stateDir)
        try writeFile(host.stateDir + "/activation", "engage2fa-activation 1\nactivated-at=1700000000 recorded-at=1700000001\n", mode: 0o644)
        let run = host.login(answers: [host.code(device)])
        XCTAssertEqual(run.prompts, [loginPrompt])
        XCTAssertEqual(run.result, .success)
        XCTAssertEqual(host.activationStore.read(), .active(legacy))
    }

    // MARK: Codes

    func testForwardPassSplitsTheCodeOffTheEndAndForwardsThePassword() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        let codes = try host.addRecoveryCodes()
        try host.activate()
        let password = Array("s3cret 123".utf8)
        var run = host.login(answers: [password + host.code(device)], passwordEntry: .forwardPass)
        XCTAssertEqual(run.result, .success)
        XCTAssertEqual(run.prompts, [combinedPrompt])
        XCTAssertEqual(run.conversation.forwarded, [password])
        // A recovery code at the end, with or without its hyphen.
        run = host.login(answers: [password + Array(codes[0].utf8)], passwordEntry: .forwardPass)
        XCTAssertEqual(run.result, .success)
        XCTAssertEqual(run.conversation.forwarded, [password])
        run = host.login(answers: [password + Array(codes[1].replacingOccurrences(of: "-", with: "").utf8)], passwordEntry: .forwardPass)
        XCTAssertEqual(run.result, .success)
        XCTAssertEqual(run.conversation.forwarded, [password])
        // A wrong code: denied and counted; the password before a code of the device's length still goes on.
        run = host.login(answers: [password + host.wrongCode(device)], passwordEntry: .forwardPass)
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.conversation.forwarded, [password])
        XCTAssertEqual(try host.state().failures, 1)
    }

    func testUseFirstPassTakesTheEarlierPasswordAndNeverAsks() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate()
        var run = host.login(passwordEntry: .useFirstPass, earlierPassword: Array("pw".utf8) + host.code(device))
        XCTAssertEqual(run.result, .success)
        XCTAssertEqual(run.prompts, [])
        XCTAssertEqual(run.conversation.forwarded, [Array("pw".utf8)])
        run = host.login(answers: [host.code(device)], passwordEntry: .useFirstPass)
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.prompts, [])
        XCTAssertTrue(run.log.contains("user \(host.account.name): denied: no password from an earlier module (use_first_pass)"), "\(run.log)")
        // try_first_pass asks when there is none.
        host.clock.now += 30
        run = host.login(answers: [Array("pw".utf8) + host.code(device)], passwordEntry: .tryFirstPass)
        XCTAssertEqual(run.result, .success)
        XCTAssertEqual(run.prompts, [combinedPrompt])
    }

    func testValidCodeSucceeds() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate()
        let run = host.login(answers: [host.code(device)])
        XCTAssertEqual(run.result, .success)
        XCTAssertEqual(run.prompts, [loginPrompt])
        XCTAssertEqual(run.errors, [])
        XCTAssertTrue(run.log.contains("user \(host.account.name): code accepted from device 'Phone'"), "\(run.log)")
        let state = try host.state()
        XCTAssertEqual(state.devices[device.id]?.lastStep, device.parameters.step(at: host.clock.now))
        XCTAssertEqual(state.failures, 0)
    }

    func testValidCodeOfTheNeighbouringStepSucceedsWithinTheWindow() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate("window = 1\n")
        XCTAssertEqual(host.login(answers: [host.code(device, steps: -1)]).result, .success)
        host.clock.now += 60
        XCTAssertEqual(host.login(answers: [host.code(device, steps: -2)]).result, .denied, "two steps away is outside window = 1")
    }

    func testWrongCodeIsDeniedAndCounted() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate()
        let run = host.login(answers: [host.wrongCode(device)])
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.prompts, [loginPrompt])
        XCTAssertEqual(run.errors, [wrongMessage])
        XCTAssertTrue(run.log.contains("user \(host.account.name): denied: wrong code"), "\(run.log)")
        XCTAssertEqual(try host.state().failures, 1)
        // Not six digits at all: wrong as well, and counted.
        XCTAssertEqual(host.login(answers: [Array("12ab56".utf8)]).errors, [wrongMessage])
        XCTAssertEqual(try host.state().failures, 2)
        // A success clears the count.
        XCTAssertEqual(host.login(answers: [host.code(device)]).result, .success)
        XCTAssertEqual(try host.state().failures, 0)
    }

    func testNoAnswerIsDeniedAndNotCounted() throws {
        let host = try LoginHost(self)
        try host.addDevice()
        try host.activate()
        let run = host.login(answers: [nil])
        XCTAssertEqual(run.result, .denied)
        XCTAssertTrue(run.log.contains { $0.contains("no code entered") }, "\(run.log)")
        XCTAssertEqual(try host.state().failures, 0)
    }

    func testLockoutAfterMaxFailuresAsksNoCodeUntilItEnds() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate("max_failures = 3\nlockout_seconds = 300\n")
        for attempt in 1...2 {
            let run = host.login(answers: [host.wrongCode(device)])
            XCTAssertEqual(run.result, .denied)
            XCTAssertEqual(run.errors, [wrongMessage])
            XCTAssertEqual(try host.state().failures, attempt)
        }
        let third = host.login(answers: [host.wrongCode(device)])
        XCTAssertEqual(third.result, .denied)
        XCTAssertEqual(third.errors, [wrongMessage + " Too many wrong verification codes. Try again in 5 minutes."])
        XCTAssertTrue(third.log.contains { $0.contains("3 wrong codes in a row; locked out for 300 s") }, "\(third.log)")
        let lockedAt = host.clock.now
        XCTAssertEqual(try host.state().lockedUntil, lockedAt + 300)

        // While locked (PAM_MAXTRIES): no prompt, even for someone holding the right code.
        let locked = host.login(answers: [host.code(device)])
        XCTAssertEqual(locked.result, .lockedOut)
        XCTAssertEqual(locked.prompts, [])
        XCTAssertEqual(locked.errors, ["Too many wrong verification codes. Try again in 5 minutes."])
        host.clock.now = lockedAt + 299
        let lastSecond = host.login(answers: [host.code(device)])
        XCTAssertEqual(lastSecond.result, .lockedOut)
        XCTAssertEqual(lastSecond.errors, ["Too many wrong verification codes. Try again in 1 minute."])

        host.clock.now = lockedAt + 300
        let after = host.login(answers: [host.code(device)])
        XCTAssertEqual(after.prompts, [loginPrompt])
        XCTAssertEqual(after.result, .success)
        XCTAssertEqual(try host.state().lockedUntil, 0)
    }

    func testLockoutIsClampedWhenTheClockWentBack() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate("max_failures = 1\nlockout_seconds = 300\n")
        XCTAssertEqual(host.login(answers: [host.wrongCode(device)]).result, .denied)
        let lockedAt = host.clock.now
        XCTAssertEqual(try host.state().lockedUntil, lockedAt + 300)

        // The clock goes back an hour: the lockout still ends lockout_seconds from now at the latest.
        host.clock.now = lockedAt - 3600
        let run = host.login(answers: [host.code(device)])
        XCTAssertEqual(run.result, .lockedOut)
        XCTAssertEqual(run.prompts, [])
        XCTAssertEqual(run.errors, ["Too many wrong verification codes. Try again in 5 minutes."])
        XCTAssertEqual(try host.state().lockedUntil, lockedAt - 3600 + 300, "clamped, and saved")

        host.clock.now = lockedAt - 3600 + 300
        XCTAssertEqual(host.login(answers: [host.code(device)]).result, .success)
    }

    func testReplayOfTheSameStepIsRefused() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate()
        let code = host.code(device)
        XCTAssertEqual(host.login(answers: [code]).result, .success)
        host.clock.now += 5  // the same step
        let replay = host.login(answers: [code])
        XCTAssertEqual(replay.result, .denied)
        XCTAssertEqual(replay.errors, ["That code was already used. Wait for the next code and try again."])
        XCTAssertTrue(replay.log.contains("user \(host.account.name): denied: code already used"), "\(replay.log)")
        XCTAssertEqual(try host.state().failures, 1, "a replay counts towards the lockout")
    }

    func testOlderStepAfterANewerOneIsRefused() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate("window = 1\n")
        let current = device.parameters.step(at: host.clock.now)
        XCTAssertEqual(host.login(answers: [host.code(device, steps: 1)]).result, .success)
        XCTAssertEqual(try host.state().devices[device.id]?.lastStep, current + 1)
        let older = host.login(answers: [host.code(device)])
        XCTAssertEqual(older.result, .denied)
        XCTAssertEqual(older.errors, ["That code was already used. Wait for the next code and try again."])
    }

    func testVerifiedStepIsRefused() throws {
        let host = try LoginHost(self)
        let step = OTPParameters().step(at: host.clock.now)
        // The code typed at enrollment (its step is in the device file) cannot be used again, nor an older one.
        let device = try host.addDevice(verifiedStep: step)
        try host.activate("window = 1\n")
        for offset: Int64 in [0, -1] {
            let run = host.login(answers: [host.code(device, steps: offset)])
            XCTAssertEqual(run.result, .denied, "step \(offset)")
            XCTAssertEqual(run.errors, ["That code was already used. Wait for the next code and try again."])
        }
        host.clock.now += 30
        XCTAssertEqual(host.login(answers: [host.code(device)]).result, .success, "the next step works")
    }

    // MARK: Recovery codes

    func testRecoveryCodeWorksOnceAndIsRecordedInStateNotInTheDeviceFile() throws {
        let host = try LoginHost(self)
        try host.addDevice()
        let codes = try host.addRecoveryCodes()
        try host.activate()
        let deviceFileBefore = try Data(contentsOf: URL(fileURLWithPath: host.devicePath()))

        let first = host.login(answers: [Array(codes[0].utf8)])
        XCTAssertEqual(first.result, .success)
        XCTAssertEqual(first.infos, ["Recovery code accepted. 9 recovery codes left: link a new device with engage2fa-enroll."])
        XCTAssertTrue(first.log.contains("user \(host.account.name): recovery code used; 9 left"), "\(first.log)")
        XCTAssertEqual(try host.state().usedRecoveryCodes.count, 1)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: host.devicePath())), deviceFileBefore, "the device file is never written by a login")

        let again = host.login(answers: [Array(codes[0].utf8)])
        XCTAssertEqual(again.result, .denied)
        XCTAssertEqual(again.errors, [wrongMessage])

        // Typed in capitals and without the hyphen, another code works.
        let typed = codes[1].uppercased().replacingOccurrences(of: "-", with: "")
        let second = host.login(answers: [Array(typed.utf8)])
        XCTAssertEqual(second.result, .success)
        XCTAssertEqual(second.infos, ["Recovery code accepted. 8 recovery codes left: link a new device with engage2fa-enroll."])
        XCTAssertEqual(try host.state().usedRecoveryCodes.count, 2)
    }

    func testRecoveryCodeWorksWithNoDeviceLeft() throws {
        let host = try LoginHost(self)
        let codes = try host.addRecoveryCodes(keep: 1)
        try host.activate()
        let run = host.login(answers: [Array(codes[0].utf8)])
        XCTAssertEqual(run.prompts, [loginPrompt])
        XCTAssertEqual(run.result, .success)
        XCTAssertEqual(run.infos, ["Recovery code accepted. 0 recovery codes left: link a new device with engage2fa-enroll."])
        // Nothing left: refused before any prompt, told why.
        let after = host.login(answers: [Array(codes[0].utf8)])
        XCTAssertEqual(after.result, .denied)
        XCTAssertEqual(after.prompts, [])
        XCTAssertTrue(after.errors.first?.contains("you have not linked an authenticator app") ?? false, "\(after.errors)")
    }

    // MARK: Revoked and removed devices

    func testRevokedDevicesAreRefused() throws {
        let host = try LoginHost(self)
        let revoked = try host.addDevice("Old phone")
        let kept = try host.addDevice("New phone")
        try host.activate()
        try host.changeState { $0.revokedDevices = [revoked.id] }
        let run = host.login(answers: [host.code(revoked)])
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.errors, [wrongMessage])
        XCTAssertEqual(host.login(answers: [host.code(kept)]).result, .success)

        // The only device revoked: the user has none, and is refused without a prompt.
        try host.writeDevices(DeviceFile(devices: [revoked]))
        let only = host.login(answers: [host.code(revoked)])
        XCTAssertEqual(only.result, .denied)
        XCTAssertEqual(only.prompts, [])
    }

    func testDeviceRemovedBetweenTheDecisionAndTheCheckIsRefused() throws {
        let host = try LoginHost(self)
        let removed = try host.addDevice("Stolen phone")
        let other = try host.addDevice("Other phone")
        try host.activate()
        // The user removes the device while this login waits at its prompt.
        let run = host.login(answers: [host.code(removed)]) { _ in
            try? host.writeDevices(DeviceFile(devices: [other]))
        }
        XCTAssertEqual(run.prompts, [loginPrompt])
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.errors, [wrongMessage])
        XCTAssertEqual(try host.state().failures, 1)
    }

    func testDeviceFileMadeUnreadableAtThePromptFailsClosed() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate()
        let run = host.login(answers: [host.code(device)]) { _ in
            _ = chmod(host.devicePath(), 0o644)
        }
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.errors, ["Two-factor authentication failed because of a system problem. Ask an administrator to check the system log."])
        XCTAssertTrue(run.log.contains { $0.contains("could not check or record the code") && $0.contains("mode 644") }, "\(run.log)")
    }

    func testUntrustedDeviceFileIsRefusedAfterActivationAndIgnoredBefore() throws {
        let host = try LoginHost(self, now: utc("2026-12-01T00:00:00Z"))
        try host.addDevice()
        XCTAssertEqual(chmod(host.devicePath(), 0o640), 0)
        try host.configure(start: start)
        let before = host.login()
        XCTAssertEqual(before.result, .notApplicable)
        XCTAssertEqual(before.prompts + before.errors, [])
        host.clock.now = utc(start)
        let after = host.login()
        XCTAssertEqual(after.result, .denied)
        XCTAssertEqual(after.prompts, [])
        XCTAssertEqual(after.errors, ["Two-factor authentication is mandatory, and your authenticator devices could not be read. Ask an administrator to check the system log."])
        XCTAssertTrue(after.log.contains { $0.contains("device file unreadable") && $0.contains("mode 640") }, "\(after.log)")
    }

    // MARK: Personal deadlines

    func deadlineNotice(_ date: String, _ days: Int) -> String {
        "Two-factor authentication is mandatory on this host. Your personal deadline is \(date) (in \(days) days): link your authenticator app before then with engage2fa-enroll."
    }

    func testPersonalDeadlineFromThePolicyFile() throws {
        try withTimeZone("UTC") {
            let host = try LoginHost(self)
            try host.activate("[deadlines]\n\(host.account.name) = 2027-01-10\n")
            let run = host.login()
            XCTAssertEqual(run.result, .notApplicable)
            XCTAssertEqual(run.prompts, [])
            XCTAssertEqual(run.infos, [deadlineNotice("2027-01-10", 21)])
        }
    }

    func testPersonalDeadlineFromState() throws {
        try withTimeZone("UTC") {
            let host = try LoginHost(self)
            try host.activate()
            let deadline = try PolicyDate(parsing: "2027-01-10")
            try host.changeState { $0.deadline = deadline }
            let run = host.login()
            XCTAssertEqual(run.result, .notApplicable)
            XCTAssertEqual(run.infos, [deadlineNotice("2027-01-10", 21)])
        }
    }

    func testTheLaterPersonalDeadlineWins() throws {
        try withTimeZone("UTC") {
            let host = try LoginHost(self)
            let stateDeadline = try PolicyDate(parsing: "2027-02-01")
            try host.changeState { $0.deadline = stateDeadline }
            try host.activate("[deadlines]\n\(host.account.name) = 2027-01-10\n")
            XCTAssertEqual(host.login().infos, [deadlineNotice("2027-02-01", 43)], "state's is later")
            try host.activate("[deadlines]\n\(host.account.name) = 2027-03-01\n")
            XCTAssertEqual(host.login().infos, [deadlineNotice("2027-03-01", 71)], "the file's is later")

            host.clock.now = utc("2027-03-01T00:00:00Z")
            let passed = host.login()
            XCTAssertEqual(passed.result, .denied)
            XCTAssertEqual(passed.prompts, [])
            XCTAssertTrue(passed.errors.first?.hasPrefix("Your deadline to link an authenticator app passed on 2027-03-01.") ?? false, "\(passed.errors)")
        }
    }

    func testBrokenPolicyFileGrantsNoDeadline() throws {
        let host = try LoginHost(self)
        try host.activate("window = 99\n[deadlines]\n\(host.account.name) = 2027-01-10\n")
        let run = host.login()
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.prompts, [])
        XCTAssertTrue(run.errors.first?.contains("you have not linked an authenticator app") ?? false, "\(run.errors)")
    }

    func testActiveWithoutDeviceOrDeadlineIsRefusedWithWhatToDo() throws {
        let host = try LoginHost(self)
        try host.activate()
        let run = host.login()
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.prompts, [])
        XCTAssertTrue(run.errors.first?.contains("engage2fa-admin extend \(host.account.name) DATE") ?? false, "\(run.errors)")
    }

    // MARK: Unknown users

    func testUnknownUserIsPromptedThenToldTheSameAsAWrongCode() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        try host.activate()
        let real = host.login(answers: [host.wrongCode(device)])
        let unknown = host.login("e2fa-no-such-user-\(UInt32.random(in: 0...UInt32.max))", answers: [Array("123456".utf8)])
        XCTAssertEqual(unknown.result, .denied)
        XCTAssertEqual(unknown.prompts, real.prompts)
        XCTAssertEqual(unknown.errors, real.errors)
        XCTAssertEqual(unknown.errors, [wrongMessage])
        XCTAssertTrue(unknown.log.contains { $0.hasSuffix(": denied: no such user") }, "\(unknown.log)")
    }

    // MARK: Unprivileged callers (screen lockers, pamtester run by a user)

    /// A user other than the one running the tests, from the user database.
    func otherAccount() throws -> Account {
        try XCTUnwrap(getuid() == 0 ? Account.lookup("nobody") : Account.lookup("root"), "no second account to test with")
    }

    func testUnprivilegedCallerIsNeverRefusedBeforeActivation() throws {
        let host = try LoginHost(self, now: utc("2026-12-01T00:00:00Z"))
        try host.addDevice()
        try host.configure(start: start)
        // An activation root the caller cannot trust: unprivileged, that proves nothing before the start date.
        XCTAssertEqual(mkdir(host.activationRoot, 0o777), 0)
        XCTAssertEqual(chmod(host.activationRoot, 0o777), 0)
        let own = host.login(privileged: false)
        XCTAssertEqual(own.result, .notApplicable)
        XCTAssertEqual(own.prompts + own.errors, [])
        let other = try otherAccount()
        let otherRun = host.login(other.name, privileged: false)
        XCTAssertEqual(otherRun.result, .notApplicable)
        XCTAssertEqual(otherRun.prompts + otherRun.errors, [])
        // Nor with a policy file it cannot use.
        XCTAssertEqual(chmod(host.configPath, 0o664), 0)
        XCTAssertEqual(host.login(privileged: false).result, .notApplicable)
    }

    func testUnprivilegedAllowSelfLetsTheOwnUserThroughWithALogLine() throws {
        let host = try LoginHost(self)
        try host.addDevice()
        try host.activate()
        let run = host.login(privileged: false)
        XCTAssertEqual(run.result, .notApplicable)
        XCTAssertEqual(run.prompts + run.errors, [])
        XCTAssertTrue(run.log.contains("user \(host.account.name): unprivileged caller (uid \(getuid())) re-authenticating its own user: password only (unprivileged = allow-self)"), "\(run.log)")
        XCTAssertEqual(host.activationStore.read(), .never, "an unprivileged caller records nothing")
        XCTAssertTrue(run.log.contains { $0.contains("activation is recorded at the next login through a privileged caller") }, "\(run.log)")
        // Also a user who would be refused (no device): the session it re-authenticates passed 2FA to exist.
        try host.writeDevices(DeviceFile())
        XCTAssertEqual(host.login(privileged: false).result, .notApplicable)
    }

    func testUnprivilegedCallerIsDeniedForAnotherUser() throws {
        let host = try LoginHost(self)
        let other = try otherAccount()
        var otherFile = DeviceFile()
        try otherFile.addDevice(name: "Phone", secret: try newSecret(), parameters: OTPParameters(), now: host.clock.now)
        try host.writeDevices(otherFile, for: other.name)
        try host.activate()
        let run = host.login(other.name, privileged: false)
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.prompts, [])
        XCTAssertEqual(run.errors, ["Two-factor authentication cannot be checked by this program. Log in with a program that asks for your verification code."])
        XCTAssertTrue(run.log.contains { $0.contains("denied: unprivileged caller (uid \(getuid())) cannot check codes (unprivileged = allow-self)") }, "\(run.log)")
    }

    func testUnprivilegedDenyRefusesEvenTheOwnUser() throws {
        let host = try LoginHost(self)
        try host.addDevice()
        try host.activate("unprivileged = deny\n")
        let run = host.login(privileged: false)
        XCTAssertEqual(run.result, .denied)
        XCTAssertEqual(run.prompts, [])
        XCTAssertTrue(run.log.contains { $0.contains("cannot check codes (unprivileged = deny)") }, "\(run.log)")
    }

    // MARK: What is logged

    /// Every login of every test is checked for this (LoginHost.login); here each kind of outcome at once,
    /// with debug lines on.
    func testLogLinesNeverHoldTheCodeTypedOrTheSecret() throws {
        let host = try LoginHost(self)
        let device = try host.addDevice()
        let codes = try host.addRecoveryCodes()
        try host.activate("max_failures = 2\n")
        let valid = host.code(device)
        var logs: [String] = []
        logs += host.login(answers: [valid]).log  // accepted
        logs += host.login(answers: [valid]).log  // replayed
        logs += host.login(answers: [Array(codes[0].utf8)]).log  // recovery
        logs += host.login("e2fa-no-such-user", answers: [valid]).log  // unknown user
        logs += host.login(answers: [host.wrongCode(device)]).log  // wrong
        logs += host.login(answers: [host.wrongCode(device)]).log  // wrong, locks
        logs += host.login(answers: [valid]).log  // locked out
        XCTAssertGreaterThanOrEqual(logs.count, 7)
        for line in logs {
            XCTAssertFalse(containsToken(line, String(decoding: valid, as: UTF8.self)), line)
            XCTAssertFalse(line.contains(Base32.encode(device.secret)), line)
            XCTAssertFalse(line.contains(codes[0]), line)
        }
        XCTAssertTrue(containsToken("code 123456 typed", "123456") && !containsToken("a123456b", "123456"), "the check itself")
    }
}
