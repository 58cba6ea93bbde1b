import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement
#if canImport(Glibc)
import Glibc
#endif

extension Admin {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the policy file and say what it means now.",
            discussion: "Prints every problem as file:line: message. Exits 1 if there are errors or there is no policy file, 0 if there are only warnings or none."
        )

        @OptionGroup var policy: PolicyOptions

        func run() throws {
            let path = policy.config
            let parsed: ParsedConfig
            var noPolicyFile = false
            switch readPolicyText(path) {
            case .failure(let failure): throw failure
            case .success(let text?): parsed = Config.parse(text, file: path)
            case .success(nil):
                // A file named with --config that is not there is a typo: nothing to check.
                guard path == Config.defaultPath else { throw CommandFailure("\(displayText(path)): no such file") }
                // No /etc/engage2fa.conf: an error too (the package creates it), but what the module does
                // without it (nothing, unless 2FA was activated before) is still reported below.
                print("no policy file at \(displayText(path))")
                noPolicyFile = true
                parsed = Config.parse("", file: path)
            }
            let problems = parsed.diagnostics + parsed.userWarnings(file: path) { Account.lookup($0) != nil }
                + parsed.scopeWarnings(file: path, groupExists: groupExists, serviceExists: pamServiceExists)
            for problem in problems.sorted(by: { $0.line < $1.line }) { print(displayLine("\(problem)")) }

            let config = parsed.config
            let now = currentUnixTime()
            let activationStore = ActivationStore(configPath: path)
            var activation = activationStore.read()
            var recordPath = activationStore.recordPath
            let legacyPath = ActivationStore.legacyPath(stateDirectory: config.stateDir)
            let legacy = ActivationStore.readLegacy(stateDirectory: config.stateDir, configPath: path)
            if case .never = legacy {} else {
                print("\(displayText(legacyPath)): warning: an activation record in the place older versions used (state_dir); the module keeps it in \(activationStore.recordPath) and copies it there at the next login.")
                if case .never = activation {
                    activation = legacy
                    recordPath = legacyPath
                }
            }
            switch activation {
            case .active(let record):
                print("2FA is active since \(localDateTimeText(record.activatedAt)) (recorded \(localDateTimeText(record.recordedAt)) in \(displayText(recordPath))).")
                if let start = config.startDate, start.unixTime > now {
                    print("\(displayText(path)): warning: start_date \(start) is later than the activation; 2FA stays enforced (activation cannot be undone).")
                } else if config.startDate == nil {
                    print("\(displayText(path)): warning: no start_date, but 2FA was activated and stays enforced.")
                }
            case .unreadable(let reason):
                print(displayLine("warning: the activation record \(activationStore.recordPath) cannot be trusted (\(reason)); the module treats 2FA as active."))
            case .never:
                if let start = config.startDate {
                    print(start.unixTime > now
                          ? "2FA is not active yet: it becomes mandatory on \(start) (\(daysLeftText(now: now, until: start.unixTime)))."
                          : "2FA is mandatory since \(start); the activation is recorded at the next login.")
                } else {
                    print("2FA is not configured: no start_date is set, and the module ignores logins (no activation record in \(activationStore.recordPath)).")
                }
            }
            for line in scopeSummary(config) { print(line) }
            for (user, deadline) in config.deadlines.sorted(by: { $0.key < $1.key }) where deadline.unixTime <= now {
                let line = parsed.deadlineLines[user] ?? 0
                print("\(displayText(path)):\(line): warning: the deadline of \(displayText(user, limit: 64)) (\(deadline)) has passed")
            }
            // Apps show the issuer above the account: what the label makes of it on this host.
            let example = config.accountLabel(user: "USER", host: hostName())
            print(displayLine("Authenticator apps show new devices as '\(displayText(config.issuer, limit: 64))' / '\(displayText(example, limit: 160))' (label = \(displayText(config.label, limit: 160)))."))
            for warning in labelWarnings(config) { print("\(displayText(path)): warning: \(warning)") }
            var directoryFailed = false
            if parsed.isValid && config.fleet.store == .ldap {
                directoryFailed = !checkDirectory(config, now: now)
            }
            if !parsed.isValid || noPolicyFile || directoryFailed {
                throw ExitCode(1)
            }
        }
    }
}

