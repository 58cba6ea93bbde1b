import CEngageSys
import Engage2FACommandSupport
import Engage2FACore
#if canImport(Glibc)
import Glibc
#endif

/// Commands that change files other users rely on run as root only.
func requireRoot(_ what: String) throws {
    guard geteuid() == 0 else { throw CommandFailure("\(what) needs root: run it with sudo") }
}

/// A user the admin named, from the host's user database.
func existingAccount(_ name: String) throws -> Account {
    guard isValidUserName(name), let account = Account.lookup(name) else { throw CommandFailure("there is no user '\(name)' on this host") }
    return account
}

/// A personal deadline as the admin typed it: a valid DATE that is still in the future.
func futureDate(_ text: String) throws -> PolicyDate {
    let date: PolicyDate
    do { date = try PolicyDate(parsing: text) } catch { throw CommandFailure("\(error)") }
    guard date.unixTime > currentUnixTime() else { throw CommandFailure("\(text) is in the past: a deadline must be later than now") }
    return date
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
    e2f_syslog(LOG_NOTICE, "\(actor()): \(message)")
    closelog()
}

/// Sets a deadline in the policy file, keeping everything else in it as it was.
func writeDeadline(configPath: String, user: String, date: PolicyDate) throws {
    do {
        try ConfigEditor.edit(path: configPath) { text in
            let updated = ConfigEditor.settingDeadline(in: text, user: user, date: date.text)
            // Never write a file the module would reject.
            let parsed = Config.parse(updated, file: configPath)
            guard parsed.isValid else {
                throw CommandFailure("the edited policy would not be valid:\n" + parsed.errors.map { "  \($0)" }.joined(separator: "\n"))
            }
            return updated
        }
    } catch let failure as CommandFailure {
        throw failure
    } catch {
        throw CommandFailure("could not update \(configPath): \(error); the file was not changed")
    }
}
