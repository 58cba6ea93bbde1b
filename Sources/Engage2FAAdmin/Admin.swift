import ArgumentParser
import Engage2FACommandSupport
import Engage2FACore

@main
struct Admin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engage2fa-admin",
        abstract: "Manage the two-factor rollout: check the policy, see who is ready, extend deadlines, reset lost phones.",
        version: engage2faVersion,
        subcommands: [Check.self, Status.self, Extend.self, Reset.self, Unlock.self]
    )
}
