import CEngageSys
import Engage2FALogin

/// One user's 2FA situation as the admin sees it: what the module would do at a login now.
public struct UserStatus: Sendable {
    public enum State: Equatable, Sendable {
        case notActiveYet
        case enforced
        case grace(until: PolicyDate, days: Int64)
        /// Refused at every login before a code is asked for, and why.
        case refused(PolicyDecision.Refusal)
        case lockedOut(until: Int64)
        case unreadable(reason: String)
        case notConfigured
    }

    public var user: String
    public var deviceNames: [String]
    public var recoveryCodesLeft: Int
    public var deadline: PolicyDate?
    public var state: State

    /// ready: will pass 2FA (has a device); pending: no device yet but not blocked; overdue: blocked.
    public var readiness: String {
        switch state {
        case .unreadable, .refused: return "overdue"
        case .lockedOut, .enforced: return "ready"
        case .notActiveYet, .grace, .notConfigured: return deviceNames.isEmpty ? "pending" : "ready"
        }
    }

    /// Computes the status with the same policy function the module uses, on the same data: the
    /// device file and root's state (deadlines, revocations, used recovery codes, lockout). The state is
    /// the decision's own reason, not worked out again; `engage2fa-admin status` words it.
    public static func of(
        account: Account, config: Config, activation: ActivationState, store: StateStore, now: Int64
    ) -> UserStatus {
        let location = DeviceFileLocation(account: account, config: config)
        var status = UserStatus(user: account.name, deviceNames: [], recoveryCodesLeft: 0, deadline: config.deadlines[account.name], state: .notActiveYet)
        let state: UserState
        do {
            state = try store.read(account: account)
        } catch {
            status.state = .unreadable(reason: "state: \(error)")
            return status
        }
        if let deadline = state.deadline, status.deadline.map({ deadline.unixTime > $0.unixTime }) ?? true { status.deadline = deadline }
        let enrollment: EnrollmentState
        do {
            let file = try location.load()
            status.deviceNames = state.liveDevices(of: file).map { $0.name }
            status.recoveryCodesLeft = state.liveRecoveryCodes(of: file).count
            enrollment = EnrollmentState(file: file, state: state)
        } catch {
            status.state = .unreadable(reason: "\(error)")
            return status
        }
        return decided(status, enrollment: enrollment, stateDeadline: state.deadline, lockedUntil: state.lockedUntil,
                       config: config, activation: activation, now: now)
    }

    /// The same for a user whose devices and state the fleet's directory holds (store = ldap).
    public static func decided(
        user: String, deviceNames: [String], recoveryCodesLeft: Int, deadline: PolicyDate?, lockedUntil: Int64,
        config: Config, activation: ActivationState, now: Int64
    ) -> UserStatus {
        let status = UserStatus(user: user, deviceNames: deviceNames, recoveryCodesLeft: recoveryCodesLeft, deadline: deadline, state: .notActiveYet)
        let enrollment: EnrollmentState = deviceNames.isEmpty ? .notEnrolled : .enrolled(devices: deviceNames.count, recoveryCodes: recoveryCodesLeft)
        return decided(status, enrollment: enrollment, stateDeadline: deadline, lockedUntil: lockedUntil, config: config, activation: activation, now: now)
    }

    /// The state of `status` as decidePolicy finds it, the lockout seen as the module sees it.
    private static func decided(
        _ status: UserStatus, enrollment: EnrollmentState, stateDeadline: PolicyDate?, lockedUntil: Int64,
        config: Config, activation: ActivationState, now: Int64
    ) -> UserStatus {
        var status = status
        let outcome = decidePolicy(now: now, user: status.user, config: .valid(config), activation: activation, enrollment: enrollment,
                                   stateDeadline: stateDeadline)
        switch outcome.decision {
        case .notApplicable:
            status.state = .notConfigured
        case .refuse(let reason):
            status.state = .refused(reason)
        case .noCodeRequired(.beforeStart):
            status.state = .notActiveYet
        case .noCodeRequired(.personalDeadline(let deadline)):
            status.state = .grace(until: deadline, days: daysLeft(now: now, until: deadline.unixTime))
        case .codeRequired:
            status.state = .enforced
            let remaining = UserState.lockoutRemaining(lockedUntil: lockedUntil, now: now, lockoutSeconds: config.lockoutSeconds)
            if remaining > 0 { status.state = .lockedOut(until: now + remaining) }
        }
        return status
    }
}
