// pam_engage2fa.so: the C entry points PAM calls, the conversation and syslog. Every decision is
// the login library's (Engage2FALogin, Login.swift); this file only translates between it and libpam.

import CEngagePAM
import CPAM
import CEngageSys
import Engage2FALoginEmbedded

@_cdecl("pam_sm_authenticate")
public func pam_sm_authenticate(
    _ handle: OpaquePointer?, _ flags: Int32, _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    guard let handle else { return PAM_SERVICE_ERR }
    let log = SyslogLog(handle: handle)
    let options: ModuleOptions
    switch ModuleOptions.parse(argc: argc, argv: argv) {
    case .success(let parsed): options = parsed
    case .failure(let problem):
        // A typo in /etc/pam.d must not silently switch 2FA off.
        log.log(.error, "\(problem.message); denying (fix the module line in /etc/pam.d)")
        return PAM_AUTH_ERR
    }

    var userPointer: UnsafePointer<CChar>? = nil
    guard pam_get_user(handle, &userPointer, nil) == PAM_SUCCESS, let userPointer else {
        log.log(.error, "could not get the user name")
        return PAM_AUTH_ERR
    }
    // PAM_USER is the client's bytes. Not UTF-8, it can name no account this module would look up the same
    // way pam_unix does (a String would replace the bad bytes): it goes on as a name that matches no user
    // (a '/' is never in one), shown escaped, and gets the prompt and answer of any unknown user.
    let userBytes = UnsafeBufferPointer(start: UnsafeRawPointer(userPointer).assumingMemoryBound(to: UInt8.self), count: strlen(userPointer))
    let user = String(validating: userBytes, as: UTF8.self) ?? "/not-utf-8/" + displayText(bytes: userBytes, limit: 64)

    // A code this transaction already accepted (an earlier pam_engage2fa in the stack) is not asked again:
    // asked, the same code would be refused as used. The mark is this handle's, for this user, and short-lived.
    if e2f_pam_has_passed(handle, userPointer, currentUnixTime(), passedMarkLifetime) == 1 {
        log.log(.info, "user \(displayText(user, limit: 64)): pam_engage2fa already accepted a code in this PAM transaction; not asked again")
        return PAM_SUCCESS
    }

    var login = Login(
        user: user, configPath: options.configPath,
        conversation: PAMConversation(handle: handle, silent: flags & Int32(bitPattern: PAM_SILENT) != 0), log: log)
    login.debug = options.debug
    login.service = pamItem(handle, PAM_SERVICE).map { String(decoding: $0, as: UTF8.self) }
    login.passwordEntry = options.passwordEntry
    switch login.run() {
    case .notApplicable: return PAM_IGNORE
    case .success:
        _ = e2f_pam_mark_passed(handle, userPointer, currentUnixTime())
        return PAM_SUCCESS
    case .denied: return PAM_AUTH_ERR
    case .lockedOut: return PAM_MAXTRIES
    }
}

@_cdecl("pam_sm_setcred")
public func pam_sm_setcred(
    _ handle: OpaquePointer?, _ flags: Int32, _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    // Authentication is over once the application sets credentials: an application that keeps its handle
    // and authenticates again later (a screen locker) is asked for a new code.
    if let handle { e2f_pam_forget_passed(handle) }
    return PAM_SUCCESS
}

/// How long an accepted code spares later instances of the module in the same handle from asking again:
/// one stack's run, for an application that neither ends its handle nor sets credentials in between.
let passedMarkLifetime: Int64 = 120

/// The module's arguments from its line in /etc/pam.d.
struct ModuleOptions {
    var configPath = Config.defaultPath
    var debug = false
    /// forward_pass, use_first_pass, try_first_pass (one at most).
    var passwordEntry = PasswordEntry.separate

    struct Problem: Error { var message: MessageText }

    static func parse(argc: Int32, argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Result<ModuleOptions, Problem> {
        var options = ModuleOptions()
        for index in 0..<Int(argc) {
            guard let pointer = argv?[index] else { continue }
            // Compared as C bytes: String's Unicode-aware hasPrefix and count cost thousands of instructions.
            let argument = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer))
            let configPrefix: StaticString = "config="
            let entry: PasswordEntry? = argument.spells("forward_pass") ? .forwardPass
                : argument.spells("use_first_pass") ? .useFirstPass
                : argument.spells("try_first_pass") ? .tryFirstPass : nil
            if argument.spells("debug") {
                options.debug = true
            } else if let entry {
                guard options.passwordEntry == .separate || options.passwordEntry == entry else {
                    return .failure(Problem(message: "forward_pass, use_first_pass and try_first_pass exclude each other: name one"))
                }
                options.passwordEntry = entry
            } else if argument.count > configPrefix.utf8CodeUnitCount,
                      UnsafeBufferPointer(rebasing: argument[..<configPrefix.utf8CodeUnitCount]).spells(configPrefix) {
                let path = String(decoding: argument[configPrefix.utf8CodeUnitCount...], as: UTF8.self)
                guard argument[configPrefix.utf8CodeUnitCount] == UInt8(ascii: "/") else {
                    return .failure(Problem(message: "config= needs an absolute path, not '\(path)'"))
                }
                options.configPath = path
            } else {
                let argument = String(cString: pointer)
                return .failure(Problem(message: "unknown module argument '\(argument)' (known: config=PATH, debug, forward_pass, use_first_pass, try_first_pass)"))
            }
        }
        return .success(options)
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// Whether these bytes are exactly `word`'s.
    func spells(_ word: StaticString) -> Bool {
        count == word.utf8CodeUnitCount && (count == 0 || memcmp(baseAddress!, word.utf8Start, count) == 0)
    }
}

