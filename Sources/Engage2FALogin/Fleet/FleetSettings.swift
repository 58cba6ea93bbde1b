import CEngageSys

/// Where users' devices, replay and lockout state live: on this host, or in the fleet's LDAP directory.
public enum StoreKind: String, Equatable, Sendable {
    case local
    case ldap
}

/// The `store = ldap` keys of engage2fa.conf(5). The module never talks LDAP itself (it must not load
/// libldap): it asks this host's engage2fad over a root-only Unix socket, which reads these keys too.
public struct FleetSettings: Equatable, Sendable {
    public static let timeoutRange = 1...60
    public static let defaultSocketDirectory = "/run/engage2fa"

    public var store = StoreKind.local
    /// Tried in order; the first that answers is used.
    public var uris: [String] = []
    /// The DN below which engage2fa's entries live (e.g. ou=engage2fa,dc=example,dc=org).
    public var base = ""
    /// The host's identity; nil binds with SASL EXTERNAL (a TLS client certificate, or ldapi:// peer credentials).
    public var bindDN: String? = nil
    /// A root-only (0600) file holding the host's password.
    public var bindPasswordFile: String? = nil
    /// The CA certificates that sign the directory's certificate.
    public var caFile: String? = nil
    /// The host's TLS client certificate and its root-only (0600) key: with no ldap_bind_dn, the host
    /// binds with SASL EXTERNAL as the identity the directory maps the certificate to.
    public var certFile: String? = nil
    public var keyFile: String? = nil
    /// Seconds a login waits for the directory at most, all URIs together.
    public var timeoutSeconds = 3
    /// Where engage2fad's sockets are: login.socket (root only) and enroll.socket (every user).
    public var socketDirectory = FleetSettings.defaultSocketDirectory

    public init() {}

    public var loginSocketPath: String { socketDirectory + "/login.socket" }
    public var enrollSocketPath: String { socketDirectory + "/enroll.socket" }

    static let keys = ["store", "ldap_uri", "ldap_base", "ldap_bind_dn", "ldap_bind_password_file", "ldap_ca", "ldap_cert", "ldap_key", "ldap_timeout", "fleet_socket_dir"]

    /// Sets one key of `keys`; returns what was wrong, or nil.
    mutating func apply(key: String, value: String) -> String? {
        let word = ByteWord(key)
        switch word {
        case "store":
            guard let kind = value.spells("local") ? StoreKind.local : value.spells("ldap") ? .ldap : nil else { return quotingValue("store must be local or ldap, not '", value, "'") }
            store = kind
        case "ldap_uri":
            var parsed: [String] = []
            for piece in Array(value.utf8)[...].pieces(separatedBy: UInt8(ascii: " "), keepEmpty: false) {
                let uri = String(decoding: piece, as: UTF8.self)
                guard let problem = FleetSettings.uriProblem(uri) else { parsed.append(uri); continue }
                return problem
            }
            guard !parsed.isEmpty else { return "ldap_uri needs at least one ldap://, ldaps:// or ldapi:// URI" }
            uris = parsed
        case "ldap_base":
            guard !value.isEmpty, value.utf8.contains(UInt8(ascii: "=")) else { return "ldap_base must be a DN such as ou=engage2fa,dc=example,dc=org" }
            base = value
        case "ldap_bind_dn":
            guard value.utf8.contains(UInt8(ascii: "=")) else { return quotingValue("ldap_bind_dn must be a DN, not '", value, "'") }
            bindDN = value
        case "ldap_bind_password_file", "ldap_ca", "ldap_cert", "ldap_key", "fleet_socket_dir":
            // The key matched as bytes, so it is spelled as the message names it.
            guard bytesStart(value.utf8, with: "/") && !hasDotDotComponent(value) else { return key + " must be an absolute path without '..'" }
            switch word {
            case "ldap_bind_password_file": bindPasswordFile = value
            case "ldap_ca": caFile = value
            case "ldap_cert": certFile = value
            case "ldap_key": keyFile = value
            default: socketDirectory = value
            }
        case "ldap_timeout":
            guard let number = parseInteger(value.utf8), FleetSettings.timeoutRange.contains(Int(number)) else {
                return quotingValue("ldap_timeout must be a whole number of seconds from 1 to 60, not '", value, "'")
            }
            timeoutSeconds = Int(number)
        default:
            return "unknown key"
        }
        return nil
    }

    /// What the policy needs besides single keys once `store = ldap`; nil when complete.
    var incompleteness: String? {
        guard store == .ldap else { return nil }
        if uris.isEmpty { return "store = ldap needs ldap_uri" }
        if base.isEmpty { return "store = ldap needs ldap_base" }
        if bindDN != nil && bindPasswordFile == nil { return "ldap_bind_dn needs ldap_bind_password_file (or leave both out for SASL EXTERNAL)" }
        if (certFile == nil) != (keyFile == nil) { return "ldap_cert and ldap_key go together" }
        return nil
    }

    /// Why a URI cannot be used; nil when it can.
    static func uriProblem(_ uri: String) -> String? {
        // One pass over the bytes; a control character is named before a comma wherever each is.
        var hasComma = false
        for byte in uri.utf8 {
            guard byte > 0x20 && byte < 0x7F else { return quotingValue("ldap_uri: '", uri, "' has a space or control character") }
            if byte == UInt8(ascii: ",") { hasComma = true }
        }
        // libldap reads "a,b" as two URIs: the second would escape the TLS rule, which looks at the first.
        guard !hasComma else { return quotingValue("ldap_uri: '", uri, "' has a comma; separate several URIs with spaces") }
        guard bytesStart(uri.utf8, with: "ldap://") || bytesStart(uri.utf8, with: "ldaps://") || bytesStart(uri.utf8, with: "ldapi://") else {
            return quotingValue("ldap_uri: '", uri, "' must start with ldap://, ldaps:// or ldapi://")
        }
        return nil
    }

    /// Whether a plain ldap:// URI must be upgraded with StartTLS: everything but loopback addresses.
    public static func needsStartTLS(_ uri: String) -> Bool {
        let bytes = Array(uri.utf8)
        guard bytesStart(bytes, with: "ldap://") else { return false }
        let host = bytes.dropFirst(7).prefix { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "?") }
        let name: ArraySlice<UInt8>
        if host.first == UInt8(ascii: "[") {
            name = host.prefix { $0 != UInt8(ascii: "]") }.dropFirst()
        } else {
            name = host.prefix { $0 != UInt8(ascii: ":") }
        }
        if name.elementsEqual("::1".utf8) || bytesEqualIgnoringASCIICase(name, "localhost") { return false }
        if isIPv4Loopback(name) { return false }
        return true
    }
}

/// 127.x.y.z written as an address (a DNS name such as 127.example.org may resolve anywhere).
func isIPv4Loopback(_ name: some Collection<UInt8>) -> Bool {
    let parts = Array(name)[...].pieces(separatedBy: UInt8(ascii: "."), keepEmpty: true)
    guard parts.count == 4, parts[0].elementsEqual("127".utf8) else { return false }
    return parts.allSatisfy { part in
        (1...3).contains(part.count) && part.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && (parseInteger(part) ?? 256) <= 255
    }
}

/// `before`, `value` as shown (displayText, at most 64 bytes), then `after`: the messages that quote a
/// value are built by this one function, not by a string interpolation inlined at each.
@inline(never)
func quotingValue(_ before: String, _ value: String, _ after: String) -> String {
    before + displayText(value, limit: 64) + after
}
