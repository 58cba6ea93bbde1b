import CEngageSys

// The login's fleet path (store = ldap): the user's snapshot and the code check come from this host's
// engage2fad, which holds the directory connection; the rest of the login (policy, activation, prompts,
// messages) is the same as in local mode.

/// One login's conversation with engage2fad, and what is known when the directory cannot be reached.
final class FleetSession {
    let settings: FleetSettings
    let stateDirectory: String
    /// engage2fad's login socket (root), or its enrollment socket for a caller asking about itself.
    let socketPath: String
    private var connection: FleetConnection? = nil
    /// Why the directory could not be asked, once that happened: every required user is then denied.
    private(set) var unreachable: String? = nil
    /// The directory answered, but engage2fad could not use the answer for this user (e.g. the entry
    /// is another user's): denied the same way, with the reason for the admin rather than an outage.
    private(set) var serviceFailed = false
    /// The user's recovery-code salt and iterations from the snapshot, to hash a combined answer's candidates.
    private(set) var recoveryParameters: RecoveryCodes? = nil

    init(settings: FleetSettings, stateDirectory: String, socketPath: String) {
        self.settings = settings
        self.stateDirectory = stateDirectory
        self.socketPath = socketPath
    }

    private var budgetMilliseconds: Int64 { Int64(settings.timeoutSeconds) * 1000 }

    /// The directory's view of the user; when it cannot be had in time, the last one engage2fad cached
    /// (root-only, in state_dir), else the fleet policy it cached, else nothing but "has a device".
    func snapshot(account: Account, now: Int64, log: some LoginLog) -> FleetSnapshot {
        switch ask(.snapshot(user: account.name)) {
        case .snapshot(let snapshot):
            recoveryParameters = snapshot.recoverySalt.map { RecoveryCodes(salt: $0, iterations: snapshot.recoveryIterations, createdAt: 0, hashes: []) }
            return snapshot
        case .unreachable(let reason): unreachable = reason
        case .failed(let reason): unreachable = reason; serviceFailed = true
        default: unreachable = "unexpected answer from engage2fad"; serviceFailed = true
        }
        connection = nil
        if let cached = FleetCache.read(path: FleetCache.userPath(stateDirectory: stateDirectory, uid: account.uid)) { return cached }
        if var cached = FleetCache.read(path: FleetCache.policyPath(stateDirectory: stateDirectory)) {
            // The policy alone does not say whether this user has a device: assume so (fail closed).
            cached.devices = 1
            return cached
        }
        var unknown = FleetSnapshot()
        unknown.devices = 1
        return unknown
    }

    func check(user: String, typed: [UInt8], recoveryHashes: [[UInt8]] = []) -> FleetAnswer {
        guard unreachable == nil else { return .unreachable(unreachable!) }
        // An answer longer than any code is checked as the empty answer: a wrong code, counted, as in local
        // mode (sent whole, engage2fad would refuse the line and the login would log a false outage).
        return ask(.check(user: user, typed: typed.count <= FleetRequest.maxTypedBytes ? typed : [], recoveryHashes: recoveryHashes))
    }

    private func ask(_ request: FleetRequest) -> FleetAnswer {
        do throws(FleetConnectionError) {
            if connection == nil {
                connection = try FleetConnection(path: socketPath, budgetMilliseconds: budgetMilliseconds)
            }
            return try connection!.ask(request)
        } catch {
            connection = nil
            return .unreachable(error.description)
        }
    }
}

/// engage2fad's cache of what the directory said, so that a login without the directory still knows who
/// is required: root-only files in state_dir/fleet, one snapshot line each.
public enum FleetCache {
    public static func directory(stateDirectory: String) -> String { stateDirectory + "/fleet" }
    public static func userPath(stateDirectory: String, uid: uid_t) -> String { directory(stateDirectory: stateDirectory) + "/" + String(uid) + ".snapshot" }
    public static func policyPath(stateDirectory: String) -> String { directory(stateDirectory: stateDirectory) + "/policy.snapshot" }

    public static func read(path: String) -> FleetSnapshot? {
        guard let bytes = try? readTrustedFile(path, owners: FileOwners(0), maxSize: 4096),
              case .snapshot(let snapshot)? = FleetAnswer(line: Array(bytes.prefix { $0 != 0x0A })) else { return nil }
        return snapshot
    }
}

extension ConfigState {
    /// The local policy with the directory's start date, which wins when the directory has one.
    func takingPolicy(of snapshot: FleetSnapshot) -> ConfigState {
        guard let start = snapshot.startDate else { return self }
        switch self {
        case .valid(var config): config.startDate = start; return .valid(config)
        case .invalid(var config, let errors): config.startDate = start; return .invalid(config, errors: errors)
        case .unreadable: return self
        }
    }
}