/// The PAM conversation: prompts with echo off, and info and error messages the user sees
/// (an ssh user too, through keyboard-interactive).
struct PAMConversation: LoginConversation {
    let handle: OpaquePointer
    let silent: Bool

    func askHidden(_ prompt: String) -> [UInt8]? {
        var response: UnsafeMutablePointer<CChar>? = nil
        // withCString hands over a native String's own bytes; the implicit conversion would copy them.
        guard prompt.withCString({ e2f_pam_prompt(handle, PAM_PROMPT_ECHO_OFF, &response, $0) }) == PAM_SUCCESS, let response else { return nil }
        let length = strlen(response)
        let typed = [UInt8](UnsafeRawBufferPointer(start: response, count: length))
        // The response may be a code or a recovery code: wipe it before handing the memory back.
        memset(response, 0, length)
        free(response)
        return typed
    }

    func earlierPassword() -> [UInt8]? {
        guard let token = pamItem(handle, PAM_AUTHTOK), !token.isEmpty else { return nil }
        return Array(token)
    }

    func forwardPassword(_ password: [UInt8]) {
        // libpam keeps a copy (and wipes it at pam_end); ours is wiped here.
        var terminated = password + [0]
        _ = terminated.withUnsafeBytes { pam_set_item(handle, PAM_AUTHTOK, $0.baseAddress) }
        for index in terminated.indices { terminated[index] = 0 }
    }

    func showInfo(_ text: String) {
        guard !silent else { return }
        var ignored: UnsafeMutablePointer<CChar>? = nil
        _ = shown(text).withCString { e2f_pam_prompt(handle, PAM_TEXT_INFO, &ignored, $0) }
        free(ignored)
    }

    func showError(_ text: String) {
        guard !silent else { return }
        var ignored: UnsafeMutablePointer<CChar>? = nil
        _ = shown(text).withCString { e2f_pam_prompt(handle, PAM_ERROR_MSG, &ignored, $0) }
        free(ignored)
    }

    /// A message reaches the person's terminal (through ssh too) and may hold their user name, which
    /// the caller chose: no control or invisible mark in it, one line, bounded.
    private func shown(_ text: String) -> String { displayText(text, limit: 1000, escapingBackslashes: false) }
}

/// syslog(3) to the authpriv facility, each line prefixed "pam_engage2fa(SERVICE:auth): " as
/// pam_syslog(3) would (which formats every line three times over), and ended with where the login came
/// from, " rhost=HOST tty=TTY" (each when the application set it), so an admin can grep an attack by address.
///
/// The one way out for every log line of the module: each is escaped here (a user name, a path, a
/// parse error are attacker input: a newline would forge a second line, ESC would reach the terminal
/// of whoever reads the log) and bounded. The parts were escaped where they were made, so
/// backslashes are left alone rather than doubled. The service and the remote host are the
/// application's and the client's bytes: escaped as fields (`logField`: spaces too).
struct SyslogLog: LoginLog {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }

    @inline(never)  // one copy for the module's dozens of log sites
    func log(_ priority: LogPriority, _ message: MessageText) {
        let level: Int32 = switch priority {
        case .error: LOG_ERR
        case .warning: LOG_WARNING
        case .notice: LOG_NOTICE
        case .info: LOG_INFO
        case .debug: LOG_DEBUG
        }
        // The whole line is escaped into the one buffer handed to C, its NUL after it. The items are read
        // as the line is written (a login logs once or twice): no buffer of them is kept for the login.
        var line: [UInt8] = []
        line.reserveCapacity(message.bytes.count + 4 * 64 + 40)
        line.appendLiteral("pam_engage2fa(")
        if let name = pamItem(handle, PAM_SERVICE) { appendDisplayText(name, limit: 64, to: &line) } else { line.append(UInt8(ascii: "?")) }
        line.appendLiteral(":auth): ")
        message.bytes.withUnsafeBufferPointer { appendDisplayText($0, limit: 1000, escapingBackslashes: false, to: &line) }
        if let rhost = pamItem(handle, PAM_RHOST), !rhost.isEmpty {
            line.append(UInt8(ascii: " "))
            appendLogField("rhost", bytes: rhost, to: &line)
        }
        if let tty = pamItem(handle, PAM_TTY), !tty.isEmpty {
            line.append(UInt8(ascii: " "))
            appendLogField("tty", bytes: tty, limit: 64, to: &line)
        }
        line.append(0)
        line.withUnsafeBufferPointer { e2f_pam_log(level, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self)) }
    }
}

/// A string item of the PAM handle (PAM_SERVICE, PAM_RHOST, PAM_TTY) as its bytes, valid while the item
/// is not changed; nil when it is not set.
func pamItem(_ handle: OpaquePointer, _ item: Int32) -> UnsafeBufferPointer<UInt8>? {
    var value: UnsafeRawPointer? = nil
    guard pam_get_item(handle, item, &value) == PAM_SUCCESS, let value else { return nil }
    return UnsafeBufferPointer(start: value.assumingMemoryBound(to: UInt8.self), count: strlen(value.assumingMemoryBound(to: CChar.self)))
}
