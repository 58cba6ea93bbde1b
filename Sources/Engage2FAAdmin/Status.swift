import Glibc
import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

extension Admin {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, for every user with a login shell (or the users given), whether they are ready for 2FA."
        )

        @OptionGroup var policy: PolicyOptions
        @OptionGroup var directory: DirectoryOptions

        @Flag(name: .long, help: "Print JSON instead of a table.")
        var json = false

        @Option(name: .customLong("passwd-file"), help: ArgumentHelp("Read users from this passwd-format file instead of the user database.", valueName: "path", visibility: .hidden))
        var passwdFile: String?

        @Argument(help: "Only these users.")
        var users: [UserName] = []

        func validate() throws {
            for user in users { try user.validate() }
        }

        func run() throws {
            try requireRootUnlessOnlyTheCaller()
            let config = try policy.load()
            let store = StateStore(directory: config.stateDir)
            let activation = activationState(configPath: policy.config, config: config)
            let now = currentUnixTime()
            let rows: [UserStatus]
            if config.fleet.store == .ldap {
                try requireRoot("status in fleet mode")
                rows = try FleetAdmin(config: config, options: directory).statusRows(only: users.map(\.name), configPath: policy.config, now: now)
            } else {
                rows = try selectedAccounts().map { UserStatus.of(account: $0, config: config, activation: activation, store: store, now: now) }
            }
            let ready = rows.filter { $0.readiness == "ready" }.count
            let pending = rows.filter { $0.readiness == "pending" }.count
            let overdue = rows.filter { $0.readiness == "overdue" }.count

            if json {
                let report = Report(users: rows.map(Report.Row.init), summary: .init(ready: ready, pending: pending, overdue: overdue))
                print(try jsonText(report))
                return
            }
            // Names from the user database and the users' own files, reasons quoting paths: escaped, so no
            // byte of them moves the cursor, retitles the terminal or starts a forged row.
            let userWidth = max(4, rows.map { displayText($0.user, limit: 64).count }.max() ?? 0)
            let deviceTexts = rows.map {
                $0.deviceNames.isEmpty ? "-" : "\($0.deviceNames.count): " + $0.deviceNames.map { displayText($0, limit: 256) }.joined(separator: ", ")
            }
            let deviceWidth = max(7, deviceTexts.map(\.count).max() ?? 0)
            let deadlineWidth = max(8, rows.compactMap { $0.deadline?.text.count }.max() ?? 0)
            var output = "USER".padded(userWidth) + "  " + "DEVICES".padded(deviceWidth) + "  RECOVERY  " + "DEADLINE".padded(deadlineWidth) + "  STATE\n"
            for (row, devices) in zip(rows, deviceTexts) {
                output += displayText(row.user, limit: 64).padded(userWidth) + "  " + devices.padded(deviceWidth) + "  " + String(row.recoveryCodesLeft).padded(8)
                    + "  " + (row.deadline?.text ?? "-").padded(deadlineWidth) + "  " + displayLine(row.stateText, limit: 1000) + "\n"
            }
            output += "\(rows.count) users: \(ready) ready, \(pending) pending, \(overdue) overdue\n"
            print(output, terminator: "")
        }

        /// What `status --json` prints (keys sorted by the encoder).
        struct Report: Encodable {
            var users: [Row]
            var summary: Summary

            struct Row: Encodable {
                var user: String
                var devices: [String]
                var recoveryCodesLeft: Int
                /// The deadline that counts, as the admin wrote it; null when there is none.
                var deadline: String?
                var state: String
                var readiness: String

                enum CodingKeys: String, CodingKey {
                    case user, devices, deadline, state, readiness
                    case recoveryCodesLeft = "recovery_codes_left"
                }

                init(_ status: UserStatus) {
                    user = status.user
                    devices = status.deviceNames
                    recoveryCodesLeft = status.recoveryCodesLeft
                    deadline = status.deadline?.text
                    // The state quotes paths and parse errors: escaped as in the table, so that
                    // `jq -r` prints no raw control byte either.
                    state = displayLine(status.stateText)
                    readiness = status.readiness
                }

                func encode(to encoder: Encoder) throws {
                    var container = encoder.container(keyedBy: CodingKeys.self)
                    try container.encode(user, forKey: .user)
                    try container.encode(devices, forKey: .devices)
                    try container.encode(recoveryCodesLeft, forKey: .recoveryCodesLeft)
                    try container.encode(deadline, forKey: .deadline)  // null, not left out
                    try container.encode(state, forKey: .state)
                    try container.encode(readiness, forKey: .readiness)
                }
            }

            struct Summary: Encodable {
                var ready: Int
                var pending: Int
                var overdue: Int
            }
        }

        /// Without root, most device files and the state directory cannot be read: every other user would
        /// show as "overdue: device file unreadable". Only a report on the caller alone is allowed then.
        private func requireRootUnlessOnlyTheCaller() throws {
            guard geteuid() != 0 else { return }
            let caller = Account.lookup(uid: getuid())?.name
            guard passwdFile == nil, !users.isEmpty, let caller, users.allSatisfy({ $0.name == caller }) else {
                throw CommandFailure("status needs root to read every user's devices: run it with sudo (or name only yourself: engage2fa-admin status \(displayText(caller ?? "USER", limit: 64)))")
            }
        }

        private func selectedAccounts() throws -> [Account] {
            if let passwdFile {
                let all = try accountsFromPasswdFile(passwdFile)
                return users.isEmpty ? all.filter(\.hasLoginShell).map(\.account) : try users.map(\.name).map { name in
                    guard let entry = all.first(where: { $0.account.name == name }) else { throw CommandFailure("there is no user '\(displayText(name, limit: 64))' in \(displayText(passwdFile))") }
                    return entry.account
                }
            }
            if !users.isEmpty { return try users.map(\.name).map(existingAccount) }
            return loginShellAccounts()
        }
    }
}

extension UserStatus {
    /// The STATE column of `engage2fa-admin status` and its JSON `state`: the admin's words for the decision.
    var stateText: String {
        switch state {
        case .notActiveYet: "not active yet"
        case .enforced: "enforced"
        case .grace(let until, let days): "grace until \(until.text) (\(days) day\(days == 1 ? "" : "s"))"
        case .refused(.noDevice): "refused: no device, no deadline"
        case .refused(.deadlinePassed): "refused: no device, deadline passed"
        case .refused(.devicesUnreadable): "refused: device file unreadable"
        case .lockedOut(let until): "locked out until \(localDateTimeText(until))"
        case .unreadable(let reason): "device file unreadable: \(reason)"
        case .notConfigured: "2FA not configured"
        }
    }
}

/// A shell someone can log in with (not nologin, false, sync, …).
func isLoginShell(_ shell: String) -> Bool {
    guard !shell.isEmpty else { return false }
    let name = shell.split(separator: "/").last.map(String.init) ?? shell
    return !["nologin", "false", "sync", "halt", "shutdown", "true"].contains(name)
}

struct PasswdEntry {
    var account: Account
    var hasLoginShell: Bool
}

func accountsFromPasswdFile(_ path: String) throws -> [PasswdEntry] {
    guard let file = fopen(path, "r") else { throw CommandFailure("cannot read \(path): \(SystemError("fopen"))") }
    defer { fclose(file) }
    var entries: [PasswdEntry] = []
    while let entry = fgetpwent(file) {
        let shell = entry.pointee.pw_shell.map { String(cString: $0) } ?? ""
        guard let account = Account(passwd: entry.pointee) else { continue }
        entries.append(PasswdEntry(account: account, hasLoginShell: isLoginShell(shell)))
    }
    return entries
}
