import ArgumentParser
import Engage2FACommandSupport
import Engage2FACore

struct Extend: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Give a user who has not linked a device a personal deadline (or move it).",
        discussion: "Edits the [deadlines] section of the policy file in place, keeping its comments and formatting."
    )

    @OptionGroup var policy: PolicyOptions

    @Argument(help: "The user.")
    var user: String

    @Argument(help: "The deadline: YYYY-MM-DD (00:00 local time) or YYYY-MM-DDTHH:MM[:SS] with Z or ±HH:MM.")
    var date: String

    func run() throws {
        try requireRoot("extend")
        let config = try policy.load()
        let account = try existingAccount(user)
        let deadline = try futureDate(date)
        let devices: DeviceFile?
        do { devices = try DeviceFileLocation(account: account, config: config).load() } catch {
            throw CommandFailure("cannot read \(user)'s devices: \(error)")
        }
        if let devices, !devices.devices.isEmpty {
            throw CommandFailure("\(user) already has a linked device (\(devices.devices.map(\.name).joined(separator: ", "))): a deadline would change nothing. For a lost phone, use: engage2fa-admin reset \(user) --deadline \(date)")
        }
        try writeDeadline(configPath: policy.config, user: user, date: deadline)
        audit("extend \(user): personal deadline \(deadline.text) in \(policy.config)")
        print("\(user) has until \(deadline.text) to link a device.")
    }
}