extension Login {
    /// The code checked by engage2fad against the directory: the replay check, the failure count and the
    /// recovery code's consumption are compare-and-swap operations at the provider, so a code accepted on
    /// one host is refused on every other.
    func checkCodeCentrally(account: Account, lockedUntil: Int64, config: Config, fleet: FleetSession) -> LoginResult {
        let now = now()
        let remaining = UserState.lockoutRemaining(lockedUntil: lockedUntil, now: now, lockoutSeconds: config.lockoutSeconds)
        if remaining > 0 {
            conversation.showError(lockoutMessage(remaining))
            logAboutUser(.notice, "locked out for \(remaining) more seconds; no code asked")
            return .lockedOut
        }
        guard let answer = readAnswer() else {
            logAboutUser(.notice, passwordEntry == .useFirstPass
                         ? "denied: no password from an earlier module (use_first_pass)" : "no code entered (conversation ended)")
            return .denied
        }
        // The directory holds the devices, so a combined answer is split at the policy's digits, and the
        // recovery codes it may end with go as hashes with the user's salt (hashed here, as local mode
        // does): no part of the password goes to engage2fad.
        let codeLength = config.newDeviceParameters.digits
        let end = answer.combined ? Array(answer.code(digits: codeLength)) : answer.bytes
        // A code is that many digits: an end that is not (the password typed without its code) is the end
        // of the password, and is not sent; the check goes on with nothing typed, a wrong code, counted.
        let endIsACode = end.count == codeLength && end.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        let typed = answer.combined && !endIsACode ? [] : end
        let passwordLength = answer.combined ? answer.bytes.count - end.count : 0
        // Each candidate's password length, and its hash: a loop, not prefix/map (no generic collection code).
        var candidateLengths: [Int] = []
        var hashes: [[UInt8]] = []
        if answer.combined, let recovery = fleet.recoveryParameters {
            for candidate in answer.recoveryCandidates where hashes.count < FleetRequest.maxRecoveryHashes {
                candidateLengths.append(candidate.passwordLength)
                hashes.append(recovery.hash(of: candidate.code))
            }
        }
        let verdict: LoginVerdict
        switch fleet.check(user: account.name, typed: typed, recoveryHashes: hashes) {
        case .accepted(let name): verdict = .accepted(deviceName: name, passwordLength: passwordLength)
        case .recovery(let left, let candidate):
            verdict = .recovery(codesLeft: left, passwordLength: candidate < candidateLengths.count ? candidateLengths[candidate] : passwordLength)
        case .replayed: verdict = .replayed
        case .wrong: verdict = .wrong
        case .lockedNow: verdict = .lockedNow
        case .locked(let remaining): verdict = .lockedBefore(remaining: remaining)
        case .unreachable(let reason):
            return denyUnreachable(fleet, reason: reason)
        case .failed(let reason):
            return denyServiceFailure(reason: reason)
        default:
            return denyForSystemProblem("unexpected answer from engage2fad")
        }
        return finish(verdict, config: config, answer: answer, codeLength: codeLength)
    }

    /// A required user while no directory answers: never fail open.
    func denyUnreachable(_ fleet: FleetSession, reason: String) -> LoginResult {
        if fleet.serviceFailed { return denyServiceFailure(reason: reason) }
        // The URIs separated by spaces, appended to the line (joined(separator:) is a generic copy of its own).
        var line: MessageText = "denied: the directory cannot be reached (\(reason)); URIs: "
        var first = true
        for uri in fleet.settings.uris {
            line = first ? "\(line)\(uri)" : "\(line) \(uri)"
            first = false
        }
        logAboutUser(.error, line)
        conversation.showError("Two-factor authentication cannot be checked: the directory cannot be reached. Try again later or ask an administrator.")
        return .denied
    }

    /// A required user whom engage2fad could not check (it said why): never fail open.
    func denyServiceFailure(reason: String) -> LoginResult {
        denyForSystemProblem("engage2fad: \(displayText(reason, limit: 500))")
    }

    private func denyForSystemProblem(_ why: MessageText) -> LoginResult {
        logAboutUser(.error, "denied: \(why)")
        conversation.showError("Two-factor authentication failed because of a system problem. Ask an administrator to check the system log.")
        return .denied
    }

    /// "user NAME: " and `message`, logged: the fleet path's lines share this one call.
    @inline(never)
    private func logAboutUser(_ priority: LogPriority, _ message: MessageText) {
        log.log(priority, "user \(displayText(user, limit: 64)): \(message)")
    }
}
