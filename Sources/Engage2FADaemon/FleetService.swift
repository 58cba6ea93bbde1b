// What engage2fad does for one connection of the PAM module (root): the user's snapshot, and the check
// of one code, decided against the directory with compare-and-swap modifies at the provider.

import Engage2FADirectory
import Engage2FALogin
import Engage2FAManagement
import Glibc
import CEngageSys

final class FleetService {
    let configPath: String
    let config: Config
    private var directory: Directory? = nil
    var now: () -> Int64 = currentUnixTime

    init(configPath: String, config: Config) {
        self.configPath = configPath
        self.config = config
    }

    var settings: FleetSettings { config.fleet }
    var layout: FleetLayout { FleetLayout(base: settings.base) }
    var policyDN: String { layout.policyDN }
    func userDN(_ user: String) -> String { layout.userDN(user) }

    /// The open connection, or why none could be had in time.
    func connected() -> Result<Directory, FleetFailure> {
        if let directory { return .success(directory) }
        switch Directory.connect(settings: settings, budgetMilliseconds: Int64(settings.timeoutSeconds) * 1000 - 250) {
        case .success(let opened):
            directory = opened
            return .success(opened)
        case .failure(let failure):
            return .failure(.unreachable(failure.reason))
        }
    }

    enum FleetFailure: Error {
        case unreachable(String)
        case failed(String)
        /// The user's entry is another user's (a case twin): this user is served nothing of it.
        case anotherUsersEntry(String)
        var answer: FleetAnswer {
            switch self {
            case .unreachable(let reason): .unreachable(reason)
            case .failed(let reason), .anotherUsersEntry(let reason): .failed(reason)
            }
        }
    }

    func answer(_ request: FleetRequest) -> FleetAnswer {
        let result: Result<FleetAnswer, FleetFailure>
        switch request {
        case .snapshot(let user): result = snapshot(user: user)
        case .check(let user, let typed, let hashes): result = check(user: user, typed: typed, recoveryHashes: hashes)
        default: return .failed("not a login request")
        }
        switch result {
        case .success(let answer): return answer
        case .failure(let failure):
            // A broken connection is not kept: the next request reconnects.
            directory = nil
            return failure.answer
        }
    }

    func readUser(_ user: String, on directory: Directory) -> Result<DirectoryUser, FleetFailure> {
        directory.readUser(user, layout: layout).mapError { failure in
            if failure.code == Directory.DirectoryFailure.anotherUsersEntry {
                serviceLog(LOG_WARNING, "refused \(displayText(user, limit: 64)): \(failure.text)")
                return .anotherUsersEntry(failure.text)
            }
            return .failed("search \(userDN(user)): \(failure.text)")
        }
    }

    func snapshot(user: String) -> Result<FleetAnswer, FleetFailure> {
        let directory: Directory
        switch connected() {
        case .success(let open): directory = open
        case .failure(let failure): return .failure(failure)
        }
        var snapshot = FleetSnapshot()
        switch directory.search(base: policyDN, subtree: false, attributes: ["e2faStartDate", "e2faActivatedAt"]) {
        case .failure(let failure): return .failure(.failed("search \(policyDN): \(failure.text)"))
        case .success(let entries):
            if let policy = entries.first {
                if let text = policy.text("e2faStartDate") {
                    do { snapshot.startDate = try PolicyDate(parsing: text) } catch {
                        return .failure(.failed("\(policyDN): e2faStartDate: \(error)"))
                    }
                }
                snapshot.activatedAt = policy.integer("e2faActivatedAt")
            }
        }
        let now = now()
        if let start = snapshot.startDate, start.unixTime <= now, snapshot.activatedAt == nil {
            // Recorded once for the fleet (add-only): a later change of the start date cannot turn 2FA off.
            let code = directory.modify(dn: policyDN, [.add("e2faActivatedAt", [Array(String(now).utf8)])])
            if code == LDAPResult.success || LDAPResult.lostRace(code) { snapshot.activatedAt = now }
        }
        switch readUser(user, on: directory) {
        case .failure(.anotherUsersEntry):
            // Counted as enrolled, as an unusable device is: asked for a code once 2FA applies, and every
            // check of it refused (the reason in the system log), never let in on the password.
            snapshot.devices = 1
        case .failure(let failure): return .failure(failure)
        case .success(let found):
            for problem in found.problems { serviceLog(LOG_WARNING, "user \(displayText(user, limit: 64)): \(problem)") }
            // An unusable device entry still counts: its user is enrolled (and cannot log in until it is repaired).
            snapshot.devices = found.devices.count + found.problems.count
            snapshot.recoveryCodes = found.recoveryCodesLeft
            snapshot.recoverySalt = found.recovery?.salt
            snapshot.recoveryIterations = found.recovery?.iterations ?? 0
            snapshot.lockedUntil = found.lockedUntil > now ? now + clampLockout(found.dn, lockedUntil: found.lockedUntil, on: directory, now: now) : found.lockedUntil
            if let text = found.entry?.text("e2faDeadline") { snapshot.deadline = try? PolicyDate(parsing: text) }
        }
        writeCache(user: user, snapshot: snapshot)
        return .success(.snapshot(snapshot))
    }

