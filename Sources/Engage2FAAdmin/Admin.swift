import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

struct Admin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engage2fa-admin",
        abstract: "Manage the two-factor rollout: check the policy, see who is ready, extend deadlines, reset lost phones.",
        discussion: "Exit status: 0 on success, 1 on an error (the reason on standard error), 64 for a usage error.",
        version: engage2faVersion,
        subcommands: [Check.self, Status.self, Extend.self, Reset.self, Unlock.self, Import.self, Migrate.self, StartDate.self]
    )

    @OptionGroup var version: VersionOptions

    /// A word where a subcommand belongs that is not one is named as such (see `parseCommand`).
    static func main() { mainCheckingSubcommand() }
}

/// The command's entry point, for the program both commands are (Engage2FACommands).
public func runAdmin() { Admin.main() }
