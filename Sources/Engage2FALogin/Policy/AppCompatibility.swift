/// Settings that common authenticator apps mishandle. The key URI is valid, but an app that ignores
/// `algorithm`, `digits` or `period` shows codes for the defaults (SHA1, 6 digits, 30 s) and every one
/// of them is refused; an issuer with URI delimiters breaks some apps' import. `engage2fa-admin check`
/// warns about each (at the setting's line), and a failed enrollment names them.
public struct AppCaveat: Equatable, Sendable {
    /// The policy key the caveat is about.
    public var key: String
    /// The setting as the policy writes it, e.g. `period = 60`.
    public var setting: String
    /// What goes wrong, naming the apps.
    public var problem: String

    public var message: String { setting + ": " + problem }
}

extension Config {
    /// The caveats of this policy's settings for new devices; empty for the defaults.
    public var appCaveats: [AppCaveat] {
        let parameters = newDeviceParameters
        let issuerHasDelimiter = issuer.utf8.contains { isIssuerDelimiter($0) }
        guard parameters.digits != 6 && parameters.digits != 8 || parameters.period != 30 || parameters.algorithm != .sha1 || issuerHasDelimiter else {
            return []
        }
        return unusualSettingCaveats(parameters)
    }

    /// The caveats, for a policy that has some. Optimized for size: the defaults (the usual policy) have none.
    @_optimize(size)
    private func unusualSettingCaveats(_ parameters: OTPParameters) -> [AppCaveat] {
        var caveats: [AppCaveat] = []
        if parameters.digits != 6 && parameters.digits != 8 {
            caveats.append(AppCaveat(key: "digits", setting: MessageText("digits = \(parameters.digits)").text, problem: "outside the Key Uri Format (6 or 8 digits); Google Authenticator and Microsoft Authenticator show 6-digit codes instead, which are refused"))
        }
        if parameters.period != 30 {
            let twoFAS: StaticString = [10, 30, 60, 90].contains(parameters.period) ? "" : "; 2FAS accepts only 10, 30, 60 or 90"
            caveats.append(AppCaveat(key: "period", setting: MessageText("period = \(parameters.period)").text, problem: MessageText("Google Authenticator ignores period and shows a new code every 30 seconds, which is refused\(twoFAS)").text))
        }
        if parameters.algorithm != .sha1 {
            caveats.append(AppCaveat(key: "algorithm", setting: MessageText("algorithm = \(parameters.algorithm.rawValue)").text, problem: "Google Authenticator on Android and Microsoft Authenticator ignore algorithm and compute SHA1 codes, which are refused"))
        }
        var delimiters: [UInt8] = []
        for byte in issuer.utf8 where isIssuerDelimiter(byte) && !delimiters.contains(byte) {
            delimiters.append(byte)
        }
        if !delimiters.isEmpty {
            var named: [UInt8] = []
            for (index, byte) in delimiters.enumerated() {
                if index > 0 { named.appendLiteral(", ") }
                named.append(UInt8(ascii: "'"))
                named.append(byte)
                named.append(UInt8(ascii: "'"))
            }
            caveats.append(AppCaveat(key: "issuer", setting: MessageText("issuer = \(displayText(issuer, limit: 64))").text, problem: MessageText("\(MessageText(bytes: named)) in the issuer break 2FAS's import of the QR code ('&', '?', '#' and '%' do)").text))
        }
        return caveats
    }

    /// For a user whose code was refused: the settings of this host's codes that apps may have ignored;
    /// empty when there are none.
    public var appCaveatsSentence: String {
        let settings = appCaveats.filter { !$0.key.spells("issuer") }.map { $0.setting }
        guard !settings.isEmpty else { return "" }
        return " This host's codes use " + settings.joined(separator: ", ")
            + ", which some apps ignore (Google Authenticator, Microsoft Authenticator): if yours shows codes of another kind, type the secret in by hand with these settings, or use an app that supports them."
    }
}

/// '&', '?', '#' and '%': the bytes of an issuer that break some apps' import.
private func isIssuerDelimiter(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: "&") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") || byte == UInt8(ascii: "%")
}
