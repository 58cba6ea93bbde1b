import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

extension Admin {
    struct Extend: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a user who has not linked a device a personal deadline (or move it).",
            discussion: """
                Kept in the user's state under state_dir (root's), not in the policy file, which the package \
                manager owns; a [deadlines] entry in the policy file still counts, and the later of the two wins.
                """
        )

        @OptionGroup var policy: PolicyOptions
        @OptionGroup var directory: DirectoryOptions

        @Argument(help: "The user.")
        var user: UserName

        @Argument(help: "The deadline, later than now: YYYY-MM-DD (00:00 local time) or YYYY-MM-DDTHH:MM[:SS] with Z or ±HH:MM.")
        var date: DateArgument

        /// A bad name, a bad date or one in the past is a usage error, found before root is needed.
        func validate() throws {
            try user.validate()
            try date.validateDeadline()
        }

        func run() throws {
            try requireRoot("extend")
            let config = try policy.load()
            let account = try existingAccount(user.name)
            let deadline = try date.date()
            if config.fleet.store == .ldap {
                return try Admin.extendInFleet(FleetAdmin(config: config, options: directory), user: account.name, deadline: deadline)
            }
            let store = StateStore(directory: config.stateDir)
            let location = DeviceFileLocation(account: account, config: config)
            let shown = displayText(account.name, limit: 64)
            var linked: [String] = []
            do {
                try adminTransaction(store: store, account: account, devices: location) { (state: inout UserState, file: DeviceFile?) throws(CoreError) in
                    linked = state.liveDevices(of: file).map { displayText($0.name, limit: 64) }
                    if linked.isEmpty { state.deadline = deadline }
                }
            } catch {
                throw CommandFailure("could not set the deadline of \(shown): \(explain(error, account: account)); nothing was changed")
            }
            guard linked.isEmpty else {
                throw CommandFailure("\(shown) already has a linked device (\(linked.joined(separator: ", "))): a deadline would change nothing. For a lost phone, use: engage2fa-admin reset \(shown) --deadline \(date)")
            }
            if let later = config.deadlines[account.name], later.unixTime > deadline.unixTime {
                printError("Warning: \(policy.config) gives \(shown) a later deadline (\(later.text)) in [deadlines], which still counts.")
            }
            audit("extend \(shown): personal deadline \(deadline.text) (in \(config.stateDir))")
            print("\(shown) has until \(deadline.text) to link a device.")
        }
    }
}
