// What engage2fad does for one connection of the PAM module (root): the user's snapshot, and the check
// of one code, decided against the directory with compare-and-swap modifies at the provider.

import Engage2FADirectory
import Engage2FALogin
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
        var answer: FleetAnswer {
            switch self {
            case .unreachable(let reason): .unreachable(reason)
            case .failed(let reason): .failed(reason)
            }
        }
    }

    func answer(_ request: FleetRequest) -> FleetAnswer {
        let result: Result<FleetAnswer, FleetFailure>
        switch request {
        case .snapshot(let user): result = snapshot(user: user)
        case .check(let user, let typed): result = check(user: user, typed: typed)
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
        directory.readUser(user, layout: layout).mapError { .failed("search \(userDN(user)): \($0.text)") }
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
        case .failure(let failure): return .failure(failure)
        case .success(let found):
            for problem in found.problems { serviceLog(LOG_WARNING, "user \(displayText(user, limit: 64)): \(problem)") }
            // An unusable device entry still counts: its user is enrolled (and cannot log in until it is repaired).
            snapshot.devices = found.devices.count + found.problems.count
            snapshot.recoveryCodes = found.recovery?.hashes.count ?? 0
            snapshot.lockedUntil = found.lockedUntil
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
    /// recovery code does not count.
    func check(user: String, typed: [UInt8], devicesOnly: Bool = false) -> Result<FleetAnswer, FleetFailure> {
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
        let remaining = UserState.lockoutRemaining(lockedUntil: found.lockedUntil, now: now, lockoutSeconds: config.lockoutSeconds)
        if remaining > 0 { return .success(.locked(remaining: remaining)) }
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
                resetFailures(found, on: directory)
                return .success(.accepted(deviceName: stored.device.name))
            case .replayed: replayed = true
            case .wrong, .malformed: continue
            }
        }
        if !replayed, !devicesOnly, let recovery = found.recovery, let normalized = RecoveryCodes.normalize(typed) {
            let candidate = recovery.hash(of: normalized)
            if let index = recovery.match(hash: candidate, among: Array(recovery.hashes.indices)) {
                // Consumed by deleting exactly this value: of two hosts, one succeeds, the other gets noSuchAttribute.
                let code = directory.modify(dn: found.dn, [.delete("e2faRecoveryHash", [Array(hexString(recovery.hashes[index]).utf8)])])
                if code == LDAPResult.success {
                    resetFailures(found, on: directory)
                    return .success(.recovery(codesLeft: recovery.hashes.count - 1))
                }
                guard LDAPResult.lostRace(code) else { return .failure(.failed("modify \(found.dn): \(directory.describe(code))")) }
            }
        }
        return recordFailure(user: user, first: found, on: directory).map { $0 ? .lockedNow : (replayed ? .replayed : .wrong) }
    }

    /// The name authenticator apps show: the fleet's (e2faIssuer on the policy entry), else this host's issuer.
    func issuer() -> String {
        guard case .success(let directory) = connected(),
              case .success(let entries) = directory.search(base: policyDN, subtree: false, attributes: ["e2faIssuer"]),
              let issuer = entries.first?.text("e2faIssuer"), !issuer.isEmpty, !issuer.utf8.contains(UInt8(ascii: ":")) else { return config.issuer }
        return issuer
    }

    /// Writes a new device entry (and the user's entry when this is the user's first device).
    func addDevice(_ device: Device, user: String) -> Result<Void, FleetFailure> {
        let directory: Directory
        switch connected() {
        case .success(let open): directory = open
        case .failure(let failure): return .failure(failure)
        }
        return directory.addDevice(device, lastStep: nil, user: user, layout: layout).mapError { .failed($0.text) }
    }

    private func resetFailures(_ found: DirectoryUser, on directory: Directory) {
        guard (found.failures ?? 0) > 0 || found.lockedUntil > 0 else { return }
        _ = directory.modify(dn: found.dn, [.replace("e2faFailures", [Array("0".utf8)]), .replace("e2faLockedUntil", [Array("0".utf8)])])
    }

    /// One more wrong code for the fleet, by compare-and-swap of the count (retried on a lost race with a
    /// fresh read); true when it starts a lockout.
    private func recordFailure(user: String, first: DirectoryUser, on directory: Directory) -> Result<Bool, FleetFailure> {
        var current = first
        if current.entry == nil {
            // No entry yet (an unknown or never-enrolled user): nothing to count against.
            return .success(false)
        }
        for _ in 0..<8 {
            let failures = current.failures ?? 0
            let next = min(failures, 1000) + 1
            let locks = next >= Int64(config.maxFailures)
            var changes: [DirectoryChange] = []
            if let old = current.failures { changes.append(.delete("e2faFailures", [Array(String(old).utf8)])) }
            changes.append(.add("e2faFailures", [Array(String(locks ? 0 : next).utf8)]))
            if locks { changes.append(.replace("e2faLockedUntil", [Array(String(now() + Int64(config.lockoutSeconds)).utf8)])) }
            let code = directory.modify(dn: current.dn, changes)
            if code == LDAPResult.success { return .success(locks) }
            guard LDAPResult.lostRace(code) else { return .failure(.failed("modify \(current.dn): \(directory.describe(code))")) }
            switch readUser(user, on: directory) {
            case .success(let fresh): current = fresh
            case .failure(let failure): return .failure(failure)
            }
            if current.lockedUntil > now() { return .success(false) }
        }
        return .failure(.failed("failure count of \(displayText(user, limit: 64)) kept changing; not counted"))
    }
}

func serviceLog(_ priority: Int32, _ message: String) {
    displayText("engage2fad: " + message, limit: 1000, escapingBackslashes: false).withCString { e2f_syslog(priority, $0) }
}
