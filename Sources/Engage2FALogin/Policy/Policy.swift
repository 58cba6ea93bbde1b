/// What the module could learn about the policy file.
public enum ConfigState: Equatable, Sendable {
    /// Read and valid (a missing file is a valid, empty policy).
    case valid(Config)
    /// Read, with errors; holds the settings that did parse.
    case invalid(Config, errors: [ConfigDiagnostic])
    /// Could not be read at all.
    case unreadable(reason: String)
}

/// What the module could learn about the user's devices.
public enum EnrollmentState: Equatable, Sendable {
    /// Devices or unused recovery codes (a user whose last phone is gone logs in with a recovery code).
    case enrolled(devices: Int, recoveryCodes: Int)
    case notEnrolled
    case unreadable(reason: String)

    /// What the device file and root's state say together: devices `reset` took away and recovery codes
    /// already used do not count.
    public init(file: DeviceFile?, state: UserState) {
        let devices = state.liveDevices(of: file).count
        let codes = state.liveRecoveryCodes(of: file).count
        self = devices + codes == 0 ? .notEnrolled : .enrolled(devices: devices, recoveryCodes: codes)
    }
}

/// What the module does for this login, with the reason and the dates and counts behind it. Words come
/// from one renderer per audience: `promptNotice` / `promptRefusal` for the person at the PAM prompt,
/// `UserStatus` for `engage2fa-admin status`, and each command's own text.
public enum PolicyDecision: Equatable, Sendable {
    /// 2FA does not apply here.
    case notApplicable(NotApplicable)
    /// Let the login go on without a code.
    case noCodeRequired(NoCode)
    /// Ask for a code from one of the user's devices (or a recovery code).
    case codeRequired
    /// Refuse the login before any code is asked for.
    case refuse(Refusal)

    public enum NotApplicable: Equatable, Sendable {
        /// No `start_date`, and 2FA was never activated.
        case notConfigured
        /// The policy file could not be read, and 2FA was never activated: nobody is locked out by it.
        case policyUnreadableNeverActivated
    }

    public enum NoCode: Equatable, Sendable {
        /// 2FA becomes mandatory at `start`. `enrolled` is false only when the user is known to have no
        /// device (a device file that cannot be read before activation is not worth a nudge).
        case beforeStart(start: PolicyDate, enrolled: Bool)
        /// Active, no device yet, and the user's personal deadline is still ahead.
        case personalDeadline(PolicyDate)
        /// The policy's scope keys leave this login out (a group, only_groups, a service).
        case exempt(Exemption)
    }

    public enum Refusal: Equatable, Sendable {
        /// Active since `activeSince` (Unix time), no device, no personal deadline.
        case noDevice(activeSince: Int64)
        /// Active, no device, and the personal deadline has passed.
        case deadlinePassed(PolicyDate)
        /// Active, and the user's devices could not be read.
        case devicesUnreadable
    }
}

extension PolicyDecision {
    /// The user is refused before any code is asked for.
    public var deniesWithoutACode: Bool {
        if case .refuse = self { return true }
        return false
    }

    /// A code must be asked for (matched by case: the derived `==` compares the exemption's names as
    /// Strings, which would bring Unicode normalisation into the module).
    public var requiresACode: Bool {
        if case .codeRequired = self { return true }
        return false
    }
}

/// A decision, with what the module must record and log along with it.
public struct PolicyOutcome: Equatable, Sendable {
    public var decision: PolicyDecision
    /// The activation record to write now (the first decision at or after `start_date`).
    public var activationToRecord: ActivationRecord?
    /// The settings to verify codes with: the policy file's, or the defaults when it could not be used.
    public var config: Config
    /// For the system log: why, in the admin's terms (never a secret or a code).
    public var logNotes: [String]

    /// Out of line: the policy notes at a dozen places.
    @inline(never)
    mutating func note(_ text: MessageText) { logNotes.append(text.text) }
}

