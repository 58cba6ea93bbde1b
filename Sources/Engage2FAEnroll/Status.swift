import ArgumentParser
import Engage2FACommandSupport
import Engage2FACore
#if canImport(Glibc)
import Glibc
#endif

extension Enroll {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Say what two-factor authentication means for you now.")

        @OptionGroup var options: UserOptions

        func run() throws {
            let context = try EnrollContext(options)
            let state = context.state() ?? UserState()
            let enrollment: EnrollmentState
            do {
                enrollment = EnrollmentState(file: try context.location.load(), state: state)
            } catch {
                enrollment = .unreadable(reason: explain(error, account: context.account))
            }
            let activation = activationState(configPath: context.configPath, config: context.config)
            if case .unreadable(let reason) = activation {
                // The record is readable by every user; one that is not is taken as active, as the module takes it.
                printError("Warning: cannot tell when two-factor authentication was activated (\(reason)); assuming it is active. Ask an administrator.")
            }
            let outcome = decidePolicy(now: currentUnixTime(), user: context.account.name, config: .valid(context.config),
                                       activation: activation, enrollment: enrollment, stateDeadline: state.deadline)
            let devices: String
            switch enrollment {
            case .enrolled(let count, let codes):
                devices = count == 0
                    ? "You have no linked device, but \(codes) recovery code\(codes == 1 ? "" : "s") left: link a new device with engage2fa-enroll."
                    : "You have \(count) linked device\(count == 1 ? "" : "s")."
            case .notEnrolled: devices = "You have no linked device."
            case .unreadable(let reason): devices = "Your device file cannot be used: \(reason)."
            }
            switch outcome.decision {
            case .notApplicable:
                print(displayLine("Two-factor authentication is not enabled on this host. " + devices))
            case .noCodeRequired(let notice):
                print(displayLine(notice ?? "Two-factor authentication becomes mandatory on \(context.config.startDate.map(\.text) ?? "?"). \(devices) You are ready."))
            case .codeRequired:
                print(displayLine("Two-factor authentication is active: logins ask for a code. " + devices))
            case .refuse(let message):
                print(displayLine(message))
            }
        }
    }
}
