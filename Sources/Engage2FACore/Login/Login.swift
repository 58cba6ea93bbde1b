#if canImport(Glibc)
import Glibc
#else
import CEngageSys
#endif

/// The prompt for the code, as peers' modules word it.
public let loginPrompt = "Verification code: "

/// How the login talks to the person: the PAM conversation in the module.
public protocol LoginConversation {
    /// Asks a question with echo off; nil when the conversation failed or the user gave up.
    func askHidden(_ prompt: String) -> [UInt8]?
    func showInfo(_ text: String)
    func showError(_ text: String)
}

/// Where the login reports to the admin: syslog in the module. Messages never hold a secret or a code.
public protocol LoginLog {
    func log(_ priority: LogPriority, _ message: String)
}

public enum LogPriority: Sendable {
    case error, warning, notice, info, debug
}

/// What the module returns to PAM.
public enum LoginResult: Equatable, Sendable {
    /// 2FA does not apply to this login now (PAM_IGNORE).
    case notApplicable
    /// A valid code (PAM_SUCCESS).
    case success
    /// A wrong or replayed code, a refused user, or an internal error after activation (PAM_AUTH_ERR).
    case denied
    /// Locked out after too many wrong codes; no code was asked for (PAM_MAXTRIES).
    case lockedOut
}

/// One login decided end to end: read the policy, the activation record, the user's devices and
/// state; decide; ask for a code if needed; check it under the user's lock; record what happened.
public struct Login<Conversation: LoginConversation, Log: LoginLog> {
    public var user: String
    public var configPath: String
    public var conversation: Conversation
    public var log: Log
    public var now: () -> Int64 = currentUnixTime
    public var debug = false

    public init(user: String, configPath: String, conversation: Conversation, log: Log) {
        self.user = user
        self.configPath = configPath
        self.conversation = conversation
        self.log = log
    }

    public func run() -> LoginResult {
        let startedAt = now()
        let configState = Config.load(path: configPath)
        var storeConfig = Config()
        switch configState {
        case .valid(let config), .invalid(let config, _): storeConfig = config
        case .unreadable: break
        }
        let store = StateStore(directory: storeConfig.stateDir)
        let activation = store.readActivation()

        let account = isValidUserName(user) ? Account.lookup(user) : nil
        let enrollment: EnrollmentState
        var deviceFile: DeviceFile? = nil
        let location = account.map { DeviceFileLocation(account: $0, config: storeConfig) }
        if let location {
            do {
                deviceFile = try location.load()
                enrollment = (deviceFile?.devices.isEmpty ?? true) ? .notEnrolled : .enrolled(deviceCount: deviceFile!.devices.count)
            } catch {
                enrollment = .unreadable(reason: "\(error)")
            }
        } else {
            // An unknown name is treated like a user with a device: same prompt, then refused, so
            // that answers never tell which names exist.
            enrollment = .enrolled(deviceCount: 1)
        }

        let outcome = decidePolicy(now: startedAt, user: user, config: configState, activation: activation, enrollment: enrollment)
        let notePriority: LogPriority = configStateIsBroken(configState) || activationIsUnreadable(activation) ? .error : .notice
        for note in outcome.logNotes { log.log(notePriority, "user \(user): \(note)") }
        if let record = outcome.activationToRecord {
            do {
                try store.recordActivation(record)
                log.log(.notice, "2FA is now mandatory on this host: activation recorded in \(store.activationPath)")
            } catch {
                log.log(.error, "could not record activation (enforcing anyway): \(error)")
            }
        }

        switch outcome.decision {
        case .notApplicable:
            if debug { log.log(.debug, "user \(user): 2FA not configured; ignored") }
            return .notApplicable
        case .noCodeRequired(let notice):
            if let notice { conversation.showInfo(notice) }
            if debug { log.log(.debug, "user \(user): no code required now") }
            return .notApplicable
        case .refuse(let message):
            conversation.showError(message)
            return .denied
        case .codeRequired:
            break
        }

        guard let location, let deviceFile else {
            _ = conversation.askHidden(loginPrompt)
            log.log(.notice, "user \(user): refused: no such user")
            return .denied
        }
        return checkCode(devices: deviceFile, location: location, config: outcome.config, store: store)
    }

