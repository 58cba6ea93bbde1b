import CEngageSys

/// The prompt for the code, as peers' modules word it.
public let loginPrompt = "Verification code: "

/// The prompt for a password with the code at its end (`PasswordEntry.forwardPass`).
public let combinedPrompt = "Password & verification code: "

/// How the login talks to the person: the PAM conversation in the module.
public protocol LoginConversation {
    /// Asks a question with echo off; nil when the conversation failed or the user gave up.
    func askHidden(_ prompt: String) -> [UInt8]?
    func showInfo(_ text: String)
    func showError(_ text: String)
    /// The password an earlier module of the stack left (PAM_AUTHTOK); nil when there is none.
    func earlierPassword() -> [UInt8]?
    /// Hands a password on to the modules after this one (PAM_AUTHTOK).
    func forwardPassword(_ password: [UInt8])
}

extension LoginConversation {
    public func earlierPassword() -> [UInt8]? { nil }
    public func forwardPassword(_ password: [UInt8]) {}
}

/// Where the code comes from, as google-authenticator's module arguments name it.
public enum PasswordEntry: Equatable, Sendable {
    /// Its own prompt, for the code alone.
    case separate
    /// `forward_pass`: one prompt for the password with the code at its end; the password goes on to the
    /// next module as PAM_AUTHTOK.
    case forwardPass
    /// `use_first_pass`: the password with the code at its end, from an earlier module's PAM_AUTHTOK; never asks.
    case useFirstPass
    /// `try_first_pass`: the same, asking as `forwardPass` does when no earlier module left one.
    case tryFirstPass
}

/// What the person answered: the code alone, or a password with the code at its end, which is split off
/// at the length of the code it is checked as.
struct TypedAnswer {
    var bytes: [UInt8]
    var combined: Bool

    /// The code as a device with `digits` digits would read it: the whole answer, or its last `digits` bytes.
    func code(digits: Int) -> ArraySlice<UInt8> {
        combined ? bytes.suffix(digits) : bytes[...]
    }

    /// The recovery codes the answer may end with (normalized), each with the length of the password before it:
    /// the shortest end holding a whole recovery code, and the last 8 characters (a google-authenticator scratch code).
    var recoveryCandidates: [(code: [UInt8], passwordLength: Int)] {
        guard combined else { return RecoveryCodes.normalize(bytes).map { [($0, 0)] } ?? [] }
        var candidates: [(code: [UInt8], passwordLength: Int)] = []
        var start = bytes.count
        var characters = 0
        while start > 0 && characters < RecoveryCodes.codeLength {
            start -= 1
            if bytes[start] != UInt8(ascii: "-") && bytes[start] != UInt8(ascii: " ") { characters += 1 }
        }
        if let code = RecoveryCodes.normalize(bytes[start...]) { candidates.append((code, start)) }
        if bytes.count >= RecoveryCodes.scratchCodeLength, let code = RecoveryCodes.normalize(bytes.suffix(RecoveryCodes.scratchCodeLength)),
           !candidates.contains(where: { $0.code == code }) {
            candidates.append((code, bytes.count - RecoveryCodes.scratchCodeLength))
        }
        return candidates
    }

    /// The password before a code of `length` bytes.
    func password(beforeCodeOf length: Int) -> [UInt8] {
        Array(bytes.prefix(max(0, bytes.count - length)))
    }
}

/// Where the login reports to the admin: syslog in the module. Messages never hold a secret or a code.
/// A line is built by interpolation into one byte buffer (`MessageText`), which the module escapes and hands to C.
public protocol LoginLog {
    func log(_ priority: LogPriority, _ message: MessageText)
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
    /// The PAM service (PAM_SERVICE, which libpam lowercases), for `exempt_services`.
    public var service: String? = nil
    /// Where the code comes from (`forward_pass`, `use_first_pass`, `try_first_pass`).
    public var passwordEntry = PasswordEntry.separate
    /// Seams for tests of the whole flow without root; the module never changes them.
    /// Whether this process may take users' locks and write root's state (euid 0).
    public var privileged = effectiveUserID() == 0
    /// Where activation records are kept, and who must own them.
    public var activationRoot = ActivationStore.defaultRoot
    public var activationOwner: uid_t = 0

