import ArgumentParser
import Engage2FACommandSupport
import Engage2FACore
#if canImport(Glibc)
import Glibc
#endif

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Say what two-factor authentication means for you now.")

    @OptionGroup var options: UserOptions

    func run() throws {
        let context = try EnrollContext(options)
        let enrollment: EnrollmentState
        do {
            let file = try context.location.load()
            enrollment = (file?.devices.isEmpty ?? true) ? .notEnrolled : .enrolled(deviceCount: file!.devices.count)
        } catch {
            enrollment = .unreadable(reason: explain(error, account: context.account))
        }
        var activation = StateStore(directory: context.config.stateDir).readActivation()
        if case .unreadable = activation, getuid() != 0 {
            // The state directory is root's; without it, the policy file is all a user can go by.
            activation = .never
        }
        let outcome = decidePolicy(now: currentUnixTime(), user: context.account.name, config: .valid(context.config),
                                   activation: activation, enrollment: enrollment)
        let devices: String
        switch enrollment {
        case .enrolled(let count): devices = "You have \(count) linked device\(count == 1 ? "" : "s")."
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
