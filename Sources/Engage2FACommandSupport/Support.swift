import Glibc
import ArgumentParser
import Engage2FALogin
import Engage2FAManagement

/// A failure the user can act on: one sentence, printed as "Error: …", exit status 1.
///
/// Failures quote names, paths and parse errors: what reaches the terminal is escaped here, whoever
/// made the message (its lines are kept; backslashes too, as its parts were escaped where they were made).
public struct CommandFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) {
        self.description = displayText(description, limit: 16_384, escapingBackslashes: false, keepingNewlines: true)
    }
}

/// A line to print that is made of parts escaped where they came from (a parse error quoting a file)
/// and parts that may not be (a path from the user database, a reason): nothing unsafe reaches the
/// terminal, and nothing is escaped twice. Names and other single values take `displayText(_:)`.
public func displayLine(_ text: String, limit: Int = 4096) -> String {
    displayText(text, limit: limit, escapingBackslashes: false)
}

/// Options every subcommand takes.
public struct PolicyOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The policy file.", valueName: "path"))
    public var config: String = Config.defaultPath

    public init() {}

    /// The policy, or a failure listing every error as file:line. A missing file is the default policy.
    public func load() throws -> Config {
        switch Config.load(path: config) {
        case .valid(let parsed):
            return parsed
        case .invalid(_, let errors):
            throw CommandFailure("the policy file has errors:\n" + errors.map { "  \($0)" }.joined(separator: "\n"))
        case .unreadable(let reason):
            throw CommandFailure("cannot read the policy file: \(reason)")
        }
    }
}

/// Whether 2FA is active for this policy file, as the module decides it: the compiled-in record, or
/// one an older version left in state_dir.
public func activationState(configPath: String, config: Config) -> ActivationState {
    ActivationStore(configPath: configPath).readIncludingLegacy(stateDirectory: config.stateDir).state
}

/// The account a command acts for: the caller, or with `--user` (root only) another user.
public func targetAccount(named name: String?) throws -> Account {
    guard let name else {
        guard let account = Account.lookup(uid: getuid()) else { throw CommandFailure("cannot find your account (uid \(getuid())) in the user database") }
        return account
    }
    guard getuid() == 0 else { throw CommandFailure("only root can act for another user (--user \(displayText(name, limit: 64)))") }
    guard isSafeUserName(name), let account = Account.lookup(name) else { throw CommandFailure("there is no user '\(displayText(name, limit: 64))'") }
    return account
}

/// What is wrong with a device file, and the command that fixes it.
public func explain(_ error: Error, account: Account) -> String {
    switch error {
    case CoreError.deviceFile(let deviceFile):
        return explain(deviceFile, account: account)
    case CoreError.file(let file):
        return explain(file, account: account)
    case DeviceFileError.file(let file):
        return explain(file, account: account)
    case let file as TrustedFileError:
        return explain(file, account: account)
    case CoreError.state(.lockTimeout(let path, _)):
        return "\(error)" + lockHolderText(path)
    case DeviceFileError.format(let path, let line, let message):
        return "\(path):\(line): \(message). Correct that line, or move the file aside (mv \(path) \(path).bad) and link your devices again"
    default:
        return "\(error)"
    }
}

private func explain(_ error: TrustedFileError, account: Account) -> String {
    switch error {
    case .tooPermissive(let path, _, _):
        return "\(error). Fix it with: chmod 600 \(path)"
    case .wrongOwner(let path, _, _):
        return "\(error). Fix it with: sudo chown \(account.name): \(path)"
    case .symbolicLink(let path):
        return "\(error). Replace the link with the file itself: cp --remove-destination \"$(readlink -f \(path))\" \(path)"
    case .system(let path, let system) where system.errno == .noSpace || system.errno == .diskQuotaExceeded:
        return "\(path): the disk is full (or your quota is used up); nothing was changed"
    case .system(let path, let system) where system.errno == .readOnlyFileSystem:
        return "\(path): the file system is read-only; nothing was changed"
    case .system(let path, let system) where system.errno == .permissionDenied:
        return "\(path): permission denied (\(system.call)); nothing was changed"
    default:
        return "\(error)"
    }
}

/// This host's name (gethostname(2)), as the policy's `label` names it; "localhost" if it has none.
public func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0, buffer[0] != 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// True when file descriptor `fd` is a terminal.
public func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

/// Columns and lines of the terminal on standard output, if it is one (else COLUMNS and LINES).
public func terminalSize() -> (columns: Int?, lines: Int?) {
    var size = winsize()
    if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 {
        return (Int(size.ws_col), Int(size.ws_row))
    }
    func variable(_ name: String) -> Int? { getenv(name).flatMap { Int(String(cString: $0)) }.flatMap { $0 > 0 ? $0 : nil } }
    return (variable("COLUMNS"), variable("LINES"))
}

/// Prints without a newline and flushes, for prompts and for lines a script waits for.
public func printFlushed(_ text: String, terminator: String = "\n") {
    print(text, terminator: terminator)
    fflush(nil)  // all output streams: stdout is a C global Swift 6 will not touch
}

/// Writes a line to standard error.
public func printError(_ text: String) {
    fflush(nil)
    let line = Array((text + "\n").utf8)
    line.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

/// One line from standard input, without its newline; nil at end of input.
public func readAnswer(prompt: String) -> String? {
    printFlushed(prompt, terminator: "")
    let line = readLine(strippingNewline: true)
    if line == nil && isTerminal(STDIN_FILENO) { print() }
    return line
}

extension String {
    /// Left-aligned in a column `width` characters wide.
    public func padded(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