    public init(user: String, configPath: String, conversation: Conversation, log: Log) {
        self.user = user
        self.configPath = configPath
        self.conversation = conversation
        self.log = log
    }

    public func run() -> LoginResult {
        let startedAt = now()
        let facts = gatherFacts(startedAt: startedAt)
        // Group lookups (NSS) only when the policy names groups; an unknown user is in none it can prove.
        var membership = GroupMembership.unknown
        if let account = facts.account, let groups = facts.configState.validScopeGroups { membership = account.membership(of: groups) }
        let outcome = decidePolicy(now: startedAt, user: facts.account?.name ?? user, config: facts.configState, activation: facts.activation,
                                   enrollment: facts.enrollment, stateDeadline: facts.state.deadline, service: service, membership: membership)
        report(outcome, facts)
        return respond(to: outcome, facts, startedAt: startedAt)
    }

    /// The user as log lines name them: escaped, bounded.
    var shownUser: String { displayText(user, limit: 64) }

    /// The policy, the activation, the user's account, devices and state, read once (a step of `run`: each
    /// step takes what the one before made, so that no Optional of a big struct is copied or destroyed at
    /// every exit).
    @inline(never)
    private func gatherFacts(startedAt: Int64) -> LoginFacts {
        let configState = Config.load(path: configPath)
        // The settings that say where the store is, read out of the state (not a copy of the whole Config).
        var (stateDirectory, secretPath, fleetSettings) = configState.storeSettings
        let activationStore = ActivationStore(configPath: configPath, root: activationRoot, owner: activationOwner)
        var (activation, legacy) = activationStore.readIncludingLegacy(stateDirectory: stateDirectory)
        if let legacy, privileged {
            // An older version kept the record in state_dir: it still counts, and moves to the compiled-in place.
            moveLegacyRecord(legacy, to: activationStore, stateDirectory: stateDirectory)
        }
        // An unprivileged caller may be unable to read the record (a directory an older package made 0700).
        // Then only a usable policy whose start date is still ahead proves 2FA is not active yet; anything
        // else counts as active, so that such a caller lets nobody but its own user through on the password.
        if !privileged, case .unreadable = activation, case .valid(let config) = configState,
            let start = config.startDate, startedAt < start.unixTime {
            activation = .never
        }
        // Once active, a policy file that cannot be used must not move the state elsewhere (replay steps,
        // lockouts, revocations and used recovery codes would be lost): the state_dir recorded at activation.
        if configStateIsBroken(configState), case .active(let record) = activation, let recorded = record.stateDirectory {
            stateDirectory = recorded
        }
        let account = isSafeUserName(user) ? Account.lookup(user) : nil
        // Fleet mode: devices, replay and lockout state, the start date and deadlines are the directory's,
        // asked of this host's engage2fad (the module never loads libldap). A caller without root (a screen
        // locker) asks about its own user only, over the socket anyone may open: engage2fad knows the caller
        // by SO_PEERCRED and checks with the same fleet-wide replay and lockout.
        let asksForItself = !privileged && account.map { $0.uid == effectiveUserID() } == true
        let fleet = fleetSettings.flatMap { settings in
            privileged || asksForItself
                ? FleetSession(settings: settings, stateDirectory: stateDirectory,
                               socketPath: privileged ? settings.loginSocketPath : settings.enrollSocketPath)
                : nil
        }
        var facts = LoginFacts(configState: configState, activation: activation, store: StateStore(directory: stateDirectory),
                               stateDirectory: stateDirectory, activationStore: activationStore, account: account, fleet: fleet)
        if let account, let fleet {
            readCentrally(account: account, fleet: fleet, startedAt: startedAt, into: &facts)
        } else if let account {
            readLocally(account: account, location: DeviceFileLocation(account: account, secretPath: secretPath), into: &facts)
        }
        return facts
    }

    /// Copies an older version's activation record (kept in state_dir) to the compiled-in place.
    @_optimize(size)  // once per host, at the first login after an upgrade
    private func moveLegacyRecord(_ legacy: ActivationRecord, to activationStore: ActivationStore, stateDirectory: String) {
        do {
            try activationStore.record(legacy)
            log.log(.notice, "activation record of \(displayText(ActivationStore.legacyPath(stateDirectory: stateDirectory))) copied to \(activationStore.recordPath)")
        } catch {
            log.log(.error, "could not copy the activation record to \(activationStore.recordPath) (enforcing anyway): \(error)")
        }
    }