    /// What the module falls back on when no directory answers: who is required, root-only.
    private func writeCache(user: String, snapshot: FleetSnapshot) {
        let folder = FleetCache.directory(stateDirectory: config.stateDir)
        // state_dir as the local store makes it (root's, searchable), and the cache in it root's alone.
        _ = config.stateDir.withCString { mkdir($0, 0o711) }
        _ = folder.withCString { mkdir($0, 0o700) }
        var policy = FleetSnapshot()
        policy.startDate = snapshot.startDate
        policy.activatedAt = snapshot.activatedAt
        do {
            // Written only when it changed: most logins find what the last one cached (an fsync saved).
            let policyPath = FleetCache.policyPath(stateDirectory: config.stateDir)
            if FleetCache.read(path: policyPath) != policy {
                try writeFileAtomically(policyPath, contents: FleetAnswer.snapshot(policy).line, syncDirectory: false)
            }
            if let account = Account.lookup(user) {
                let userPath = FleetCache.userPath(stateDirectory: config.stateDir, uid: account.uid)
                if FleetCache.read(path: userPath) != snapshot {
                    try writeFileAtomically(userPath, contents: FleetAnswer.snapshot(snapshot).line, syncDirectory: false)
                }
            }
        } catch {
            serviceLog(LOG_ERR, "could not cache the directory's policy in \(folder): \(error)")
        }
    }

    /// Checks a typed code for `user`; with `devicesOnly` (proof of an existing device at enrollment) a
    /// recovery code does not count. The user's entry may come from a replica that is behind: what it says
    /// of devices and last steps is only the old value of a compare-and-swap at the provider, and whether
    /// the user is locked out is decided at the provider, never on the copy read: an accepted code also
    /// clears the failure count under an assertion (RFC 4528) that the provider's entry shows no lockout,
    /// and a wrong one is counted by an increment under the same assertion (see `countFailure`).
    func check(user: String, typed: [UInt8], recoveryHashes: [[UInt8]] = [], devicesOnly: Bool = false) -> Result<FleetAnswer, FleetFailure> {
        let directory: Directory
        switch connected() {
        case .success(let open): directory = open
        case .failure(let failure): return .failure(failure)
        }
        let found: DirectoryUser
        switch readUser(user, on: directory) {
        case .success(let read): found = read
        case .failure(let failure): return .failure(failure)
        }
        let now = now()
        // A lockout any copy shows holds (the provider's may be newer still: see countAttempt).
        if found.lockedUntil > now { return .success(.locked(remaining: clampLockout(found.dn, lockedUntil: found.lockedUntil, on: directory, now: now))) }
        // No entry yet (an unknown or never-enrolled user): no device to accept, nothing to count against.
        guard found.entry != nil else { return .success(.wrong) }
        var replayed = false
        for stored in found.devices {
            let lastAccepted = stored.device.verifiedStep.map { max($0, stored.lastStep ?? $0) } ?? stored.lastStep
            switch verifyTOTP(code: typed, secret: stored.device.secret, parameters: stored.device.parameters, now: now,
                              window: config.window, lastAcceptedStep: lastAccepted) {
            case .accepted(let step):
                // The compare-and-swap: delete the value read, add the new one, in one modify. A host that
                // accepted this (or a later) code meanwhile removed the value read: noSuchAttribute, refused.
                var changes: [DirectoryChange] = []
                if let last = stored.lastStep { changes.append(.delete("oathTOTPLastTimeStep", [Array(String(last).utf8)])) }
                changes.append(.add("oathTOTPLastTimeStep", [Array(String(step).utf8)]))
                let code = directory.modify(dn: stored.dn, changes)
                if LDAPResult.lostRace(code) { replayed = true; continue }
                guard code == LDAPResult.success else { return .failure(.failed("modify \(stored.dn): \(directory.describe(code))")) }
                // The step is used up either way; the login passes only if the provider shows no lockout.
                return clearFailures(found, alsoDeleting: nil, on: directory, now: now).map { $0 ?? .accepted(deviceName: stored.device.name) }
            case .replayed: replayed = true
            case .wrong, .malformed: continue
            }
        }
        if !replayed, !devicesOnly, let recovery = found.recovery {
            // The typed answer itself, or the hashes of a combined answer's candidates (made by the module
            // with this salt; a salt changed since matches nothing).
            let candidates = recoveryHashes.isEmpty ? RecoveryCodes.normalize(typed).map { [recovery.hash(of: $0)] } ?? [] : recoveryHashes
            for (position, candidate) in candidates.enumerated() {
                guard let index = recovery.match(hash: candidate, among: Array(recovery.hashes.indices)) else { continue }
                // Consumed by deleting exactly this value: of two hosts, one succeeds, the other gets noSuchAttribute;
                // in the same modify as the count's reset, so a lockout at the provider keeps the code unused.
                let hash = Array(hexString(recovery.hashes[index]).utf8)
                switch clearFailures(found, alsoDeleting: hash, on: directory, now: now) {
                case .success(nil): return .success(.recovery(codesLeft: recovery.hashes.count - 1, candidate: position))
                case .success(let locked?): return .success(locked)
                case .failure(.failed(let reason)) where reason.hasPrefix(Self.lostRacePrefix): continue
                case .failure(let failure): return .failure(failure)
                }
            }
        }
        // Not accepted: counted; the failure that reaches max_failures starts the lockout.
        let attempt: Int64
        switch countFailure(found, on: directory, now: now) {
        case .failure(let failure): return .failure(failure)
        case .success(.locked(let remaining)): return .success(.locked(remaining: remaining))
        case .success(.counted(let number)): attempt = number
        }
        guard attempt >= Int64(config.maxFailures) else { return .success(replayed ? .replayed : .wrong) }
        let lockedUntil = now + Int64(config.lockoutSeconds)
        let code = directory.modify(dn: found.dn, [.replace("e2faLockedUntil", [Array(String(lockedUntil).utf8)]), .replace("e2faFailures", [Array("0".utf8)])])
        guard code == LDAPResult.success else { return .failure(.failed("modify \(found.dn): \(directory.describe(code))")) }
        return .success(.lockedNow)
    }

