// What engage2fad does for engage2fa-enroll: any user may connect; SO_PEERCRED says which user is asking,
// and only that user's devices are touched. The secret is made here (getrandom), the code checked here,
// and the device written with the host's credentials: the user's command never holds them. A user who
// has a device adds another only with a current code from an existing device, consumed centrally like a
// login's (and counted like one when wrong): a password alone never adds a device. Nor does it take one
// away or make recovery codes for a user who has a device or codes: removing a device and replacing the
// recovery codes need a current code from a device (or a recovery code), consumed centrally too, so that
// a password-only attacker cannot clear the way for a "first" device of their own.

import CEngageSys
import Engage2FADirectory
import Engage2FALogin
import Engage2FAManagement
import Glibc

final class EnrollService {
    let fleet: FleetService
    let account: Account?
    /// The device offered by enroll-begin, until enroll-confirm (this connection only).
    private var pending: (name: String, secret: [UInt8], parameters: OTPParameters)? = nil
    /// Whether the last proof checked was a recovery code (then consumed).
    private var usedRecoveryCode = false

    init(fleet: FleetService, uid: uid_t) {
        self.fleet = fleet
        self.account = Account.lookup(uid: uid)
    }

    /// One of the enrollment socket's own requests: the answer line.
    func answer(_ request: EnrollRequest) -> [UInt8] {
        guard let account else { return FleetAnswer.failed("your user id is not in the user database").line }
        let result: Result<[UInt8], FleetService.FleetFailure>
        switch request {
        case .list: result = list(account: account).map(\.line)
        case .status: result = fleet.snapshot(user: account.name).map(\.line)
        case .remove(let name, let proof): result = remove(account: account, name: name, proof: proof).map(\.line)
        case .recoveryCodes(let proof): result = replaceRecoveryCodes(account: account, proof: proof)
        }
        switch result {
        case .success(let line): return line
        case .failure(let failure): return failure.answer.line
        }
    }

    func answer(_ request: FleetRequest) -> FleetAnswer {
        guard let account else { return .failed("your user id is not in the user database") }
        let result: Result<FleetAnswer, FleetService.FleetFailure>
        switch request {
        case .enrollBegin(let name): result = begin(account: account, name: name)
        case .enrollConfirm(let code, let existing): result = confirm(account: account, code: code, existingCode: existing)
        default: return .failed("not an enrollment request")
        }
        switch result {
        case .success(let answer): return answer
        case .failure(let failure): return failure.answer
        }
    }

    private func devices(of account: Account) -> Result<(DirectoryUser, DeviceFile), FleetService.FleetFailure> {
        let directory: Directory
        switch fleet.connected() {
        case .success(let open): directory = open
        case .failure(let failure): return .failure(failure)
        }
        return fleet.readUser(account.name, on: directory).map { ($0, DeviceFile(devices: $0.devices.map(\.device))) }
    }

    /// A device entry that is there but unusable still is a device: a password alone must not add another
    /// beside it, and no code can come from it, so only an administrator can sort it out.
    private func unusableDevices(_ user: DirectoryUser) -> FleetAnswer? {
        guard user.devices.isEmpty, !user.problems.isEmpty else { return nil }
        for problem in user.problems { serviceLog(LOG_WARNING, "enrollment of \(displayText(user.dn, limit: 200)): \(problem)") }
        return .failed("a device of yours in the directory cannot be used (see the system log): ask an administrator to remove or repair it; nothing was saved")
    }

    private func begin(account: Account, name: String) -> Result<FleetAnswer, FleetService.FleetFailure> {
        let file: DeviceFile
        switch devices(of: account) {
        case .success(let (user, read)):
            if let refusal = unusableDevices(user) { return .success(refusal) }
            file = read
        case .failure(let failure): return .failure(failure)
        }
        let validName: String
        do { validName = try file.validatedNewName(name) } catch { return .success(.failed("\(error)")) }
        let secret: [UInt8]
        do { secret = try newSecret() } catch { return .success(.failed("no random secret: \(error)")) }
        let parameters = fleet.config.newDeviceParameters
        pending = (validName, secret, parameters)
        return .success(.enrollment(secret: secret, parameters: parameters, issuer: fleet.issuer(), existingDevices: file.devices.count))
    }

