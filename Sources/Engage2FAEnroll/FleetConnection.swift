import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement
#if canImport(Glibc)
import Glibc
#endif

/// Fleet mode (store = ldap): the user's conversation with this host's engage2fad over its enrollment
/// socket. engage2fad knows the caller by SO_PEERCRED and holds the directory's credentials; this command
/// only shows and asks, so each user acts for their own devices alone.
struct FleetEnrollment {
    let connection: FleetConnection

    init(_ context: EnrollContext) throws {
        guard context.account.uid == getuid() else {
            throw CommandFailure("in fleet mode (store = ldap) each user manages their own devices: run engage2fa-enroll as \(context.shownUser) (an administrator uses engage2fa-admin)")
        }
        let settings = context.config.fleet
        do {
            connection = try FleetConnection(path: settings.enrollSocketPath, budgetMilliseconds: Int64(settings.timeoutSeconds) * 1000 + 1000)
        } catch {
            throw CommandFailure("\(error.description); is engage2fad running? (systemctl status engage2fad-enroll.socket)")
        }
    }

    func ask(_ request: FleetRequest) throws -> FleetAnswer {
        do { return try connection.ask(request) } catch { throw CommandFailure(error.description) }
    }

    /// An enrollment request's answer: its own kind, or FleetProtocol's (a snapshot, done, or why not).
    enum Reply {
        case enroll(EnrollAnswer)
        case fleet(FleetAnswer)
    }

    func ask(_ request: EnrollRequest) throws -> Reply {
        let line: [UInt8]
        do { line = try connection.exchange(request.line) } catch { throw CommandFailure(error.description) }
        if let answer = EnrollAnswer(line: line) { return .enroll(answer) }
        guard let other = FleetAnswer(line: line) else { throw CommandFailure("unexpected answer from engage2fad; nothing was changed") }
        return .fleet(other)
    }

    /// The refusal or outage an answer reports, for the user.
    static func failure(_ answer: FleetAnswer, nothing: String = "nothing was saved") -> CommandFailure {
        switch answer {
        case .failed(let reason): CommandFailure(displayText(reason, limit: 500, escapingBackslashes: false))
        case .unreachable(let reason): CommandFailure("the directory cannot be reached (\(displayText(reason, limit: 300, escapingBackslashes: false))); \(nothing)")
        default: CommandFailure("unexpected answer from engage2fad; \(nothing)")
        }
    }

    /// A code proving the user holds a device (or a recovery code), typed at the prompt or given on standard input.
    static func readProof(_ purpose: String) throws -> [UInt8] {
        guard let answer = readAnswer(prompt: "Code from one of your devices (or a recovery code) to \(purpose): "), !answer.isEmpty else {
            throw CommandFailure("a current code from one of your devices (or a recovery code) is needed to \(purpose); nothing was changed")
        }
        return Array(answer.utf8)
    }
}
