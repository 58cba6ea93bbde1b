import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engage2fa-enroll",
        abstract: "Link authenticator apps to your account for two-factor logins.",
        // The number of digits is the policy's (`digits`), so the help does not name one: reading the
        // policy file to render help would make help depend on (and fail with) a file that `--config`
        // may not even name yet, and give different text to different callers.
        discussion: """
            Without a subcommand, links a new device: name it, scan the QR code with an authenticator app \
            (or type the secret), and type the code the app shows (as many digits as the host's policy \
            says). The device is saved only after a correct code.

            Exit status: 0 on success, 1 on an error (the reason on standard error), 64 for a usage error.
            """,
        version: engage2faVersion,
        subcommands: [Add.self, List.self, Remove.self, RecoveryCodes.self, Status.self],
        defaultSubcommand: Add.self
    )

    @OptionGroup var version: VersionOptions

    /// `engage2fa-enroll lsit` is an unknown subcommand, not `add` given a stray word (see `parseCommand`);
    /// `engage2fa-enroll` alone and `engage2fa-enroll --name X` still run `add`.
    static func main() { mainCheckingSubcommand() }
}

/// The caller's (or, for root, `--user`'s) devices and policy.
struct UserOptions: ParsableArguments {
    @OptionGroup var policy: PolicyOptions

    @Option(name: .long, help: ArgumentHelp("Act for this user (root only).", valueName: "name"))
    var user: UserName?

    func validate() throws {
        try user?.validate()
    }
}

/// The command's entry point, for the program both commands are (Engage2FACommands).
public func runEnroll() { Enroll.main() }