    private func confirm(account: Account, code: [UInt8], existingCode: [UInt8]) -> Result<FleetAnswer, FleetService.FleetFailure> {
        guard let pending else { return .success(.failed("no enrollment was started on this connection")) }
        self.pending = nil
        let now = fleet.now()
        guard case .accepted(let step) = verifyTOTP(code: code, secret: pending.secret, parameters: pending.parameters, now: now,
                                                    window: fleet.config.window, lastAcceptedStep: nil) else {
            return .success(.failed("that code is not right: check that you scanned this new entry and that the phone's clock is correct; '\(pending.name)' was not linked"))
        }
        // Read again: a device linked meanwhile (on any host) needs the proof as much as one linked before.
        var file: DeviceFile
        let unusedRecoveryCodes: Int
        switch devices(of: account) {
        case .success(let (user, read)):
            if let refusal = unusableDevices(user) { return .success(refusal) }
            file = read
            unusedRecoveryCodes = user.recoveryCodesLeft
        case .failure(let failure): return .failure(failure)
        }
        // Unused recovery codes are a second factor as much as a device: a user who has only codes (their
        // last device removed, or codes a password-only attacker made before the first device) proves one.
        let proofNeeded = !file.devices.isEmpty || unusedRecoveryCodes > 0
        if proofNeeded {
            guard !existingCode.isEmpty else {
                if file.devices.isEmpty {
                    return .success(.failed("you have \(unusedRecoveryCodes) unused recovery code\(unusedRecoveryCodes == 1 ? "" : "s") and no device: one of them is needed to link a device (if you never made any, someone who knows your password may have: ask an administrator to reset you); nothing was saved"))
                }
                return .success(.failed("you already have a device: a code from one of them is needed to link another; nothing was saved"))
            }
            switch refusal(ofProof: existingCode, account: account, devicesOnly: !file.devices.isEmpty, nothing: "nothing was saved") {
            case .success(nil): break
            case .success(let refused?): return .success(refused)
            case .failure(let failure): return .failure(failure)
            }
        }
        let device: Device
        do { device = try file.addDevice(name: pending.name, secret: pending.secret, parameters: pending.parameters, now: now, verifiedStep: step) } catch {
            return .success(.failed("\(error); nothing was saved"))
        }
        // Without a proof the provider must also show no recovery codes (this copy may be behind).
        return fleet.addDevice(device, user: account.name, first: file.devices.count == 1, withoutProof: !proofNeeded).map { _ in
            .done("Linked '\(device.name)'. You have \(file.devices.count) device\(file.devices.count == 1 ? "" : "s") on every host of the fleet.")
        }
    }

    /// Checks a proof of possession like a login's code (the replay step or the recovery hash consumed at
    /// the provider, a wrong one counted toward the fleet's lockout): nil when it is good, else the refusal.
    private func refusal(ofProof proof: [UInt8], account: Account, devicesOnly: Bool, nothing: String) -> Result<FleetAnswer?, FleetService.FleetFailure> {
        switch fleet.check(user: account.name, typed: proof, devicesOnly: devicesOnly) {
        case .success(.accepted): return .success(nil)
        case .success(.recovery):
            usedRecoveryCode = true
            return .success(nil)
        case .success(.locked(let remaining)):
            return .success(.failed("too many wrong codes: try again in \((remaining + 59) / 60) minutes; \(nothing)"))
        case .success(.lockedNow):
            return .success(.failed("too many wrong codes: you are locked out for a while; \(nothing)"))
        case .success(.replayed):
            return .success(.failed("that code was already used: wait for the next one; \(nothing)"))
        case .success:
            return .success(.failed("the code from your device is not right; \(nothing)"))
        case .failure(let failure): return .failure(failure)
        }
    }

    private func list(account: Account) -> Result<EnrollAnswer, FleetService.FleetFailure> {
        devices(of: account).map { user, _ in
            for problem in user.problems { serviceLog(LOG_WARNING, "listing of \(displayText(user.dn, limit: 200)): \(problem)") }
            let listed = user.devices.map { ListedDevice(name: $0.device.name, addedAt: max(0, $0.device.addedAt), parameters: $0.device.parameters) }
            return .devices(listed, total: listed.count, recoveryCodesLeft: user.recoveryCodesLeft, unusable: user.problems.count)
        }
    }

