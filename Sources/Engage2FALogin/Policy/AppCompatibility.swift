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
    /// The caveats of this policy's settings for new devices; empty for the defaults. Its messages are built
    /// by `message` (one function, not an interpolation per site) and it is optimised for size: `check` and a
    /// failed enrollment ask, a login does not.
    @_optimize(size)
    public var appCaveats: [AppCaveat] {
        var caveats: [AppCaveat] = []
        let parameters = newDeviceParameters
        if parameters.digits != 6 && parameters.digits != 8 {
            caveats.append(AppCaveat(key: "digits", setting: message("digits = ", decimal(Int64(parameters.digits)), ""), problem: "outside the Key Uri Format (6 or 8 digits); Google Authenticator and Microsoft Authenticator show 6-digit codes instead, which are refused"))
        }
        if parameters.period != 30 {
            let twoFAS: StaticString = switch parameters.period { case 10, 30, 60, 90: ""; default: "; 2FAS accepts only 10, 30, 60 or 90" }
            caveats.append(AppCaveat(key: "period", setting: message("period = ", decimal(Int64(parameters.period)), ""), problem: message("Google Authenticator ignores period and shows a new code every 30 seconds, which is refused", "", twoFAS)))
        }
        if parameters.algorithm != .sha1 {
            caveats.append(AppCaveat(key: "algorithm", setting: message("algorithm = ", parameters.algorithm.rawValue, ""), problem: "Google Authenticator on Android and Microsoft Authenticator ignore algorithm and compute SHA1 codes, which are refused"))
        }
        var named = ByteWriter(capacity: 32)
        var seen: UInt8 = 0  // a bit for each delimiter named already
        for byte in issuer.utf8 {
            let bit: UInt8
            switch byte {
            case UInt8(ascii: "&"): bit = 1
            case UInt8(ascii: "?"): bit = 2
            case UInt8(ascii: "#"): bit = 4
            case UInt8(ascii: "%"): bit = 8
            default: continue
            }
            guard seen & bit == 0 else { continue }
            seen |= bit
            if !named.bytes.isEmpty { named.write(", ") }
            named.write("'")
            named.bytes.append(byte)
            named.write("'")
        }
        if !named.bytes.isEmpty {
            caveats.append(AppCaveat(key: "issuer", setting: message("issuer = ", displayText(issuer, limit: 64), ""), problem: message("", named.text, " in the issuer break 2FAS's import of the QR code ('&', '?', '#' and '%' do)")))
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