/// The policy: one pure function from what the module knows to what it does.
///
/// | situation | decision |
/// |---|---|
/// | not configured, never activated | not applicable |
/// | before `start_date` | no code; a user with no device is told the date and the days left |
/// | active, user has a device | code required |
/// | active, no device, personal deadline in the future | no code; told the deadline and the days left |
/// | active, no device, no deadline or deadline passed | refused, told why and what to do |
/// | before or after start, exempt by `exempt_services`, `exempt_groups` or `only_groups` | no code, nothing said |
///
/// Activation is a ratchet: once recorded, 2FA stays active whatever `start_date` says later, and a
/// policy file that cannot be used then means the defaults (no personal deadlines), never "off".
/// Before activation, nothing that cannot be read ever locks anyone out.
///
/// A personal deadline comes from `[deadlines]` in the policy file or from root's state (set by
/// `engage2fa-admin extend`); when both name one, the later counts.
///
/// `service` is the PAM service (nil outside a login), `membership` which of the policy's groups the user
/// is in (`.unknown` grants no group exemption and counts as in `only_groups`).
public func decidePolicy(
    now: Int64, user: String, config configState: ConfigState, activation: ActivationState, enrollment: EnrollmentState,
    stateDeadline: PolicyDate? = nil, service: String? = nil, membership: GroupMembership = .unknown
) -> PolicyOutcome {
    // One outcome, filled in place: each return of a decision built a copy of the whole Config.
    var outcome = PolicyOutcome(decision: .codeRequired, activationToRecord: nil, config: Config(), logNotes: [])
    outcome.decision = decide(now: now, user: user, config: configState, activation: activation, enrollment: enrollment,
                              stateDeadline: stateDeadline, service: service, membership: membership, into: &outcome)
    return outcome
}

/// `decidePolicy`'s decision; the settings, the activation to record and the notes go into `outcome`.
private func decide(
    now: Int64, user: String, config configState: ConfigState, activation: ActivationState, enrollment: EnrollmentState,
    stateDeadline: PolicyDate?, service: String?, membership: GroupMembership, into outcome: inout PolicyOutcome
) -> PolicyDecision {
    var configUsable = true
    switch configState {
    case .valid(let parsed):
        outcome.config = parsed
    case .invalid(let partial, let errors):
        // Settings that parsed are kept; deadlines and exemptions only ever relax the policy, so a broken
        // file grants none.
        outcome.config = partial
        outcome.config.deadlines = [:]
        outcome.config.exemptGroups = []
        outcome.config.onlyGroups = []
        outcome.config.exemptServices = []
        configUsable = false
        outcome.note("policy file has \(errors.count) error(s), first: \(errors.first?.description ?? "?")")
    case .unreadable(let reason):
        configUsable = false
        outcome.note("policy file unreadable: \(reason)")
    }
    let startDate = outcome.config.startDate

    var activeSince: Int64?
    switch activation {
    case .active(let record):
        activeSince = record.activatedAt
        if configUsable && startDate == nil {
            outcome.note("no start_date in the policy file; enforcing because 2FA was activated on \(localDateText(record.activatedAt))")
        }
    case .unreadable(let reason):
        activeSince = startDate.map { min($0.unixTime, now) } ?? now
        outcome.note("activation record unreadable (\(reason)); enforcing as active")
    case .never:
        if case .unreadable = configState {
            outcome.note("2FA not enforced: policy unreadable and never activated")
            return .notApplicable(.policyUnreadableNeverActivated)
        }
        if let start = startDate, now >= start.unixTime {
            activeSince = start.unixTime
            outcome.activationToRecord = ActivationRecord(activatedAt: start.unixTime, recordedAt: now)
            outcome.note("2FA activated: start_date \(start) reached")
        }
    }
    if !configUsable, activeSince != nil { outcome.note("enforcing with default settings where the policy file is broken") }

    if configUsable, activeSince != nil || startDate != nil, let exemption = outcome.config.exemption(service: service, membership: membership) {
        if activeSince != nil { outcome.note("no code asked: \(exemption.text)") }
        return .noCodeRequired(.exempt(exemption))
    }

    guard let activeSince else {
        guard let start = startDate else { return .notApplicable(.notConfigured) }
        switch enrollment {
        case .enrolled:
            return .noCodeRequired(.beforeStart(start: start, enrolled: true))
        case .notEnrolled:
            return .noCodeRequired(.beforeStart(start: start, enrolled: false))
        case .unreadable(let reason):
            outcome.note("device file unreadable before activation: \(reason)")
            return .noCodeRequired(.beforeStart(start: start, enrolled: true))
        }
    }

    switch enrollment {
    case .enrolled:
        return .codeRequired
    case .unreadable(let reason):
        outcome.note("refused: device file unreadable: \(reason)")
        return .refuse(.devicesUnreadable)
    case .notEnrolled:
        let personalDeadline: PolicyDate? = switch (outcome.config.deadlines[user], stateDeadline) {
        case (let file?, let state?): file.unixTime >= state.unixTime ? file : state
        case (let file?, nil): file
        case (nil, let state): state
        }
        if let deadline = personalDeadline, now < deadline.unixTime {
            outcome.note("no device; personal deadline \(deadline) not reached")
            return .noCodeRequired(.personalDeadline(deadline))
        }
        if let deadline = personalDeadline {
            outcome.note("refused: no device, personal deadline \(deadline) passed")
            return .refuse(.deadlinePassed(deadline))
        }
        outcome.note("refused: no device and no personal deadline")
        return .refuse(.noDevice(activeSince: activeSince))
    }
}
