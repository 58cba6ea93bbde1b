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
        func absolutePath() -> String? {
            bytesStart(value.utf8, with: "/") && !hasDotDotComponent(value) ? value : nil
        }
        switch ByteWord(key) {
        case "store":
            guard let kind = value.spells("local") ? StoreKind.local : value.spells("ldap") ? .ldap : nil else { return "store must be local or ldap, not '\(displayText(value, limit: 64))'" }
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
            guard value.utf8.contains(UInt8(ascii: "=")) else { return "ldap_bind_dn must be a DN, not '\(displayText(value, limit: 64))'" }
            bindDN = value
        case "ldap_bind_password_file":
            guard let path = absolutePath() else { return "ldap_bind_password_file must be an absolute path without '..'" }
            bindPasswordFile = path
        case "ldap_ca":
            guard let path = absolutePath() else { return "ldap_ca must be an absolute path without '..'" }
            caFile = path
        case "ldap_cert":
            guard let path = absolutePath() else { return "ldap_cert must be an absolute path without '..'" }
            certFile = path
        case "ldap_key":
            guard let path = absolutePath() else { return "ldap_key must be an absolute path without '..'" }
            keyFile = path
        case "ldap_timeout":
            guard let number = parseInteger(value.utf8), FleetSettings.timeoutRange.contains(Int(number)) else {
                return "ldap_timeout must be a whole number of seconds from 1 to 60, not '\(displayText(value, limit: 64))'"
            }
            timeoutSeconds = Int(number)
        case "fleet_socket_dir":
            guard let path = absolutePath() else { return "fleet_socket_dir must be an absolute path without '..'" }
            socketDirectory = path
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
        let bytes = Array(uri.utf8)
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return "ldap_uri: '\(displayText(uri, limit: 64))' has a space or control character" }
        // libldap reads "a,b" as two URIs: the second would escape the TLS rule, which looks at the first.
        guard !bytes.contains(UInt8(ascii: ",")) else {
            return "ldap_uri: '\(displayText(uri, limit: 64))' has a comma; separate several URIs with spaces"
        }
        guard bytesStart(bytes, with: "ldap://") || bytesStart(bytes, with: "ldaps://") || bytesStart(bytes, with: "ldapi://") else {
            return "ldap_uri: '\(displayText(uri, limit: 64))' must start with ldap://, ldaps:// or ldapi://"
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
