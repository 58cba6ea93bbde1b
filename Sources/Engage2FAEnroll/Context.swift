import Engage2FACommandSupport
import Engage2FACore
#if canImport(Glibc)
import Glibc
#endif

/// Everything a subcommand works on: the account, the policy, and where its devices are.
struct EnrollContext {
    var account: Account
    var config: Config
    var location: DeviceFileLocation

    init(_ options: UserOptions) throws {
        account = try targetAccount(named: options.user)
        config = try options.policy.load()
        location = DeviceFileLocation(account: account, config: config)
    }

    /// Admin-managed storage is under a root-owned directory that users cannot write to: say so
    /// before the user scans a code that could not be saved.
    func checkWritable() throws {
        guard !location.isInHome, getuid() != 0 else { return }
        let directory = String(location.path[..<(location.path.lastIndex(of: "/") ?? location.path.startIndex)])
        if access(directory.isEmpty ? "/" : directory, W_OK) != 0 {
            throw CommandFailure("devices on this host are kept in \(directory), which only an administrator can change: ask one to run 'engage2fa-enroll --user \(account.name)'")
        }
    }

    /// The device file as it is now; an empty one if there is none yet.
    func loadDevices() throws -> DeviceFile {
        do {
            return try location.load() ?? DeviceFile()
        } catch {
            throw CommandFailure(explain(error, account: account))
        }
    }

    func save(_ file: DeviceFile) throws {
        try checkWritable()
        do {
            try location.save(file)
        } catch {
            throw CommandFailure(explain(error, account: account))
        }
    }
}