    /// Fleet mode: the user's snapshot from engage2fad.
    private func readCentrally(account: Account, fleet: FleetSession, startedAt: Int64, into facts: inout LoginFacts) {
        let snapshot = fleet.snapshot(account: account, now: startedAt, log: log)
        facts.enrollment = snapshot.enrollment
        facts.state.deadline = snapshot.deadline
        facts.state.lockedUntil = snapshot.lockedUntil
        facts.configState = facts.configState.takingPolicy(of: snapshot)
        if let centralStart = snapshot.activatedAt, case .never = facts.activation {
            // Another host saw the start date pass: 2FA is active here too, and stays so.
            var record = ActivationRecord(activatedAt: centralStart, recordedAt: startedAt, configPath: configPath, stateDirectory: facts.stateDirectory)
            if privileged {
                do { try facts.activationStore.record(record) } catch {
                    log.log(.error, "could not record activation in \(facts.activationStore.recordPath) (enforcing anyway): \(error)")
                }
            }
            record.recordedAt = startedAt
            facts.activation = .active(record)
        }
    }

    /// Local mode: the user's device file and root's state for them.
    private func readLocally(account: Account, location: DeviceFileLocation, into facts: inout LoginFacts) {
        do throws(CoreError) {
            let read = try location.loadSnapshot()
            facts.devicesRead = read
            // The state's path, built once for this read and the transaction's.
            let statePath = facts.store.statePath(uid: account.uid)
            facts.statePath = statePath
            do { facts.state = try facts.store.read(account: account, statePath: statePath) } catch {
                // Unprivileged callers may not see root's state; they cannot pass a code check anyway.
                if privileged { throw CoreError.state(error) }
            }
            facts.enrollment = EnrollmentState(file: read.file, state: facts.state)
        } catch {
            facts.enrollment = .unreadable(reason: error.description)
        }
        facts.location = location
    }

    /// The decision's notes logged, and a new activation recorded.
    private func report(_ outcome: PolicyOutcome, _ facts: LoginFacts) {
        if !outcome.logNotes.isEmpty {
            let notePriority: LogPriority = configStateIsBroken(facts.configState) || activationIsUnreadable(facts.activation) ? .error : .notice
            let shownUser = shownUser
            for note in outcome.logNotes { log.log(notePriority, "user \(shownUser): \(note)") }
        }
        if let record = outcome.activationToRecord { recordActivation(record, facts) }
    }

    @_optimize(size)  // once per host, at the first login on or after start_date
    private func recordActivation(_ decided: ActivationRecord, _ facts: LoginFacts) {
        var record = decided
        record.configPath = configPath
        record.stateDirectory = facts.stateDirectory
        if privileged {
            do {
                try facts.activationStore.record(record)
                log.log(.notice, "2FA is now mandatory: activation recorded in \(facts.activationStore.recordPath)")
            } catch {
                log.log(.error, "could not record activation in \(facts.activationStore.recordPath) (enforcing anyway): \(error)")
            }
        } else {
            log.log(.notice, "start_date reached; activation is recorded at the next login through a privileged caller")
        }
    }

    /// What the login does with the decision: nothing, a notice, a refusal, or the code check.
    @inline(never)
    private func respond(to outcome: PolicyOutcome, _ facts: LoginFacts, startedAt: Int64) -> LoginResult {
        let asksOrDenies = outcome.decision.deniesWithoutACode || outcome.decision.requiresACode
        if !privileged, facts.fleet == nil, let account = facts.account, asksOrDenies {
            return denyUnprivileged(account: account, config: outcome.config)
        }
        if let fleet = facts.fleet, let unreachable = fleet.unreachable, asksOrDenies {
            return denyUnreachable(fleet, reason: unreachable)
        }

        switch outcome.decision {
        case .notApplicable:
            if debug { log.log(.debug, "user \(shownUser): 2FA not configured; ignored") }
            return .notApplicable
        case .noCodeRequired(let reason):
            if let notice = reason.promptText(now: startedAt) { conversation.showInfo(notice) }
            if debug { log.log(.debug, "user \(shownUser): no code required now") }
            return .notApplicable
        case .refuse(let reason):
            conversation.showError(reason.promptText(user: facts.account?.name ?? user))
            return .denied
        case .codeRequired:
            break
        }

        guard let account = facts.account else { return denyUnknownUser() }
        if let fleet = facts.fleet {
            return checkCodeCentrally(account: account, lockedUntil: facts.state.lockedUntil, config: outcome.config, fleet: fleet)
        }
        guard let location = facts.location else { return denyUnknownUser() }
        return checkCode(account: account, location: location, state: facts.state, devices: facts.devicesRead, config: outcome.config, store: facts.store,
                         statePath: facts.statePath ?? facts.store.statePath(uid: account.uid))
    }