    /// Unlinks one device, fleet-wide, after a code from one of the user's devices or a recovery code.
    private func remove(account: Account, name: String, proof: [UInt8]) -> Result<FleetAnswer, FleetService.FleetFailure> {
        let user: DirectoryUser
        let file: DeviceFile
        switch devices(of: account) {
        case .success(let (read, readFile)): (user, file) = (read, readFile)
        case .failure(let failure): return .failure(failure)
        }
        guard let wanted = file.device(named: name), let stored = user.devices.first(where: { $0.device.id == wanted.id }) else {
            let names = user.devices.map { "'\(displayText($0.device.name, limit: 64))'" }.joined(separator: ", ")
            if user.devices.isEmpty, let refused = unusableDevices(user) { return .success(refused) }
            return .success(.failed("there is no device named '\(displayText(name, limit: 64))'" + (names.isEmpty ? " (no devices are linked)" : " (linked: \(names))") + "; nothing was changed"))
        }
        guard !proof.isEmpty else {
            return .success(.failed("removing a device needs a current code from one of your devices (or a recovery code); nothing was changed"))
        }
        switch refusal(ofProof: proof, account: account, devicesOnly: false, nothing: "nothing was changed") {
        case .success(nil): break
        case .success(let refused?): return .success(refused)
        case .failure(let failure): return .failure(failure)
        }
        let directory: Directory
        switch fleet.connected() {
        case .success(let open): directory = open
        case .failure(let failure): return .failure(failure)
        }
        let code = directory.delete(dn: stored.dn)
        if code == LDAPResult.noSuchObject {
            return .success(.failed("'\(displayText(stored.device.name, limit: 64))' was removed meanwhile; nothing was changed"))
        }
        guard code == LDAPResult.success else { return .failure(.failed("delete \(stored.dn): \(directory.describe(code))")) }
        serviceLog(LOG_NOTICE, "user \(displayText(account.name, limit: 64)) removed device '\(displayText(stored.device.name, limit: 64))' (\(displayText(stored.dn, limit: 200)))")
        let left = user.devices.count - 1
        return .success(.done("Removed '\(stored.device.name)' on every host of the fleet." + (left == 0 ? " No devices are linked now." : "")))
    }

    /// New recovery codes in one modify (salt, iterations and hashes together, so a login never sees a
    /// mix); a user who has a device or unused codes proves possession first.
    private func replaceRecoveryCodes(account: Account, proof: [UInt8]) -> Result<[UInt8], FleetService.FleetFailure> {
        let user: DirectoryUser
        switch devices(of: account) {
        case .success(let (read, _)): user = read
        case .failure(let failure): return .failure(failure)
        }
        let unused = user.recoveryCodesLeft
        usedRecoveryCode = false
        // Codes stand in for a device, so they are made with one: a user with neither has nothing to prove
        // with, and codes a password-only attacker could make then would outlive the user's first device.
        guard !user.devices.isEmpty || !user.problems.isEmpty || unused > 0 else {
            return .success(FleetAnswer.failed("recovery codes stand in for a linked device: link one first (engage2fa-enroll add), then make them with a code from it; nothing was changed").line)
        }
        guard !proof.isEmpty else {
            return .success(FleetAnswer.failed("new recovery codes need a current code from one of your devices (or one of your recovery codes); nothing was changed").line)
        }
        switch refusal(ofProof: proof, account: account, devicesOnly: false, nothing: "nothing was changed") {
        case .success(nil): break
        case .success(let refused?): return .success(refused.line)
        case .failure(let failure): return .failure(failure)
        }
        let generated: (codes: [String], stored: RecoveryCodes)
        do { generated = try RecoveryCodes.generate(now: fleet.now()) } catch {
            return .success(FleetAnswer.failed("no random recovery codes: \(error); nothing was changed").line)
        }
        let directory: Directory
        switch fleet.connected() {
        case .success(let open): directory = open
        case .failure(let failure): return .failure(failure)
        }
        if case .failure(let failure) = directory.ensureUser(account.name, layout: fleet.layout) { return .failure(.failed(failure.text)) }
        let stored = generated.stored
        let code = directory.modify(dn: user.dn, [
            .replace("e2faRecoverySalt", [Array(hexString(stored.salt).utf8)]),
            .replace("e2faRecoveryIterations", [Array(String(stored.iterations).utf8)]),
            .replace("e2faRecoveryHash", stored.hashes.map { Array(hexString($0).utf8) }),
        ])
        guard code == LDAPResult.success else { return .failure(.failed("modify \(user.dn): \(directory.describe(code))")) }
        serviceLog(LOG_NOTICE, "user \(displayText(account.name, limit: 64)) made new recovery codes (\(unused) unused ones replaced)")
        // A recovery code given as the proof was one of the unused ones, and is used now.
        return .success(EnrollAnswer.recoveryCodes(generated.codes, replaced: max(0, unused - (usedRecoveryCode ? 1 : 0))).line)
    }
}