    private func checkCode(devices: DeviceFile, location: DeviceFileLocation, config: Config, store: StateStore) -> LoginResult {
        let files: StateStore.UserFiles
        do {
            let remaining: Int64
            (files, remaining) = try lockoutBeforeAsking(store: store, config: config)
            if remaining > 0 {
                conversation.showError(lockoutMessage(remaining))
                log.log(.notice, "user \(user): locked out for \(remaining) more seconds; no code asked")
                return .lockedOut
            }
        } catch {
            log.log(.error, "user \(user): denied: state unreadable: \(error)")
            conversation.showError("Two-factor authentication failed because of a system problem. Ask an administrator to check the system log.")
            return .denied
        }

        guard let typed = conversation.askHidden(loginPrompt) else {
            log.log(.notice, "user \(user): no code entered (conversation ended)")
            return .denied
        }

        let verdict: LoginVerdict
        do {
            verdict = try store.update(files) { (state: inout UserState) throws(CoreError) -> LoginVerdict in
                let now = now()
                state.clampLockout(now: now, lockoutSeconds: config.lockoutSeconds)
                let remaining = state.lockoutRemaining(now: now, lockoutSeconds: config.lockoutSeconds)
                if remaining > 0 { return .lockedBefore(remaining: remaining) }
                var replayed = false
                for device in devices.devices {
                    let lastUsed = state.devices[device.id]?.lastStep
                    let lastAcceptedStep = device.verifiedStep.map { max($0, lastUsed ?? $0) } ?? lastUsed
                    let check = verifyTOTP(code: typed, secret: device.secret, parameters: device.parameters, now: now,
                                           window: config.window, lastAcceptedStep: lastAcceptedStep)
                    switch check {
                    case .accepted(let step):
                        state.recordSuccess(deviceID: device.id, step: step, now: now)
                        // Forget devices removed since (their ids are never reused).
                        if state.devices.count > 1 {
                            state.devices = state.devices.filter { id, _ in devices.devices.contains { $0.id == id } }
                        }
                        return .accepted(deviceName: device.name)
                    case .replayed: replayed = true
                    case .wrong, .malformed: continue
                    }
                }
                if !replayed, RecoveryCodes.normalize(typed) != nil, let left = try consumeRecoveryCode(typed, location: location) {
                    state.recordSuccess(deviceID: nil, step: nil, now: now)
                    return .recovery(codesLeft: left)
                }
                if state.recordFailure(now: now, maxFailures: config.maxFailures, lockoutSeconds: config.lockoutSeconds) {
                    return .lockedNow
                }
                return replayed ? .replayed : .wrong
            }
        } catch {
            log.log(.error, "user \(user): denied: could not check or record the code: \(error)")
            conversation.showError("Two-factor authentication failed because of a system problem. Ask an administrator to check the system log.")
            return .denied
        }

        switch verdict {
        case .accepted(let name):
            log.log(.info, "user \(user): code accepted from device '\(name)'")
            return .success
        case .recovery(let left):
            log.log(.notice, "user \(user): recovery code used; \(left) left")
            conversation.showInfo("Recovery code accepted. \(left) recovery code\(left == 1 ? "" : "s") left: link a new device with engage2fa-enroll.")
            return .success
        case .replayed:
            log.log(.notice, "user \(user): denied: code already used")
            conversation.showError("That code was already used. Wait for the next code and try again.")
            return .denied
        case .wrong:
            log.log(.notice, "user \(user): denied: wrong code")
            conversation.showError("Wrong verification code.")
            return .denied
        case .lockedNow:
            log.log(.warning, "user \(user): denied: \(config.maxFailures) wrong codes in a row; locked out for \(config.lockoutSeconds) s")
            conversation.showError("Wrong verification code. " + lockoutMessage(Int64(config.lockoutSeconds)))
            return .denied
        case .lockedBefore(let remaining):
            log.log(.notice, "user \(user): locked out for \(remaining) more seconds")
            conversation.showError(lockoutMessage(remaining))
            return .lockedOut
        }
    }

    /// The user's state files, and the seconds of lockout left before a code is asked for. Read without
    /// the lock (a lockout that starts or ends meanwhile is seen by the locked check of the code); only a
    /// lockout ending further ahead than `lockoutSeconds`, left by a clock that went back, is clamped and
    /// saved under the lock, so that it ends `lockoutSeconds` after this login at the latest.
    private func lockoutBeforeAsking(store: StateStore, config: Config) throws(CoreError) -> (StateStore.UserFiles, Int64) {
        let now = now()
        let files: StateStore.UserFiles
        let state: UserState
        do {
            files = try store.files(user: user)
            state = try store.read(files)
        } catch { throw .state(error) }
        guard state.lockedUntil > now + Int64(config.lockoutSeconds) else {
            return (files, state.lockoutRemaining(now: now, lockoutSeconds: config.lockoutSeconds))
        }
        let remaining = try store.update(files) { (state: inout UserState) throws(CoreError) -> Int64 in
            state.clampLockout(now: now, lockoutSeconds: config.lockoutSeconds)
            return state.lockoutRemaining(now: now, lockoutSeconds: config.lockoutSeconds)
        }
        return (files, remaining)
    }

    /// Checks a recovery code against the device file as it is now (re-read under the user's lock, so two
    /// logins cannot both use one code) and, if it matches, removes it from the file. Returns the codes left.
    private func consumeRecoveryCode(_ typed: [UInt8], location: DeviceFileLocation) throws(CoreError) -> Int? {
        guard var file = try location.load(), let index = file.recovery?.match(typed) else { return nil }
        file.recovery!.hashes.remove(at: index)
        try location.save(file)
        return file.recovery!.hashes.count
    }

    private func lockoutMessage(_ seconds: Int64) -> String {
        let minutes = (seconds + 59) / 60
        return "Too many wrong verification codes. Try again in \(minutes) minute\(minutes == 1 ? "" : "s")."
    }
}

private func configStateIsBroken(_ state: ConfigState) -> Bool {
    if case .valid = state { return false }
    return true
}

private func activationIsUnreadable(_ state: ActivationState) -> Bool {
    if case .unreadable = state { return true }
    return false
}

/// What checking one typed code came to, under the user's lock.
private enum LoginVerdict {
    case accepted(deviceName: String)
    case recovery(codesLeft: Int)
    case replayed, wrong, lockedNow
    case lockedBefore(remaining: Int64)
}