    enum Attempt: Equatable {
        /// The fleet-wide number of this failure since the last success or lockout, this one included.
        case counted(Int64)
        case locked(remaining: Int64)
    }

    /// The filter of an entry that shows no lockout at `now`, for the assertion control.
    private func notLocked(_ now: Int64) -> String { "(!(e2faLockedUntil>=\(now + 1)))" }

    /// Counts one wrong code at the provider: an increment (RFC 4525) of the failure count that the
    /// provider applies only while its copy of the entry shows no lockout (an assertion, RFC 4528),
    /// returning the count it reached (post-read, RFC 4527). A replica that is behind decides nothing:
    /// the lockout and the count are the provider's (a compare-and-swap of a count read from it failed
    /// for ever, and the guess went uncounted).
    private func countFailure(_ found: DirectoryUser, on directory: Directory, now: Int64) -> Result<Attempt, FleetFailure> {
        for _ in 0..<3 {
            let counted = directory.modify(dn: found.dn, [.increment("e2faFailures", 1)], assertion: notLocked(now), postRead: ["e2faFailures"])
            switch counted.code {
            case LDAPResult.success:
                guard let number = counted.after?.integer("e2faFailures"), number >= 1 else {
                    return .failure(.failed("modify \(found.dn): the provider did not say what e2faFailures became; not checked"))
                }
                return .success(.counted(number))
            case LDAPResult.assertionFailed:
                if let remaining = providerLockout(found, on: directory, now: now) { return .success(.locked(remaining: remaining)) }
                // The lockout ended in between: count again.
            case LDAPResult.noSuchAttribute:
                // No count yet (an entry an admin made): start one at 0; another host doing the same is no harm.
                let code = directory.modify(dn: found.dn, [.add("e2faFailures", [Array("0".utf8)])])
                guard code == LDAPResult.success || LDAPResult.lostRace(code) else {
                    return .failure(.failed("modify \(found.dn): \(directory.describe(code))"))
                }
            default:
                return .failure(.failed("modify \(found.dn): \(directory.describe(counted.code))"))
            }
        }
        return .failure(.failed("failure count of \(displayText(found.dn, limit: 200)) could not be counted; not checked"))
    }