    /// Without root the module can neither take the user's lock nor record a used code.
    @_optimize(size)  // a screen locker or su run by a user: not the login path
    private func denyUnprivileged(account: Account, config: Config) -> LoginResult {
        if config.unprivileged == .allowSelf && realUserID() == account.uid {
            log.log(.notice, "user \(shownUser): unprivileged caller (uid \(realUserID())) re-authenticating its own user: password only (unprivileged = allow-self)")
            return .notApplicable
        }
        log.log(.warning, "user \(shownUser): denied: unprivileged caller (uid \(realUserID())) cannot check codes (unprivileged = \(config.unprivileged == .deny ? "deny" : "allow-self"))")
        conversation.showError("Two-factor authentication cannot be checked by this program. Log in with a program that asks for your verification code.")
        return .denied
    }

    /// An unknown name gets the prompt and the answer of a wrong code, so that answers never tell which names exist.
    @_optimize(size)  // a name with no account
    private func denyUnknownUser() -> LoginResult {
        if let answer = readAnswer() { conversation.forwardPassword(answer.password(beforeCodeOf: OTPParameters().digits)) }
        log.log(.notice, "user \(shownUser): denied: no such user")
        conversation.showError(wrongCodeMessage)
        return .denied
    }

    var wrongCodeMessage: String { "Wrong verification code." }

    /// The answer, asked for or taken from an earlier module as `passwordEntry` says; nil when there is none.
    func readAnswer() -> TypedAnswer? {
        switch passwordEntry {
        case .separate:
            return conversation.askHidden(loginPrompt).map { TypedAnswer(bytes: $0, combined: false) }
        case .forwardPass:
            return conversation.askHidden(combinedPrompt).map { TypedAnswer(bytes: $0, combined: true) }
        case .useFirstPass:
            return conversation.earlierPassword().map { TypedAnswer(bytes: $0, combined: true) }
        case .tryFirstPass:
            return (conversation.earlierPassword() ?? conversation.askHidden(combinedPrompt)).map { TypedAnswer(bytes: $0, combined: true) }
        }
    }

