import ArgumentParser
import Engage2FACommandSupport
import Engage2FACore
#if canImport(Glibc)
import Glibc
#endif

struct Reset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "For a lost phone: remove all of a user's devices and recovery codes and clear their lockout.",
        discussion: "With --deadline, also grants a personal deadline so that the user can log in and link a new device."
    )

    @OptionGroup var policy: PolicyOptions

    @Argument(help: "The user.")
    var user: String

    @Option(name: .long, help: ArgumentHelp("Also grant a personal deadline (YYYY-MM-DD or an ISO 8601 date-time).", valueName: "date"))
    var deadline: String?

    func run() throws {
        try requireRoot("reset")
        let config = try policy.load()
        let account = try existingAccount(user)
        let newDeadline = try deadline.map(futureDate)
        let location = DeviceFileLocation(account: account, config: config)
        do {
            try removeDeviceFile(location)
        } catch {
            throw CommandFailure("could not remove \(location.path): \(error); nothing was changed")
        }
        do {
            try StateStore(directory: config.stateDir).clear(user: user, devices: true)
        } catch {
            throw CommandFailure("removed \(user)'s devices, but could not clear their state in \(config.stateDir): \(error)")
        }
        if let newDeadline { try writeDeadline(configPath: policy.config, user: user, date: newDeadline) }
        audit("reset \(user): removed all devices and recovery codes, cleared lockout" + (newDeadline.map { "; personal deadline \($0.text)" } ?? ""))
        print("Removed all devices and recovery codes of \(user) and cleared their lockout."
              + (newDeadline.map { " They have until \($0.text) to link a new device with engage2fa-enroll." } ?? ""))
    }
}

/// Unlinks the device file (with the user's rights when it is in their home); a missing file is fine.
func removeDeviceFile(_ location: DeviceFileLocation) throws(CoreError) {
    func remove() throws(CoreError) {
        if unlink(location.path) != 0 && errno != ENOENT { throw .system(SystemError("unlink")) }
    }
    if location.isInHome { try withFileSystemIdentity(of: location.account) { () throws(CoreError) in try remove() } } else { try remove() }
}
