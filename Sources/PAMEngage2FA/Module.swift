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

    var login = Login(
        user: user, configPath: options.configPath,
        conversation: PAMConversation(handle: handle, silent: flags & Int32(bitPattern: PAM_SILENT) != 0), log: log)
    login.debug = options.debug
    switch login.run() {
    case .notApplicable: return PAM_IGNORE
    case .success: return PAM_SUCCESS
    case .denied: return PAM_AUTH_ERR
    case .lockedOut: return PAM_MAXTRIES
    }
}

@_cdecl("pam_sm_setcred")
public func pam_sm_setcred(
    _ handle: OpaquePointer?, _ flags: Int32, _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    PAM_SUCCESS
}

/// The module's arguments from its line in /etc/pam.d.
struct ModuleOptions {
    var configPath = Config.defaultPath
    var debug = false

    struct Problem: Error { var message: String }

    static func parse(argc: Int32, argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Result<ModuleOptions, Problem> {
        var options = ModuleOptions()
        for index in 0..<Int(argc) {
            guard let pointer = argv?[index] else { continue }
            // Compared as C bytes: String's Unicode-aware hasPrefix and count cost thousands of instructions.
            let argument = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer))
            let configPrefix = Array("config=".utf8)
            if argument.elementsEqual("debug".utf8) {
                options.debug = true
            } else if argument.starts(with: configPrefix), argument.count > configPrefix.count {
                let path = String(decoding: argument[configPrefix.count...], as: UTF8.self)
                guard argument[configPrefix.count] == UInt8(ascii: "/") else {
                    return .failure(Problem(message: "config= needs an absolute path, not '\(path)'"))
                }
                options.configPath = path
            } else {
                let argument = String(cString: pointer)
                return .failure(Problem(message: "unknown module argument '\(argument)' (known: config=PATH, debug)"))
            }
        }
        return .success(options)
    }
}

/// The PAM conversation: prompts with echo off, and info and error messages the user sees
/// (an ssh user too, through keyboard-interactive).
struct PAMConversation: LoginConversation {
    let handle: OpaquePointer
    let silent: Bool

    func askHidden(_ prompt: String) -> [UInt8]? {
        var response: UnsafeMutablePointer<CChar>? = nil
        guard e2f_pam_prompt(handle, PAM_PROMPT_ECHO_OFF, &response, prompt) == PAM_SUCCESS, let response else { return nil }
        let length = strlen(response)
        let typed = [UInt8](UnsafeRawBufferPointer(start: response, count: length))
        // The response may be a code or a recovery code: wipe it before handing the memory back.
        memset(response, 0, length)
        free(response)
        return typed
    }

    func showInfo(_ text: String) {
        guard !silent else { return }
        var ignored: UnsafeMutablePointer<CChar>? = nil
        _ = e2f_pam_prompt(handle, PAM_TEXT_INFO, &ignored, shown(text))
        free(ignored)
    }

    func showError(_ text: String) {
        guard !silent else { return }
        var ignored: UnsafeMutablePointer<CChar>? = nil
        _ = e2f_pam_prompt(handle, PAM_ERROR_MSG, &ignored, shown(text))
        free(ignored)
    }

    /// A message reaches the person's terminal (through ssh too) and may hold their user name, which
    /// the caller chose: no control or invisible mark in it, one line, bounded.
    private func shown(_ text: String) -> String { displayText(text, limit: 1000, escapingBackslashes: false) }
}

/// syslog(3) to the authpriv facility, each line prefixed "pam_engage2fa(SERVICE:auth): " as
/// pam_syslog(3) would (which formats every line three times over).
///
/// The one way out for every log line of the module: each is escaped here (a user name, a path, a
/// parse error are attacker input: a newline would forge a second line, ESC would reach the terminal
/// of whoever reads the log) and bounded. The parts were escaped where they were made, so
/// backslashes are left alone rather than doubled.
struct SyslogLog: LoginLog {
    let handle: OpaquePointer

    func log(_ priority: LogPriority, _ message: String) {
        let level: Int32 = switch priority {
        case .error: LOG_ERR
        case .warning: LOG_WARNING
        case .notice: LOG_NOTICE
        case .info: LOG_INFO
        case .debug: LOG_DEBUG
        }
        var service: UnsafeRawPointer? = nil
        let name = pam_get_item(handle, PAM_SERVICE, &service) == PAM_SUCCESS && service != nil
            ? displayText(bytes: UnsafeBufferPointer(start: service!.assumingMemoryBound(to: UInt8.self), count: strlen(service!.assumingMemoryBound(to: CChar.self))), limit: 64)
            : "?"
        name.withCString { service in
            displayText(message, limit: 1000, escapingBackslashes: false).withCString { e2f_pam_log(level, service, $0) }
        }
    }
}