    private func checkCode(
        account: Account, location: DeviceFileLocation, state snapshot: UserState, devices devicesRead: DeviceFileSnapshot?, config: Config, store: StateStore,
        statePath: String
    ) -> LoginResult {
        let shownUser = displayText(user, limit: 64)
        do {
            let remaining = try lockoutBeforeAsking(snapshot, account: account, store: store, config: config)
            if remaining > 0 {
                conversation.showError(lockoutMessage(remaining))
                log.log(.notice, "user \(shownUser): locked out for \(remaining) more seconds; no code asked")
                return .lockedOut
            }
        } catch {
            log.log(.error, "user \(shownUser): denied: state unreadable: \(error)")
            conversation.showError("Two-factor authentication failed because of a system problem. Ask an administrator to check the system log.")
            return .denied
        }

        guard let answer = readAnswer() else {
            log.log(.notice, passwordEntry == .useFirstPass
                    ? "user \(shownUser): denied: no password from an earlier module (use_first_pass)"
                    : "user \(shownUser): no code entered (conversation ended)")
            return .denied
        }

        // A recovery code's key derivation (PBKDF2) is done before the lock is taken, so that the lock is
        // held for a moment only, whatever iteration count the user's file names.
        // (Only when the file read before the prompt has recovery codes: one that gained them meanwhile is
        // handled under the lock.)
        let snapshotRecovery = devicesRead?.file?.recovery
        let recoveryCandidates = snapshotRecovery == nil ? [] : answer.recoveryCandidates
        let recoveryHashes = snapshotRecovery.map { recovery in recoveryCandidates.map { recovery.hash(of: $0.code) } } ?? []
        // The password forwarded when no code matched: the one before a code of the first device's length.
        let codeLength = devicesRead?.file?.devices.first?.parameters.digits ?? OTPParameters().digits

        let verdict: LoginVerdict
        do {
            // The devices are read again under the lock, unless the file is provably the one read before the
            // prompt: one removed (or reset) while this login waited at the prompt no longer counts.
            verdict = try store.transaction(account: account, statePath: statePath, devices: location, unchangedSince: devicesRead) { (state: inout UserState, file: DeviceFile?) throws(CoreError) -> LoginVerdict in
                let now = now()
                state.clampLockout(now: now, lockoutSeconds: config.lockoutSeconds)
                let remaining = state.lockoutRemaining(now: now, lockoutSeconds: config.lockoutSeconds)
                if remaining > 0 { return .lockedBefore(remaining: remaining) }
                state.prune(for: file)
                var replayed = false
                for device in state.liveDevices(of: file) {
                    let lastUsed = state.devices[device.id]?.lastStep
                    let lastAcceptedStep = device.verifiedStep.map { max($0, lastUsed ?? $0) } ?? lastUsed
                    let check = verifyTOTP(code: answer.code(digits: device.parameters.digits), secret: device.secret, parameters: device.parameters,
                                           now: now, window: config.window, lastAcceptedStep: lastAcceptedStep)
                    switch check {
                    case .accepted(let step):
                        state.recordSuccess(deviceID: device.id, step: step, now: now)
                        // A linked device ends any personal deadline: removing it later must not bring the grace back.
                        state.deadline = nil
                        return .accepted(deviceName: device.name, passwordLength: answer.bytes.count - device.parameters.digits)
                    case .replayed: replayed = true
                    case .wrong, .malformed: continue
                    }
                }
                if !replayed, let recovery = file?.recovery,
                   case let candidates = snapshotRecovery == nil ? answer.recoveryCandidates : recoveryCandidates, !candidates.isEmpty {
                    let live = state.liveRecoveryCodes(of: file)
                    let sameSet = recovery.salt == snapshotRecovery?.salt && recovery.iterations == snapshotRecovery?.iterations
                    for (index, candidate) in candidates.enumerated() {
                        let hash = sameSet ? recoveryHashes[index] : recovery.hash(of: candidate.code)
                        if let match = recovery.match(hash: hash, among: live) {
                            state.usedRecoveryCodes.append(RecoveryCodeUse(salt: recovery.salt, hashPrefix: Array(recovery.hashes[match].prefix(RecoveryCodeUse.prefixLength))))
                            state.recordSuccess(deviceID: nil, step: nil, now: now)
                            return .recovery(codesLeft: live.count - 1, passwordLength: candidate.passwordLength)
                        }
                    }
                }
                if state.recordFailure(now: now, maxFailures: config.maxFailures, lockoutSeconds: config.lockoutSeconds) {
                    return .lockedNow
                }
                return replayed ? .replayed : .wrong
            }
        } catch {
            log.log(.error, "user \(shownUser): denied: could not check or record the code: \(error)")
            conversation.showError("Two-factor authentication failed because of a system problem. Ask an administrator to check the system log.")
            return .denied
        }

        return finish(verdict, config: config, answer: answer, codeLength: codeLength)
    }

