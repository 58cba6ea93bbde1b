import Foundation
import XCTest

@testable import Engage2FALogin
@testable import Engage2FAManagement

/// A test account: a stable uid from the name (no user database needed).
func account(_ name: String) -> Account {
    let uid = name.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 } % 1_000_000 + 100_000
    return Account(name: name, uid: uid, gid: uid, home: "/nonexistent/\(name)")
}

final class StateStoreTests: XCTestCase {
    func store() throws -> StateStore { StateStore(directory: try temporaryDirectory(self) + "/state") }

    func testPrepareCreatesPrivateDirectoriesAndRejectsUnsafeOnes() throws {
        let store = try store()
        try store.prepare()
        var info = stat()
        XCTAssertEqual(stat(store.directory, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o755)
        XCTAssertEqual(stat(store.directory + "/users", &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o711)  // users open their own state by name and list nothing
        XCTAssertEqual(chmod(store.directory, 0o777), 0)
        XCTAssertThrowsError(try store.prepare()) { XCTAssertTrue("\($0)".contains("lets others write to it"), "\($0)") }
        XCTAssertEqual(chmod(store.directory, 0o700), 0)

        let linked = StateStore(directory: store.directory + "-link")
        XCTAssertEqual(symlink(store.directory, linked.directory), 0)
        XCTAssertThrowsError(try linked.prepare()) { XCTAssertTrue("\($0)".contains("symbolic link"), "\($0)") }
    }

    func testStateRoundTripAndLockout() throws {
        let store = try store()
        XCTAssertEqual(try store.read(account: account("alice")), UserState())
        let locked = try store.transaction(account: account("alice"), devices: nil) { state, _ -> Bool in
            var locked = false
            for _ in 0..<3 { locked = state.recordFailure(now: 1000, maxFailures: 3, lockoutSeconds: 300) }
            state.devices["0123456789abcdef"] = DeviceUsage(lastStep: 55, lastUsed: 990)
            return locked
        }
        XCTAssertTrue(locked)
        let state = try store.read(account: account("alice"))
        XCTAssertEqual(state.lockedUntil, 1300)
        XCTAssertEqual(state.failures, 0)
        XCTAssertEqual(state.devices["0123456789abcdef"], DeviceUsage(lastStep: 55, lastUsed: 990))
        XCTAssertEqual(state.lockoutRemaining(now: 1100, lockoutSeconds: 300), 200)
        XCTAssertEqual(state.lockoutRemaining(now: 1300, lockoutSeconds: 300), 0)
        // The clock went back an hour: the lockout still ends within lockout_seconds from now.
        XCTAssertEqual(state.lockoutRemaining(now: 1000 - 3600, lockoutSeconds: 300), 300)
        var clamped = state
        clamped.clampLockout(now: 1000 - 3600, lockoutSeconds: 300)
        XCTAssertEqual(clamped.lockedUntil, 1000 - 3600 + 300)
        clamped.clampLockout(now: 1100, lockoutSeconds: 300)
        XCTAssertEqual(clamped.lockedUntil, 1000 - 3600 + 300)
        try store.transaction(account: account("alice"), devices: nil) { state, _ in
            state.failures = 0
            state.lockedUntil = 0
        }
        XCTAssertEqual(try store.read(account: account("alice")).lockedUntil, 0)
        XCTAssertEqual(try store.read(account: account("alice")).devices.count, 1)
    }

    func testCorruptStateIsAnErrorThatNamesTheFile() throws {
        let store = try store()
        try store.prepare()
        try writeFileAtomically(store.statePath(uid: account("bob").uid), contents: Array("engage2fa-state 2\nfailures count=x\n".utf8))
        XCTAssertThrowsError(try store.read(account: account("bob"))) {
            XCTAssertEqual("\($0)", "\(store.statePath(uid: account("bob").uid)):2: bad number in 'count=x'")
        }
    }

    /// 20 threads, each with its own lock descriptor, race to accept the same code: exactly one wins.
    func testTwentyRacersAcceptTheSameCodeExactlyOnce() throws {
        let store = try store()
        let secret = try newSecret()
        let parameters = OTPParameters()
        let now: Int64 = 1_764_000_000
        let code = totp(secret: secret, at: now, parameters: parameters)
        for round in 0..<5 {
            let user = "racer\(round)"
            let accepted = Counter()
            let failed = Counter()
            DispatchQueue.concurrentPerform(iterations: 20) { _ in
                do {
                    let ok = try store.transaction(account: account(user), devices: nil) { state, _ -> Bool in
                        let last = state.devices["0123456789abcdef"]?.lastStep
                        guard case .accepted(let step) = verifyTOTP(code: code, secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: last) else {
                            return false
                        }
                        state.recordSuccess(deviceID: "0123456789abcdef", step: step, now: now)
                        return true
                    }
                    if ok { accepted.increment() }
                } catch {
                    failed.increment()
                }
            }
            XCTAssertEqual(accepted.value, 1, "round \(round)")
            XCTAssertEqual(failed.value, 0, "round \(round)")
        }
    }

    /// 20 users at once: nobody waits for or fails because of another user.
    func testTwentyUsersAtOnceAllSucceed() throws {
        let store = try store()
        let succeeded = Counter()
        DispatchQueue.concurrentPerform(iterations: 20) { index in
            do {
                try store.transaction(account: account("user\(index)"), devices: nil) { state, _ in state.recordSuccess(deviceID: "0123456789abcdef", step: 7, now: 1) }
                succeeded.increment()
            } catch {}
        }
        XCTAssertEqual(succeeded.value, 20)
        for index in 0..<20 { XCTAssertEqual(try store.read(account: account("user\(index)")).devices["0123456789abcdef"]?.lastStep, 7) }
    }

    /// A login that died holding the lock (kill -9) and one that died mid-write leave nothing that blocks the next.
    func testKilledHolderAndTornWriteLeaveTheStoreUsable() throws {
        let store = try store()
        try store.transaction(account: account("carol"), devices: nil) { state, _ in state.recordSuccess(deviceID: "0123456789abcdef", step: 41, now: 1) }
        let lockPath = store.directory + "/users/\(account("carol").uid).lock"

        // A real process takes the lock and is killed with SIGKILL while holding it.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        // --no-fork: the process that holds the lock is the one we kill, not a parent of it.
        holder.arguments = ["--exclusive", "--no-fork", lockPath, "sleep", "60"]
        try holder.run()
        var waited = 0
        while waited < 200, (try? runProgram("/usr/bin/flock", ["--exclusive", "--nonblock", lockPath, "true"]).status) == 0 {
            usleep(10_000)
            waited += 1
        }
        var blocked = store
        blocked.lockTimeoutSeconds = 1
        XCTAssertThrowsError(try blocked.transaction(account: account("carol"), devices: nil) { _, _ in }) { XCTAssertEqual($0 as? CoreError, .state(.lockTimeout(path: lockPath, seconds: 1))) }
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()

        // A writer killed after writing its temporary file but before the rename.
        let torn = store.directory + "/users/.\(account("carol").uid).state.tmp-deadbeef0000"
        try writeFile(torn, "engage2fa-state 1\nfailures cou")
        XCTAssertEqual(try store.read(account: account("carol")).devices["0123456789abcdef"]?.lastStep, 41)
        // The lock died with its holder: the next login gets it at once (within the 1 s timeout).
        try blocked.transaction(account: account("carol"), devices: nil) { state, _ in state.recordSuccess(deviceID: "0123456789abcdef", step: 42, now: 2) }
        XCTAssertEqual(try store.read(account: account("carol")).devices["0123456789abcdef"]?.lastStep, 42)
    }

    func testActivationRecordIsWrittenOnceAndNeverReplaced() throws {
        let root = try temporaryDirectory(self) + "/engage2fa"
        let store = ActivationStore(configPath: "/etc/other.conf", root: root, owner: geteuid())
        XCTAssertEqual(store.recordPath, root + "/activation.d/" + hex(SHA256.hash(Array("/etc/other.conf".utf8))))
        XCTAssertEqual(ActivationStore(configPath: Config.defaultPath, root: root).recordPath, root + "/activation")
        XCTAssertEqual(store.read(), .never)
        try store.record(ActivationRecord(activatedAt: 100, recordedAt: 105))
        XCTAssertEqual(store.read(), .active(ActivationRecord(activatedAt: 100, recordedAt: 105)))
        var info = stat()
        XCTAssertEqual(stat(store.recordPath, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o644)  // not secret: users may see that 2FA is active
        try store.record(ActivationRecord(activatedAt: 999, recordedAt: 999))
        XCTAssertEqual(store.read(), .active(ActivationRecord(activatedAt: 100, recordedAt: 105)))

        try writeFile(store.recordPath, "garbage\n", mode: 0o644)
        guard case .unreadable(let reason) = store.read() else { return XCTFail("garbage must not read as never") }
        XCTAssertTrue(reason.contains("not an activation record"))
        XCTAssertEqual(chmod(store.recordPath, 0o666), 0)
        guard case .unreadable = store.read() else { return XCTFail("a world-writable record is not trusted") }
        XCTAssertEqual(unlink(store.recordPath), 0)
        // A directory others can write to: a missing record there proves nothing.
        XCTAssertEqual(chmod(root + "/activation.d", 0o777), 0)
        guard case .unreadable(let why) = store.read() else { return XCTFail("an untrusted directory is not 'never'") }
        XCTAssertTrue(why.contains("lets others write"), why)
    }

    func testHostileNumbersAndRecordsAreErrorsNotTraps() throws {
        for text in ["failures count=9223372036854775807 locked-until=0", "failures count=0 locked-until=9223372036854775807",
                     "failures count=0 locked-until=-1", "device id=0123456789abcdef last-step=-5 last-used=0",
                     "failures count=1000001 locked-until=0", "deadline date=2026-13-01", "revoked-device id=xyz",
                     "recovery-used salt=00 hash=00", "failures count=1 locked-until=0 extra=1"] {
            XCTAssertThrowsError(try UserState.parse(Array("engage2fa-state 2\n\(text)\n".utf8), path: "s"), text)
        }
        var state = UserState()
        state.failures = UserState.maxFailureCount
        XCTAssertFalse(state.recordFailure(now: 1, maxFailures: Int.max, lockoutSeconds: 1))
        XCTAssertEqual(state.failures, UserState.maxFailureCount)
    }

    func testAFieldCutOffOrOversizedAtTheEndOfTheStateFileIsAnError() {
        func error(_ text: String) -> String {
            do { _ = try UserState.parse(Array(text.utf8), path: "s"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(error("engage2fa-sta").hasSuffix("expected 'engage2fa-state 2'"), error("engage2fa-sta"))
        XCTAssertTrue(error("engage2fa-state 2\nfailures count=").hasSuffix("malformed field 'count='"), error("engage2fa-state 2\nfailures count="))
        XCTAssertTrue(error("engage2fa-state 2\nfailures count=1 locked-until=99999999999999999999").hasSuffix("bad number in 'locked-until=99999999999999999999'"))
        XCTAssertTrue(error("engage2fa-state 2\nrevoked-device id=0123456789abcde").hasPrefix("s:2: unexpected record"))
        XCTAssertTrue(error("engage2fa-state 2\nrevoked-recovery salt=" + String(repeating: "0", count: 100_000)).hasPrefix("s:2: unexpected record"))
    }

    func testAnActivationRecordCutOffAtTheEndIsUnreadableNotATrap() throws {
        let root = try temporaryDirectory(self) + "/engage2fa"
        let store = ActivationStore(configPath: "/etc/other.conf", root: root, owner: geteuid())
        try store.record(ActivationRecord(activatedAt: 100, recordedAt: 105))
        for (text, reason) in [("engage2fa-activation", "not an activation record"), ("engage2fa-activation 1", "not an activation record"),
                               ("engage2fa-activation 1\nactivated-at=1 recorded-at=", "malformed activation record"),
                               ("engage2fa-activation 1\nactivated-at=99999999999999999999 recorded-at=1", "malformed activation record"),
                               ("engage2fa-activation 1\nactivated-at=1 recorded", "malformed activation record")] {
            try writeFile(store.recordPath, text, mode: 0o644)
            guard case .unreadable(let why) = store.read() else { XCTFail("\(text) must be unreadable"); continue }
            XCTAssertTrue(why.contains(reason), "\(text): \(why)")
        }
    }

    /// The record's text fields are kept percent-encoded as read and decoded when asked for: the same values,
    /// and the same refusals (malformed escapes; a state-dir that is not absolute or has `..`), as decoded at once.
    func testAnActivationRecordsPathsReadBackAndAStateDirectoryNotAbsoluteIsIgnored() throws {
        let root = try temporaryDirectory(self) + "/engage2fa"
        let store = ActivationStore(configPath: "/etc/odd name%+.conf", root: root, owner: geteuid())
        let written = ActivationRecord(activatedAt: 100, recordedAt: 105, configPath: "/etc/odd name%+.conf", stateDirectory: "/var/lib/state dir")
        try store.record(written)
        XCTAssertTrue(try String(contentsOfFile: store.recordPath, encoding: .utf8)
            .contains("config=%2Fetc%2Fodd%20name%25%2B.conf state-dir=%2Fvar%2Flib%2Fstate%20dir\n"))
        guard case .active(var read) = store.read() else { return XCTFail("the record must read back") }
        XCTAssertEqual(read, written)
        XCTAssertEqual(read.configPath, "/etc/odd name%+.conf")
        XCTAssertEqual(read.stateDirectory, "/var/lib/state dir")
        // A value set replaces the file's, and is not checked as a read one is.
        read.stateDirectory = "relative"
        read.configPath = nil
        XCTAssertEqual(read.stateDirectory, "relative")
        XCTAssertNil(read.configPath)
        for (fields, config, stateDirectory) in [("config=%zz state-dir=relative", nil, nil), ("config=a+b state-dir=%2Fa%2F..%2Fb", "a b", nil),
                                                 ("state-dir=/abs config=%2F", "/", "/abs"), ("state-dir=", nil, nil)] as [(String, String?, String?)] {
            try writeFile(store.recordPath, "engage2fa-activation 1\nactivated-at=1 recorded-at=2 \(fields)\n", mode: 0o644)
            guard case .active(let record) = store.read() else { XCTFail("\(fields) must read as active"); continue }
            XCTAssertEqual(record.configPath, config, fields)
            XCTAssertEqual(record.stateDirectory, stateDirectory, fields)
        }
    }

    func testNewRecordsRoundTripAndPrune() throws {
        var state = UserState()
        state.deadline = try PolicyDate(parsing: "2027-01-10T09:00:00+01:00")
        state.revokedDevices = ["0123456789abcdef", "fedcba9876543210"]
        state.revokedRecoverySalts = [Array(repeating: 7, count: 16)]
        state.usedRecoveryCodes = [RecoveryCodeUse(salt: Array(repeating: 7, count: 16), hashPrefix: Array(repeating: 1, count: 8))]
        state.devices["0123456789abcdef"] = DeviceUsage(lastStep: 3, lastUsed: 4)
        XCTAssertEqual(try UserState.parse(state.serialized(), path: "s"), state)
        // Version 1 files (before deadlines and revocations) still read.
        XCTAssertEqual(try UserState.parse(Array("engage2fa-state 1\nfailures count=2 locked-until=0\n".utf8), path: "s").failures, 2)

        let kept = Device(id: "0123456789abcdef", name: "Phone", secret: Array(repeating: 1, count: 20), parameters: OTPParameters(), addedAt: 1)
        let file = DeviceFile(devices: [kept], recovery: RecoveryCodes(salt: Array(repeating: 9, count: 16), iterations: 1000, createdAt: 1, hashes: [Array(repeating: 1, count: 32)]))
        XCTAssertEqual(state.liveDevices(of: file), [])
        XCTAssertEqual(state.liveRecoveryCodes(of: file), [0])
        // Revocations and used codes outlive the file's devices and code sets (a backup restored must not
        // bring them back); pruning only bounds them.
        state.prune(for: file)
        XCTAssertEqual(state.revokedDevices, ["0123456789abcdef", "fedcba9876543210"])
        XCTAssertEqual(state.revokedRecoverySalts.count, 1)
        XCTAssertEqual(state.usedRecoveryCodes.count, 1)
        XCTAssertEqual(EnrollmentState(file: file, state: state), .enrolled(devices: 0, recoveryCodes: 1))
        for index in 0..<200 { state.revokedDevices.append(String(repeating: "0", count: 13) + String(format: "%03d", index)) }
        state.prune(for: file)
        XCTAssertEqual(state.revokedDevices.count, UserState.keptRevocations)
        XCTAssertEqual(state.revokedDevices.last, "0000000000000199")
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
