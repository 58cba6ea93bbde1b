import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement
#if canImport(Glibc)
import Glibc
#endif

extension Enroll.Add {
    /// Fleet mode: engage2fad makes the secret, checks the codes and writes the device to the directory
    /// with the host's credentials; this command only shows and asks. One device, linked on every host.
    func runInFleet(_ context: EnrollContext) throws {
        let fleet = try FleetEnrollment(context)
        let interactive = isTerminal(STDIN_FILENO)
        let deviceName = try chooseName(devices: DeviceFile(), tries: interactive ? 3 : 1)
        let offered = try fleet.ask(.enrollBegin(name: deviceName))
        guard case .enrollment(let secret, let parameters, let issuer, let existing) = offered else { throw FleetEnrollment.failure(offered) }
        // The fleet's label (label = %u@%f unless set): every host makes the same entry in the app.
        let account = context.config.accountLabel(user: context.account.name, host: hostName())
        try show(OTPAuthURI(issuer: issuer, account: account, secret: secret, parameters: parameters), name: deviceName)
        guard let code = readAnswer(prompt: "Verification code: ") else {
            throw CommandFailure("no code was entered, so '\(deviceName)' was not linked; nothing was saved")
        }
        // A proof comes from a linked device, or, for a user who has only unused recovery codes, from one of them.
        var proofPrompt: String? = existing > 0 ? "Code from a device you already linked: " : nil
        if existing == 0, case .enroll(.devices(_, _, let codesLeft, _)) = try fleet.ask(.list), codesLeft > 0 {
            proofPrompt = "You have no device but \(codesLeft) unused recovery code\(codesLeft == 1 ? "" : "s"): type one of them: "
        }
        var proof = ""
        if let proofPrompt {
            guard let answer = readAnswer(prompt: proofPrompt) else {
                throw CommandFailure("a code from a device you already linked (or, without a device, a recovery code) is needed; nothing was saved")
            }
            proof = answer
        }
        let outcome = try fleet.ask(.enrollConfirm(code: Array(code.utf8), existingCode: Array(proof.utf8)))
        guard case .done(let message) = outcome else { throw FleetEnrollment.failure(outcome) }
        print(displayText(message, limit: 500, escapingBackslashes: false))
    }
}
