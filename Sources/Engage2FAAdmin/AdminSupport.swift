import CEngageSys
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

/// Commands that change files other users rely on run as root only.
func requireRoot(_ what: String) throws {
    guard geteuid() == 0 else { throw CommandFailure("\(what) needs root: run it with sudo") }
}

/// A user the admin named, from the host's user database. The name's form was checked when the
/// command line was parsed (`UserName`); whether the host knows it is found out here, at run time.
func existingAccount(_ name: String) throws -> Account {
    guard isSafeUserName(name), let account = Account.lookup(name) else { throw CommandFailure("there is no user '\(displayText(name, limit: 64))' on this host") }
    return account
}

/// Every user of the user database with a login shell.
func loginShellAccounts() -> [Account] {
    var accounts: [Account] = []
    setpwent()
    defer { endpwent() }
    while let entry = getpwent() {
        let shell = entry.pointee.pw_shell.map { String(cString: $0) } ?? ""
        guard isLoginShell(shell), let account = Account(passwd: entry.pointee) else { continue }
        accounts.append(account)
    }
    return accounts
}

/// Who ran the command, for the audit line: root, and the sudo user behind it if any.
func actor() -> String {
    let sudoUser = getenv("SUDO_USER").map { String(cString: $0) }
    let name = Account.lookup(uid: getuid())?.name ?? "uid \(getuid())"
    return sudoUser.map { "\(name) (sudo from \($0))" } ?? name
}

/// An audit line in the authpriv log: who did what to whom.
func audit(_ message: String) {
    openlog("engage2fa-admin", LOG_PID, LOG_AUTHPRIV)
    // One line, escaped and bounded: the names in it come from the user database and SUDO_USER.
    e2f_syslog(LOG_NOTICE, displayLine("\(displayText(actor(), limit: 128)): \(message)", limit: 1000))
    closelog()
}

/// What the policy means for `account` now, after a change: the words the user will meet at a login.
func outcomeAfterChange(account: Account, config: Config, configPath: String, store: StateStore) -> UserStatus {
    UserStatus.of(account: account, config: config, activation: activationState(configPath: configPath, config: config),
                  store: store, now: currentUnixTime())
}

/// True when standard input is a terminal and the admin answers yes.
func confirmed(_ question: String) -> Bool {
    guard let answer = readAnswer(prompt: question + " [y/N] ") else { return false }
    return ["y", "yes"].contains(answer.lowercased())
}

/// The user's transaction, for an admin command. A login the user froze (SIGSTOP, Ctrl-Z on su or sudo:
/// the process is theirs) while it held the user's lock would otherwise keep every admin command for that
/// user out for as long as it likes: when the lock is still held after its timeout only by stopped
/// processes, they are killed (audited: a killed login changes nothing, its state was never written) and
/// the transaction is tried once more.
func adminTransaction<Result>(
    store: StateStore, account: Account, devices: DeviceFileLocation?,
    _ body: (inout UserState, DeviceFile?) throws(CoreError) -> Result
) throws(CoreError) -> Result {
    do {
        return try store.transaction(account: account, devices: devices, body)
    } catch .state(.lockTimeout(let path, let seconds)) {
        let holders = lockHolders(of: path)
        guard !holders.isEmpty, holders.allSatisfy({ isStopped($0.pid) }) else { throw .state(.lockTimeout(path: path, seconds: seconds)) }
        for holder in holders {
            kill(holder.pid, SIGKILL)
            audit("killed stopped process \(holder.pid) (\(holder.command)) that held the lock of \(displayText(account.name, limit: 64))")
        }
        return try store.transaction(account: account, devices: devices, body)
    }
}
