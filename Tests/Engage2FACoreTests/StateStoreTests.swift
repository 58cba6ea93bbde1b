import Foundation
import XCTest

@testable import Engage2FACore

final class StateStoreTests: XCTestCase {
    func store() throws -> StateStore { StateStore(directory: try temporaryDirectory(self) + "/state") }

    func testPrepareCreatesPrivateDirectoriesAndRejectsUnsafeOnes() throws {
        let store = try store()
        try store.prepare()
        var info = stat()
        XCTAssertEqual(stat(store.directory, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700)
        XCTAssertEqual(chmod(store.directory, 0o777), 0)
        XCTAssertThrowsError(try store.prepare()) { XCTAssertTrue("\($0)".contains("lets others write to it"), "\($0)") }
        XCTAssertEqual(chmod(store.directory, 0o700), 0)

        let linked = StateStore(directory: store.directory + "-link")
        XCTAssertEqual(symlink(store.directory, linked.directory), 0)
        XCTAssertThrowsError(try linked.prepare()) { XCTAssertTrue("\($0)".contains("symbolic link"), "\($0)") }
    }

    func testStateRoundTripAndLockout() throws {
        let store = try store()
        XCTAssertEqual(try store.read(user: "alice"), UserState())
        let locked = try store.update(user: "alice") { state -> Bool in
            var locked = false
            for _ in 0..<3 { locked = state.recordFailure(now: 1000, maxFailures: 3, lockoutSeconds: 300) }
            state.devices["0123456789abcdef"] = DeviceUsage(lastStep: 55, lastUsed: 990)
            return locked
        }
        XCTAssertTrue(locked)
        let state = try store.read(user: "alice")
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
        try store.clear(user: "alice", devices: false)
        XCTAssertEqual(try store.read(user: "alice").lockedUntil, 0)
        XCTAssertEqual(try store.read(user: "alice").devices.count, 1)
        XCTAssertThrowsError(try store.read(user: "../etc/passwd")) { XCTAssertEqual($0 as? StateError, .invalidUserName("../etc/passwd")) }
    }

    func testCorruptStateIsAnErrorThatNamesTheFile() throws {
        let store = try store()
        try store.prepare()
        try writeFileAtomically(store.statePath(user: "bob"), contents: Array("engage2fa-state 1\nfailures count=x\n".utf8))
        XCTAssertThrowsError(try store.read(user: "bob")) {
            XCTAssertEqual("\($0)", "\(store.statePath(user: "bob")):2: bad number in 'count=x'")
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
                    let ok = try store.update(user: user) { state -> Bool in
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
                try store.update(user: "user\(index)") { $0.recordSuccess(deviceID: "0123456789abcdef", step: 7, now: 1) }
                succeeded.increment()
            } catch {}
        }
        XCTAssertEqual(succeeded.value, 20)
        for index in 0..<20 { XCTAssertEqual(try store.read(user: "user\(index)").devices["0123456789abcdef"]?.lastStep, 7) }
    }

    /// A login that died holding the lock (kill -9) and one that died mid-write leave nothing that blocks the next.
    func testKilledHolderAndTornWriteLeaveTheStoreUsable() throws {
        let store = try store()
        try store.update(user: "carol") { $0.recordSuccess(deviceID: "0123456789abcdef", step: 41, now: 1) }
        let lockPath = store.directory + "/users/carol.lock"

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
        XCTAssertThrowsError(try blocked.update(user: "carol") { _ in }) { XCTAssertEqual($0 as? CoreError, .state(.lockTimeout(path: lockPath, seconds: 1))) }
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()

        // A writer killed after writing its temporary file but before the rename.
        let torn = store.directory + "/users/.carol.state.tmp-deadbeef0000"
        try writeFile(torn, "engage2fa-state 1\nfailures cou")
        XCTAssertEqual(try store.read(user: "carol").devices["0123456789abcdef"]?.lastStep, 41)
        // The lock died with its holder: the next login gets it at once (within the 1 s timeout).
        try blocked.update(user: "carol") { $0.recordSuccess(deviceID: "0123456789abcdef", step: 42, now: 2) }
        XCTAssertEqual(try store.read(user: "carol").devices["0123456789abcdef"]?.lastStep, 42)
    }

    func testActivationRecordIsWrittenOnceAndNeverReplaced() throws {
        let store = try store()
        XCTAssertEqual(store.readActivation(), .never)
        try store.recordActivation(ActivationRecord(activatedAt: 100, recordedAt: 105))
        XCTAssertEqual(store.readActivation(), .active(ActivationRecord(activatedAt: 100, recordedAt: 105)))
        try store.recordActivation(ActivationRecord(activatedAt: 999, recordedAt: 999))
        XCTAssertEqual(store.readActivation(), .active(ActivationRecord(activatedAt: 100, recordedAt: 105)))

        try writeFile(store.activationPath, "garbage\n", mode: 0o644)
        guard case .unreadable(let reason) = store.readActivation() else { return XCTFail("garbage must not read as never") }
        XCTAssertTrue(reason.contains("not an activation record"))
        XCTAssertEqual(chmod(store.activationPath, 0o666), 0)
        guard case .unreadable = store.readActivation() else { return XCTFail("a world-writable record is not trusted") }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
