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
        var caveats: [AppCaveat] = []
        let parameters = newDeviceParameters
        if parameters.digits != 6 && parameters.digits != 8 {
            caveats.append(AppCaveat(key: "digits", setting: "digits = \(parameters.digits)", problem: "outside the Key Uri Format (6 or 8 digits); Google Authenticator and Microsoft Authenticator show 6-digit codes instead, which are refused"))
        }
        if parameters.period != 30 {
            let twoFAS = [10, 30, 60, 90].contains(parameters.period) ? "" : "; 2FAS accepts only 10, 30, 60 or 90"
            caveats.append(AppCaveat(key: "period", setting: "period = \(parameters.period)", problem: "Google Authenticator ignores period and shows a new code every 30 seconds, which is refused\(twoFAS)"))
        }
        if parameters.algorithm != .sha1 {
            caveats.append(AppCaveat(key: "algorithm", setting: "algorithm = \(parameters.algorithm.rawValue)", problem: "Google Authenticator on Android and Microsoft Authenticator ignore algorithm and compute SHA1 codes, which are refused"))
        }
        var delimiters: [UInt8] = []
        for byte in issuer.utf8 where [UInt8(ascii: "&"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "%")].contains(byte) && !delimiters.contains(byte) {
            delimiters.append(byte)
        }
        if !delimiters.isEmpty {
            let named = delimiters.map { "'" + String(decoding: [$0], as: UTF8.self) + "'" }.joined(separator: ", ")
            caveats.append(AppCaveat(key: "issuer", setting: "issuer = \(displayText(issuer, limit: 64))", problem: "\(named) in the issuer break 2FAS's import of the QR code ('&', '?', '#' and '%' do)"))
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
