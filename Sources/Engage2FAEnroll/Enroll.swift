import ArgumentParser
import Engage2FACommandSupport
import Engage2FACore

@main
struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engage2fa-enroll",
        abstract: "Link authenticator apps to your account for two-factor logins.",
        discussion: """
            Without a subcommand, links a new device: name it, scan the QR code with an authenticator app \
            (or type the secret), and type the 6-digit code the app shows. The device is saved only after \
            a correct code.
            """,
        version: engage2faVersion,
        subcommands: [Add.self, List.self, Remove.self, RecoveryCodesCommand.self, Status.self],
        defaultSubcommand: Add.self
    )
}

/// The caller's (or, for root, `--user`'s) devices and policy.
struct UserOptions: ParsableArguments {
    @OptionGroup var policy: PolicyOptions

    @Option(name: .long, help: ArgumentHelp("Act for this user (root only).", valueName: "name"))
    var user: String?
}
