import Engage2FACommandSupport
import Engage2FALogin
#if canImport(Glibc)
import Glibc
#endif

extension Enroll.Add {
    /// Fleet mode: engage2fad makes the secret, checks the codes and writes the device to the directory
    /// with the host's credentials; this command only shows and asks. One device, linked on every host.
    func runInFleet(_ context: EnrollContext) throws {
        guard context.account.uid == getuid() else {
            throw CommandFailure("in fleet mode (store = ldap) each user links their own devices: run engage2fa-enroll as \(context.shownUser)")
        }
        let settings = context.config.fleet
        let connection: FleetConnection
        do {
            connection = try FleetConnection(path: settings.enrollSocketPath, budgetMilliseconds: Int64(settings.timeoutSeconds) * 1000 + 1000)
        } catch {
            throw CommandFailure("\(error.description); is engage2fad running? (systemctl status engage2fad-enroll.socket)")
        }
        func ask(_ request: FleetRequest) throws -> FleetAnswer {
            do { return try connection.ask(request) } catch { throw CommandFailure(error.description) }
        }
        let interactive = isTerminal(STDIN_FILENO)
        let deviceName = try chooseName(devices: DeviceFile(), tries: interactive ? 3 : 1)
        let offered = try ask(.enrollBegin(name: deviceName))
        guard case .enrollment(let secret, let parameters, let issuer, let existing) = offered else { throw failure(offered) }
        try show(OTPAuthURI(issuer: issuer, account: context.account.name, secret: secret, parameters: parameters), name: deviceName)
        guard let code = readAnswer(prompt: "Verification code: ") else {
            throw CommandFailure("no code was entered, so '\(deviceName)' was not linked; nothing was saved")
        }
        var proof = ""
        if existing > 0 {
            guard let answer = readAnswer(prompt: "Code from a device you already linked: ") else {
                throw CommandFailure("a code from a device you already linked is needed; nothing was saved")
            }
            proof = answer
        }
        let outcome = try ask(.enrollConfirm(code: Array(code.utf8), existingCode: Array(proof.utf8)))
        guard case .done(let message) = outcome else { throw failure(outcome) }
        print(displayText(message, limit: 500, escapingBackslashes: false))
    }

    private func failure(_ answer: FleetAnswer) -> CommandFailure {
        switch answer {
        case .failed(let reason): CommandFailure(displayText(reason, limit: 500, escapingBackslashes: false))
        case .unreachable(let reason): CommandFailure("the directory cannot be reached (\(displayText(reason, limit: 300, escapingBackslashes: false))); nothing was saved")
        default: CommandFailure("unexpected answer from engage2fad; nothing was saved")
        }
    }
}
