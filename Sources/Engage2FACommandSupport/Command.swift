import ArgumentParser
import Engage2FALogin
import Engage2FAManagement

/// `-V`, as well as the parser's own `--version`, on the top-level command.
///
/// The parser reserves `--version` for every command with a version and has no way to add a short
/// name to it, so `-V` is a flag of its own: its `validate()` (called as soon as the top-level command
/// is parsed, before a subcommand is chosen) ends the command the way `--version` does: the version
/// on standard output, exit 0.
public struct VersionOptions: ParsableArguments {
    @Flag(name: .customShort("V"), help: "Show the version (as --version).")
    public var version = false

    public init() {}

    public func validate() throws {
        if version { throw CleanExit.message(engage2faVersion) }
    }
}

extension ParsableCommand {
    /// The names a subcommand of this command is called by (its name and aliases), and `help`.
    static var subcommandNames: [String] {
        configuration.subcommands.flatMap { [$0._commandName] + $0.configuration.aliases } + ["help"]
    }

    /// Parses `arguments` as this top-level command does, but a first argument that is not an option
    /// must name a subcommand: without this, a typo (`engage2fa-enroll lsit`) falls through to the
    /// default subcommand, which answers with its own usage ("Unexpected argument 'lsit'"). Here it is
    /// a usage error (exit 64) that names the word and lists the subcommands, with this command's usage.
    public static func parseCommand(_ arguments: [String]) throws -> ParsableCommand {
        if let first = arguments.first, !first.hasPrefix("-"), !subcommandNames.contains(first) {
            let names = configuration.subcommands.map { $0._commandName }.joined(separator: ", ")
            throw ValidationError("'\(displayText(first, limit: 64))' is not a subcommand of \(_commandName) (the subcommands are: \(names))")
        }
        return try parseAsRoot(arguments)
    }

    /// `main()` with `parseCommand(_:)`: the top-level commands' entry point.
    public static func mainCheckingSubcommand(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        do {
            var command = try parseCommand(arguments)
            try command.run()
            exit()
        } catch {
            exit(withError: error)
        }
    }
}
