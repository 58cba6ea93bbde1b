// What engage2fad does for engage2fa-enroll: any user may connect; SO_PEERCRED says which user is asking,
// and only that user's devices are touched. The secret is made here (getrandom), the code checked here,
// and the device written with the host's credentials: the user's command never holds them. A user who
// has a device adds another only with a current code from an existing device, consumed centrally like a
// login's (and counted like one when wrong): a password alone never adds a device.

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

    init(fleet: FleetService, uid: uid_t) {
        self.fleet = fleet
        self.account = Account.lookup(uid: uid)
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
        switch devices(of: account) {
        case .success(let (user, read)):
            if let refusal = unusableDevices(user) { return .success(refusal) }
            file = read
        case .failure(let failure): return .failure(failure)
        }
        if !file.devices.isEmpty {
            guard !existingCode.isEmpty else {
                return .success(.failed("you already have a device: a code from one of them is needed to link another; nothing was saved"))
            }
            switch fleet.check(user: account.name, typed: existingCode, devicesOnly: true) {
            case .success(.accepted): break
            case .success(.locked(let remaining)):
                return .success(.failed("too many wrong codes: try again in \((remaining + 59) / 60) minutes; nothing was saved"))
            case .success(.replayed):
                return .success(.failed("that code from your existing device was already used: wait for the next one; nothing was saved"))
            case .success:
                return .success(.failed("the code from your existing device is not right; nothing was saved"))
            case .failure(let failure): return .failure(failure)
            }
        }
        let device: Device
        do { device = try file.addDevice(name: pending.name, secret: pending.secret, parameters: pending.parameters, now: now, verifiedStep: step) } catch {
            return .success(.failed("\(error); nothing was saved"))
        }
        return fleet.addDevice(device, user: account.name, first: file.devices.count == 1).map { _ in
            .done("Linked '\(device.name)'. You have \(file.devices.count) device\(file.devices.count == 1 ? "" : "s") on every host of the fleet.")
        }
    }
}