    /// What the person is told and the admin's log says about a checked code, whichever store checked it;
    /// a combined answer's password (the part before the code, `codeLength` when no code matched) goes on
    /// to the next module.
    func finish(_ verdict: LoginVerdict, config: Config, answer: TypedAnswer, codeLength: Int) -> LoginResult {
        let shownUser = displayText(user, limit: 64)
        var codeLength = codeLength
        switch verdict {
        case .accepted(_, let passwordLength), .recovery(_, let passwordLength): codeLength = answer.bytes.count - passwordLength
        default: break
        }
        if answer.combined { conversation.forwardPassword(answer.password(beforeCodeOf: codeLength)) }

        switch verdict {
        case .accepted(let name, _):
            log.log(.info, "user \(shownUser): code accepted from device '\(displayText(name, limit: 64))'")
            return .success
        case .recovery(let left, _):
            log.log(.notice, "user \(shownUser): recovery code used; \(left) left")
            conversation.showInfo(MessageText("Recovery code accepted. \(left) recovery code\(left == 1 ? "" : "s") left: link a new device with engage2fa-enroll.").text)
            return .success
        case .replayed:
            log.log(.notice, "user \(shownUser): denied: code already used")
            conversation.showError("That code was already used. Wait for the next code and try again.")
            return .denied
        case .wrong:
            log.log(.notice, "user \(shownUser): denied: wrong code")
            conversation.showError(wrongCodeMessage)
            return .denied
        case .lockedNow:
            log.log(.warning, "user \(shownUser): denied: \(config.maxFailures) wrong codes in a row; locked out for \(config.lockoutSeconds) s")
            conversation.showError(wrongCodeMessage + " " + lockoutMessage(Int64(config.lockoutSeconds)))
            return .denied
        case .lockedBefore(let remaining):
            log.log(.notice, "user \(shownUser): locked out for \(remaining) more seconds")
            conversation.showError(lockoutMessage(remaining))
            return .lockedOut
        }
    }

    /// The seconds of lockout left before a code is asked for, from the state read without the lock (a
    /// lockout that starts or ends meanwhile is seen by the locked check of the code); only a lockout ending
    /// further ahead than `lockoutSeconds`, left by a clock that went back, is clamped and saved under the
    /// lock, so that it ends `lockoutSeconds` after this login at the latest.
    private func lockoutBeforeAsking(_ state: UserState, account: Account, store: StateStore, config: Config) throws(CoreError) -> Int64 {
        let now = now()
        guard state.lockedUntil > now + Int64(config.lockoutSeconds) else {
            return state.lockoutRemaining(now: now, lockoutSeconds: config.lockoutSeconds)
        }
        return try store.transaction(account: account, devices: nil) { (state: inout UserState, _) throws(CoreError) -> Int64 in
            state.clampLockout(now: now, lockoutSeconds: config.lockoutSeconds)
            return state.lockoutRemaining(now: now, lockoutSeconds: config.lockoutSeconds)
        }
    }

    func lockoutMessage(_ seconds: Int64) -> String {
        let minutes = (seconds + 59) / 60
        return MessageText("Too many wrong verification codes. Try again in \(minutes) minute\(minutes == 1 ? "" : "s").").text
    }
}

extension ConfigState {
    /// Where the store is: state_dir, secret_path and, in fleet mode, the fleet's settings, of the policy as
    /// read (the defaults when it could not be read), read in place.
    fileprivate var storeSettings: (stateDirectory: String, secretPath: String, fleet: FleetSettings?) {
        switch self {
        case .valid(let config), .invalid(let config, _): (config.stateDir, config.secretPath, config.fleet.store == .ldap ? config.fleet : nil)
        case .unreadable: (Config().stateDir, Config().secretPath, nil)
        }
    }

    /// The groups a valid policy names (read in place: binding the Config out of the enum copies it).
    fileprivate var validScopeGroups: [String]? {
        if case .valid(let config) = self { return config.scopeGroups }
        return nil
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

/// What a login read before it decides (`Login.gatherFacts`).
struct LoginFacts {
    var configState: ConfigState
    var activation: ActivationState
    /// The user's state, where the store is (the state_dir in effect), and the activation record's place.
    var store: StateStore
    var stateDirectory: String
    var activationStore: ActivationStore
    var account: Account?
    var fleet: FleetSession?
    /// An unknown name is treated like a user with a device: same prompt, then the same answer as a
    /// wrong code, so that answers never tell which names exist.
    var enrollment = EnrollmentState.enrolled(devices: 1, recoveryCodes: 0)
    var state = UserState()
    /// The device file as read before the prompt (local mode), and where it is.
    var devicesRead: DeviceFileSnapshot? = nil
    var location: DeviceFileLocation? = nil
    /// The user's state file (local mode), as the read before the prompt built it.
    var statePath: String? = nil
}

/// What checking one typed code came to, under the user's lock.
enum LoginVerdict {
    /// `passwordLength`: how much of a combined answer was the password before the code.
    case accepted(deviceName: String, passwordLength: Int)
    case recovery(codesLeft: Int, passwordLength: Int)
    case replayed, wrong, lockedNow
    case lockedBefore(remaining: Int64)
}
