import Glibc
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

/// Everything a subcommand works on: the account, the policy, and where its devices are.
struct EnrollContext {
    var account: Account
    var config: Config
    var configPath: String
    var location: DeviceFileLocation

    init(_ options: UserOptions) throws {
        account = try targetAccount(named: options.user?.name)
        if options.user == nil, getuid() == 0, let invoker = getenv("SUDO_USER").map({ String(cString: $0) }), !invoker.isEmpty, invoker != account.name {
            // `sudo engage2fa-enroll` runs as root and would act for root: whoever typed it most likely
            // meant their own account (which needs no sudo) or another user's (--user).
            let shown = displayText(invoker, limit: 64)
            printError("Warning: run with sudo, this acts for \(displayText(account.name, limit: 64)), not for \(shown). For your own devices run engage2fa-enroll without sudo; for another user's, add --user NAME (e.g. --user \(shown)).")
        }
        config = try options.policy.load()
        configPath = options.policy.config
        location = DeviceFileLocation(account: account, config: config)
    }

    /// The user's name as it may be printed.
    var shownUser: String { displayText(account.name, limit: 64) }

    /// Admin-managed storage is under a root-owned directory that users cannot write to: say so
    /// before the user scans a code that could not be saved.
    func checkWritable() throws {
        guard !location.isInHome, getuid() != 0 else { return }
        let directory = String(location.path[..<(location.path.lastIndex(of: "/") ?? location.path.startIndex)])
        if access(directory.isEmpty ? "/" : directory, W_OK) != 0 {
            throw CommandFailure("devices on this host are kept in \(displayText(directory)), which only an administrator can change: ask one to run 'engage2fa-enroll --user \(shownUser)'")
        }
    }

    /// Root's state for the user (readable by the user: deadlines, revocations, used recovery codes);
    /// nil if it cannot be read.
    func state() -> UserState? { try? StateStore(directory: config.stateDir).read(account: account) }

    /// The device file as it is now; an empty one if there is none yet.
    func loadDevices() throws -> DeviceFile {
        do {
            return try location.load() ?? DeviceFile()
        } catch {
            throw CommandFailure(explain(error, account: account))
        }
    }

    /// The device file as `loadDevices()` reads it, to be changed: refused if it breaks a rule of naming
    /// devices (`namingProblem`), which a change would write again.
    func loadDevicesToEdit() throws -> DeviceFile {
        let file = try loadDevices()
        if let refusal = namingRefusal(file) { throw refusal }
        return file
    }

    private func namingRefusal(_ file: DeviceFile) -> CommandFailure? {
        file.namingProblem(path: location.path).map { CommandFailure($0 + ". Nothing was changed") }
    }

    /// Says on standard error which rule of naming devices the file breaks, if it does: a login accepts
    /// such a file (edited by hand), enrollment does not change it.
    func warnAboutNames(in file: DeviceFile?) {
        guard let problem = file?.namingProblem(path: location.path) else { return }
        printError("Warning: \(problem). Logins still accept it; engage2fa-enroll changes it only once that is fixed.")
    }

    /// The device file's transaction: under its lock, the file as it is now (another command may have
    /// changed it since it was shown) is changed by `body` and replaced atomically. Devices and codes an
    /// administrator revoked are dropped from it on the way.
    func update<Result>(_ body: (inout DeviceFile) throws -> Result) throws -> Result {
        try checkWritable()
        let state = state()
        var failure: Error? = nil
        var result: Result? = nil
        do {
            try location.update { (file: inout DeviceFile) throws(CoreError) in
                if let refusal = namingRefusal(file) {
                    failure = refusal
                    return
                }
                let before = file
                if let state {
                    file.devices = state.liveDevices(of: file)
                    if file.recovery != nil && state.liveRecoveryCodes(of: file).isEmpty { file.recovery = nil }
                }
                do { result = try body(&file) } catch {
                    failure = error
                    file = before  // a refused change writes nothing
                }
            }
        } catch {
            throw CommandFailure(explain(error, account: account))
        }
        if let failure { throw failure }
        return result!
    }
}
