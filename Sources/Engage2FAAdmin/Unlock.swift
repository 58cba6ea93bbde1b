import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

extension Admin {
    struct Unlock: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clear a user's lockout after too many wrong codes (devices stay).")

        @OptionGroup var policy: PolicyOptions
        @OptionGroup var directory: DirectoryOptions

        @Argument(help: "The user.")
        var user: UserName

        func validate() throws {
            try user.validate()
        }

        func run() throws {
            try requireRoot("unlock")
            let config = try policy.load()
            let account = try existingAccount(user.name)
            if config.fleet.store == .ldap {
                return try Admin.unlockInFleet(FleetAdmin(config: config, options: directory), user: account.name)
            }
            let shown = displayText(account.name, limit: 64)
            do {
                try adminTransaction(store: StateStore(directory: config.stateDir), account: account, devices: nil) { (state: inout UserState, _) throws(CoreError) in
                    state.failures = 0
                    state.lockedUntil = 0
                }
            } catch {
                throw CommandFailure("could not clear the lockout of \(shown): \(explain(error, account: account))")
            }
            audit("unlock \(shown): cleared lockout")
            print("Cleared the lockout of \(shown).")
        }
    }
}
