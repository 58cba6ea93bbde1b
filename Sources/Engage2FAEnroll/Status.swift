import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

extension Enroll {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Say what two-factor authentication means for you now.")

        @OptionGroup var options: UserOptions

        func run() throws {
            let context = try EnrollContext(options)
            if context.config.fleet.store == .ldap { return try runInFleet(context) }
            let state = context.state() ?? UserState()
            let enrollment: EnrollmentState
            do {
                let file = try context.location.load()
                context.warnAboutNames(in: file)
                enrollment = EnrollmentState(file: file, state: state)
            } catch {
                enrollment = .unreadable(reason: explain(error, account: context.account))
            }
            let activation = activationState(configPath: context.configPath, config: context.config)
            if case .unreadable(let reason) = activation {
                // The record is readable by every user; one that is not is taken as active, as the module takes it.
                printError("Warning: cannot tell when two-factor authentication was activated (\(reason)); assuming it is active. Ask an administrator.")
            }
            decideAndPrint(context, config: context.config, activation: activation, enrollment: enrollment, deadline: state.deadline)
        }

        /// decidePolicy on the same data a login has, in the user's words.
        func decideAndPrint(_ context: EnrollContext, config: Config, activation: ActivationState, enrollment: EnrollmentState, deadline: PolicyDate?) {
            let now = currentUnixTime()
            let outcome = decidePolicy(now: now, user: context.account.name, config: .valid(config),
                                       activation: activation, enrollment: enrollment, stateDeadline: deadline,
                                       membership: context.account.membership(of: config.scopeGroups))
            print(displayLine(statusText(outcome.decision, enrollment: enrollment, user: context.account.name, now: now)))
        }
    }
}

/// What `engage2fa-enroll status` says: the decision in the user's words (the notices and refusals are
/// those of the PAM prompt), with what the user's device file holds.
func statusText(_ decision: PolicyDecision, enrollment: EnrollmentState, user: String, now: Int64) -> String {
    let devices: String
    switch enrollment {
    case .enrolled(let count, let codes):
        devices = count == 0
            ? "You have no linked device, but \(codes) recovery code\(codes == 1 ? "" : "s") left: link a new device with engage2fa-enroll."
            : "You have \(count) linked device\(count == 1 ? "" : "s")."
    case .notEnrolled: devices = "You have no linked device."
    case .unreadable(let reason): devices = "Your device file cannot be used: \(reason)."
    }
    switch decision {
    case .notApplicable:
        return "Two-factor authentication is not enabled on this host. " + devices
    case .noCodeRequired(.exempt):
        return "Two-factor authentication does not apply to you on this host (the administrator's policy exempts you). " + devices
    case .noCodeRequired(let reason):
        if let notice = reason.promptText(now: now) { return notice }
        guard case .beforeStart(let start, _) = reason else { return devices }
        return "Two-factor authentication becomes mandatory on \(start.text). \(devices) You are ready."
    case .codeRequired:
        return "Two-factor authentication is active: logins ask for a code. " + devices
    case .refuse(let reason):
        return reason.promptText(user: user)
    }
}