/// Fleet mode: whether the directory answers this host as engage2fad would ask it (its credentials, its
/// timeout), and what its policy says. False, with the reason printed, when it does not.
func checkDirectory(_ config: Config, now: Int64) -> Bool {
    do {
        let fleet = try FleetAdmin(config: config, options: DirectoryOptions(hostCredentials: config.fleet))
        let policy = try fleet.policy()
        print("directory: \(displayText(fleet.directory.uri)) answers as \(displayText(config.fleet.bindDN ?? "SASL EXTERNAL")).")
        if let start = policy.start {
            print(start.unixTime > now
                  ? "directory: 2FA becomes mandatory fleet-wide on \(start) (\(daysLeftText(now: now, until: start.unixTime)))."
                  : "directory: 2FA is mandatory fleet-wide since \(start).")
        } else {
            print("directory: no e2faStartDate on \(displayText(fleet.layout.policyDN)); this host's start_date applies.")
        }
        if let at = policy.activatedAt { print("directory: activation recorded \(localDateTimeText(at)) (add-only).") }
        return true
    } catch {
        print(displayLine("directory: error: \(error)", limit: 1000))
        return false
    }
}

/// The policy file's text, read as the module reads it (`Config.readPolicyFile`); nil if there is none.
func readPolicyText(_ path: String) -> Result<String?, CommandFailure> {
    do throws(PolicyFileError) {
        return .success(try Config.readPolicyFile(path: path).map { String(decoding: $0, as: UTF8.self) })
    } catch {
        switch error {
        case .notUTF8: return .failure(CommandFailure("\(displayText(path)): not valid UTF-8 text"))
        case .untrusted(let error): return .failure(CommandFailure("cannot use the policy file: \(error)"))
        }
    }
}

/// What the scope keys mean, one line each (names escaped: the file is root's, its bytes still reach a terminal).
func scopeSummary(_ config: Config) -> [String] {
    func names(_ list: [String]) -> String { list.map { displayText($0, limit: 64) }.joined(separator: ", ") }
    var lines: [String] = []
    if !config.onlyGroups.isEmpty { lines.append("a code is asked only of members of \(names(config.onlyGroups)) (only_groups)") }
    if !config.exemptGroups.isEmpty { lines.append("no code is asked of members of \(names(config.exemptGroups)) (exempt_groups)") }
    if !config.exemptServices.isEmpty { lines.append("no code is asked for the services \(names(config.exemptServices)) (exempt_services)") }
    return lines
}

/// Whether the group database knows `name` (a lookup that fails is not reported as a missing group).
func groupExists(_ name: String) -> Bool {
    if case .success(nil) = groupID(named: name) { return false }
    return true
}

/// Whether libpam has a service file for `name` (/etc/pam.d, or the vendor directory /usr/lib/pam.d).
func pamServiceExists(_ name: String) -> Bool {
    ["/etc/pam.d/", "/usr/lib/pam.d/"].contains { access($0 + name, F_OK) == 0 }
}

/// What the label makes of a mode it does not fit: in fleet mode one device serves every host, so a label
/// naming the host gives each host's enrollment its own entry (and %f in local mode names only this host).
func labelWarnings(_ config: Config) -> [String] {
    let mentionsHost = config.label.contains("%h"), mentionsFleet = config.label.contains("%f")
    if config.fleet.store == .ldap && mentionsHost {
        return ["label names the host (%h) in fleet mode: a device linked on one host is named after it in the app, and linking on another host gives a second entry; use %f (the fleet: fleet_name, or ldap_base's domain)"]
    }
    if config.fleet.store == .ldap && !mentionsFleet && config.fleetName != nil {
        return ["fleet_name is set but label does not use %f"]
    }
    if config.fleet.store == .local && (mentionsFleet || config.fleetName != nil) {
        return ["fleet_name and %f are for fleet mode (store = ldap); in local mode %f is this host's name unless fleet_name says otherwise"]
    }
    return []
}
