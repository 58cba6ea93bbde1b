import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement
#if canImport(Glibc)
import Glibc
#endif

// list, remove, recovery-codes and status in fleet mode: what the directory holds, through engage2fad.
// Removing a device and replacing the recovery codes need a current code from one of the user's devices
// (or a recovery code), which engage2fad consumes centrally: a password alone takes nothing away.

extension Enroll.List {
    func runInFleet(_ context: EnrollContext) throws {
        let fleet = try FleetEnrollment(context)
        switch try fleet.ask(EnrollRequest.list) {
        case .enroll(.devices(let devices, let total, let left, let unusable)):
            var extra: [String] = []
            if total > devices.count { extra.append("(\(total - devices.count) more devices are not shown)") }
            if unusable > 0 { extra.append("\(unusable) device entr\(unusable == 1 ? "y" : "ies") in the directory cannot be used: ask an administrator to repair or remove \(unusable == 1 ? "it" : "them").") }
            try show(context, devices, recoveryCodesLeft: left, note: " (on every host of the fleet)", extra: extra)
        case .enroll: throw CommandFailure("unexpected answer from engage2fad")
        case .fleet(let answer): throw FleetEnrollment.failure(answer, nothing: "nothing was listed")
        }
    }
}

extension Enroll.Remove {
    func runInFleet(_ context: EnrollContext) throws {
        let fleet = try FleetEnrollment(context)
        if !yes {
            guard isTerminal(STDIN_FILENO) else { throw CommandFailure("removing a device needs confirmation: add --yes") }
            guard let answer = readAnswer(prompt: "Remove '\(displayText(name, limit: 256))' on every host of the fleet? [y/N] "), ["y", "yes"].contains(answer.lowercased()) else {
                print("Nothing was removed.")
                return
            }
        }
        let proof = try FleetEnrollment.readProof("remove a device")
        switch try fleet.ask(EnrollRequest.remove(name: name, proof: proof)) {
        case .fleet(.done(let message)): print(displayText(message, limit: 500, escapingBackslashes: false))
        case .fleet(let answer): throw FleetEnrollment.failure(answer, nothing: "nothing was changed")
        case .enroll: throw CommandFailure("unexpected answer from engage2fad; nothing was changed")
        }
    }
}

extension Enroll.RecoveryCodes {
    func runInFleet(_ context: EnrollContext) throws {
        let fleet = try FleetEnrollment(context)
        // Whether a proof is needed is engage2fad's to say: ask without one only when nothing is linked.
        var proof: [UInt8] = []
        if case .enroll(.devices(_, total: let total, recoveryCodesLeft: let left, unusable: let unusable)) = try fleet.ask(EnrollRequest.list), total + left + unusable > 0 {
            proof = try FleetEnrollment.readProof("make new recovery codes")
        }
        switch try fleet.ask(EnrollRequest.recoveryCodes(proof: proof)) {
        case .enroll(.recoveryCodes(let codes, let replaced)):
            showCodes(codes, replaced: replaced)
        case .enroll: throw CommandFailure("unexpected answer from engage2fad; nothing was changed")
        case .fleet(let answer): throw FleetEnrollment.failure(answer, nothing: "nothing was changed")
        }
    }
}

extension Enroll.Status {
    /// The same decision as a login on this host: the directory's start date, devices and deadline, the
    /// local (or the fleet's) activation, this host's scope groups.
    func runInFleet(_ context: EnrollContext) throws {
        let fleet = try FleetEnrollment(context)
        let snapshot: FleetSnapshot
        switch try fleet.ask(EnrollRequest.status) {
        case .fleet(.snapshot(let read)): snapshot = read
        case .fleet(let answer): throw FleetEnrollment.failure(answer, nothing: "no status")
        case .enroll: throw CommandFailure("unexpected answer from engage2fad")
        }
        var config = context.config
        if let start = snapshot.startDate { config.startDate = start }
        var activation = activationState(configPath: context.configPath, config: config)
        if case .never = activation, let at = snapshot.activatedAt { activation = .active(ActivationRecord(activatedAt: at, recordedAt: at)) }
        decideAndPrint(context, config: config, activation: activation, enrollment: snapshot.enrollment, deadline: snapshot.deadline)
    }
}
