// engage2fa-admin in fleet mode (store = ldap): the same commands, against the directory. They bind as
// an administrator of the directory (--bind-dn and --bind-password-file, or SASL EXTERNAL, e.g. root
// over ldapi://), not as the host: hosts may not change deadlines or remove devices.

import ArgumentParser
import Engage2FACommandSupport
import Engage2FADirectory
import Engage2FALogin
import Engage2FAManagement
#if canImport(Glibc)
import Glibc
#endif

/// Who the admin commands are to the directory in fleet mode.
struct DirectoryOptions: ParsableArguments {
    @Option(name: .customLong("bind-dn"), help: ArgumentHelp("Fleet mode: the directory administrator's DN (default: SASL EXTERNAL).", valueName: "dn"))
    var bindDN: String?

    @Option(name: .customLong("bind-password-file"), help: ArgumentHelp("Fleet mode: a root-only (0600) file with that DN's password.", valueName: "path"))
    var passwordFile: String?

    func validate() throws {
        if (bindDN == nil) != (passwordFile == nil) { throw ValidationError("--bind-dn and --bind-password-file go together") }
    }
}

extension DirectoryOptions {
    /// The host's own identity (what engage2fad binds as), for `check`.
    init(hostCredentials settings: FleetSettings) {
        self.init()
        bindDN = settings.bindDN
        passwordFile = settings.bindPasswordFile
    }
}

/// The fleet's directory, bound as an administrator.
struct FleetAdmin {
    let config: Config
    let directory: Directory
    let layout: FleetLayout

    init(config: Config, options: DirectoryOptions) throws {
        var settings = config.fleet
        settings.bindDN = options.bindDN
        settings.bindPasswordFile = options.passwordFile
        switch Directory.connect(settings: settings, budgetMilliseconds: Int64(max(10, settings.timeoutSeconds)) * 1000) {
        case .success(let open): directory = open
        case .failure(let failure): throw CommandFailure("cannot reach the directory: \(failure.reason)")
        }
        self.config = config
        layout = FleetLayout(base: settings.base)
    }

    func user(_ name: String) throws -> DirectoryUser {
        switch directory.readUser(name, layout: layout) {
        case .success(let user): return user
        case .failure(let failure): throw CommandFailure("cannot read \(layout.userDN(name)): \(failure.text)")
        }
    }

    func ensureUser(_ name: String) throws {
        if case .failure(let failure) = directory.ensureUser(name, layout: layout) { throw CommandFailure("cannot \(failure.text)") }
    }

    func modify(_ dn: String, _ changes: [DirectoryChange], what: String) throws {
        let code = directory.modify(dn: dn, changes)
        guard code == LDAPResult.success else { throw CommandFailure("could not \(what): \(dn): \(directory.describe(code)); nothing was changed") }
    }

    /// The start date, the central activation and the issuer from the policy entry.
    func policy() throws -> (start: PolicyDate?, activatedAt: Int64?) {
        switch directory.search(base: layout.policyDN, subtree: false, attributes: ["e2faStartDate", "e2faActivatedAt"]) {
        case .failure(let failure): throw CommandFailure("cannot read \(layout.policyDN): \(failure.text)")
        case .success(let entries):
            let start = try entries.first?.text("e2faStartDate").map { text in
                do { return try PolicyDate(parsing: text) } catch { throw CommandFailure("\(layout.policyDN): e2faStartDate: \(error)") }
            }
            return (start, entries.first?.integer("e2faActivatedAt"))
        }
    }

    /// The policy as a login on this host sees it: the directory's start date; activation if the fleet
    /// or this host recorded one.
    func effectivePolicy(configPath: String) throws -> (Config, ActivationState) {
        var effective = config
        let central = try policy()
        if let start = central.start { effective.startDate = start }
        var activation = activationState(configPath: configPath, config: effective)
        if case .never = activation, let at = central.activatedAt { activation = .active(ActivationRecord(activatedAt: at, recordedAt: at)) }
        return (effective, activation)
    }