    /// The seconds left of a lockout that ends at `lockedUntil` (after now). One ending further ahead than
    /// lockout_seconds (a host whose clock ran ahead, a hand edit) is brought back to that at the provider,
    /// as local mode's clampLockout does: a compare-and-swap of the value seen, so a newer lockout stands.
    private func clampLockout(_ dn: String, lockedUntil: Int64, on directory: Directory, now: Int64) -> Int64 {
        let seconds = Int64(config.lockoutSeconds)
        guard lockedUntil > now + seconds else { return lockedUntil - now }
        let code = directory.modify(dn: dn, [.delete("e2faLockedUntil", [Array(String(lockedUntil).utf8)]),
                                             .add("e2faLockedUntil", [Array(String(now + seconds).utf8)])])
        if code == LDAPResult.success {
            serviceLog(LOG_NOTICE, "\(displayText(dn, limit: 200)): a lockout ending at \(lockedUntil), past lockout_seconds, brought back to \(now + seconds)")
        }
        return seconds
    }

    /// The name authenticator apps show: the fleet's (e2faIssuer on the policy entry), else this host's issuer.
    func issuer() -> String {
        guard case .success(let directory) = connected(),
              case .success(let entries) = directory.search(base: policyDN, subtree: false, attributes: ["e2faIssuer"]),
              let issuer = entries.first?.text("e2faIssuer"), !issuer.isEmpty, !issuer.utf8.contains(UInt8(ascii: ":")) else { return config.issuer }
        return issuer
    }

    /// Writes a new device entry (and the user's entry when this is the user's first device). A `first`
    /// device (linked without a code: the user had none) is added only if it still is the first at the
    /// provider: of first enrollments confirmed at once, on any hosts, exactly one is linked.
    /// `withoutProof`: no code or recovery code was given, so the provider must show no recovery codes either.
    func addDevice(_ device: Device, user: String, first: Bool, withoutProof: Bool) -> Result<Void, FleetFailure> {
        let directory: Directory
        switch connected() {
        case .success(let open): directory = open
        case .failure(let failure): return .failure(failure)
        }
        guard first else { return directory.addDevice(device, lastStep: nil, user: user, layout: layout).mapError { .failed($0.text) } }
        switch directory.addFirstDevice(device, user: user, layout: layout, now: now(), assertingNoRecoveryCodes: withoutProof) {
        case .success(.added): return .success(())
        case .success(.lostToAnother):
            serviceLog(LOG_NOTICE, "user \(displayText(user, limit: 64)): first device '\(displayText(device.name, limit: 64))' not linked: another was linked at the same moment")
            return .failure(.failed("another device (or recovery codes) was linked for you at this moment: to link '\(device.name)' too, run engage2fa-enroll add again and give a code from that device (or one of the codes); nothing was saved"))
        case .failure(let failure): return .failure(.failed(failure.text))
        }
    }

    /// How long the provider's lockout still runs (nil: none now), read by a modify that changes nothing
    /// (+ 0) so that it is the provider's copy, with post-read.
    private func providerLockout(_ found: DirectoryUser, on directory: Directory, now: Int64) -> Int64? {
        let read = directory.modify(dn: found.dn, [.increment("e2faFailures", 0)], assertion: nil, postRead: ["e2faLockedUntil"])
        guard read.code == LDAPResult.success, let until = read.after?.integer("e2faLockedUntil") else { return Int64(config.lockoutSeconds) }
        return until > now ? clampLockout(found.dn, lockedUntil: until, on: directory, now: now) : nil
    }

    static let lostRacePrefix = "lost the race: "

    /// A code accepted: the consecutive failures start again from none, in a modify the provider applies
    /// only while its entry shows no lockout (and that also deletes the used recovery hash, if one is
    /// given). nil when the login may pass; the lockout's answer when the provider has one.
    private func clearFailures(_ found: DirectoryUser, alsoDeleting recoveryHash: [UInt8]?, on directory: Directory, now: Int64) -> Result<FleetAnswer?, FleetFailure> {
        var changes: [DirectoryChange] = recoveryHash.map { [.delete("e2faRecoveryHash", [$0])] } ?? []
        changes.append(.replace("e2faFailures", [Array("0".utf8)]))
        let cleared = directory.modify(dn: found.dn, changes, assertion: notLocked(now), postRead: [])
        switch cleared.code {
        case LDAPResult.success: return .success(nil)
        case LDAPResult.assertionFailed:
            return .success(.locked(remaining: providerLockout(found, on: directory, now: now) ?? Int64(config.lockoutSeconds)))
        case let code where LDAPResult.lostRace(code) && recoveryHash != nil:
            return .failure(.failed(Self.lostRacePrefix + directory.describe(code)))
        default:
            return .failure(.failed("modify \(found.dn): \(directory.describe(cleared.code))"))
        }
    }
}

func serviceLog(_ priority: Int32, _ message: String) {
    displayText("engage2fad: " + message, limit: 1000, escapingBackslashes: false).withCString { e2f_syslog(priority, $0) }
}