    /// Every user of the directory, read in pages: one status row each, decided like a login.
    func statusRows(only names: [String], configPath: String, now: Int64) throws -> [UserStatus] {
        let (effective, activation) = try effectivePolicy(configPath: configPath)
        var users: [String: DirectoryUser] = [:]
        var order: [String] = []
        if names.isEmpty {
            let result = directory.searchPaged(base: "ou=users," + layout.base, filter: "(|(objectClass=e2faUser)(objectClass=e2faDevice))",
                                               attributes: DirectoryUser.attributes + ["uid"]) { entry in
                layout.collect(entry, into: &users, order: &order)
            }
            if case .failure(let failure) = result { throw CommandFailure("cannot list the directory's users: \(failure.text)") }
        } else {
            for name in names {
                users[name] = try user(name)
                order.append(name)
            }
        }
        return order.map { name in
            let user = users[name]!
            let deadline = (user.entry?.text("e2faDeadline")).flatMap { try? PolicyDate(parsing: $0) }
            return UserStatus.decided(user: name, deviceNames: user.devices.map(\.device.name),
                                      recoveryCodesLeft: user.recoveryCodesLeft, deadline: deadline, lockedUntil: user.lockedUntil,
                                      membership: Account.lookup(name)?.membership(of: effective.scopeGroups) ?? .unknown,
                                      config: effective, activation: activation, now: now)
        }
    }
}

extension Admin {
    /// `extend` in fleet mode: the deadline on the user's entry.
    static func extendInFleet(_ fleet: FleetAdmin, user: String, deadline: PolicyDate) throws {
        let found = try fleet.user(user)
        let shown = displayText(user, limit: 64)
        guard found.devices.isEmpty else {
            throw CommandFailure("\(shown) already has a linked device (\(found.devices.map { displayText($0.device.name, limit: 64) }.joined(separator: ", "))): a deadline would change nothing. For a lost phone, use: engage2fa-admin reset \(shown) --deadline \(deadline.text)")
        }
        try fleet.ensureUser(user)
        try fleet.modify(fleet.layout.userDN(user), [.replace("e2faDeadline", [Array(deadline.text.utf8)])], what: "set the deadline")
        audit("extend \(shown): personal deadline \(deadline.text) (in the directory)")
        print("\(shown) has until \(deadline.text) to link a device, on every host of the fleet.")
    }

    /// `reset` in fleet mode: every device entry and recovery code removed, the lockout cleared.
    static func resetInFleet(_ fleet: FleetAdmin, user: String, deadline: PolicyDate?) throws {
        let found = try fleet.user(user)
        let shown = displayText(user, limit: 64)
        for device in found.devices {
            let code = fleet.directory.delete(dn: device.dn)
            guard code == LDAPResult.success || code == LDAPResult.noSuchObject else {
                throw CommandFailure("could not remove \(device.dn): \(fleet.directory.describe(code))")
            }
        }
        if found.entry != nil {
            var changes: [DirectoryChange] = [.replace("e2faFailures", [Array("0".utf8)]), .replace("e2faLockedUntil", [Array("0".utf8)])]
            if found.recovery != nil { changes += [.replace("e2faRecoveryHash", []), .replace("e2faRecoverySalt", []), .replace("e2faRecoveryIterations", [])] }
            try fleet.modify(found.dn, changes, what: "clear the recovery codes and lockout")
        }
        if let deadline {
            try fleet.ensureUser(user)
            try fleet.modify(fleet.layout.userDN(user), [.replace("e2faDeadline", [Array(deadline.text.utf8)])], what: "set the deadline")
        }
        audit("reset \(shown): removed \(found.devices.count) device(s) and the recovery codes from the directory\(deadline.map { "; deadline \($0.text)" } ?? "")")
        print("Removed \(found.devices.count) device\(found.devices.count == 1 ? "" : "s") of \(shown) from the directory (every host).")
    }

    static func unlockInFleet(_ fleet: FleetAdmin, user: String) throws {
        let found = try fleet.user(user)
        let shown = displayText(user, limit: 64)
        if found.entry != nil {
            try fleet.modify(found.dn, [.replace("e2faFailures", [Array("0".utf8)]), .replace("e2faLockedUntil", [Array("0".utf8)])], what: "clear the lockout")
        }
        audit("unlock \(shown): cleared lockout (in the directory)")
        print("Cleared the lockout of \(shown) on every host of the fleet.")
    }
}
