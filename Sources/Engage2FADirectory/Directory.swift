// engage2fad's and engage2fa-admin's access to the fleet's directory (never the PAM module's).
// The directory through OpenLDAP's client library: one connection to the first URI that answers within
// the time allowed, bound with the host's credentials, TLS checked unless the URI is ldapi:// or loopback.

import CLDAP
import Engage2FALogin
import Glibc

/// One entry of a search: its DN and its attributes (names lower-cased).
public struct DirectoryEntry: Sendable {
    public var dn: String
    public var attributes: [String: [[UInt8]]]

    public func first(_ name: String) -> [UInt8]? { attributes[name.lowercased()]?.first }
    public func text(_ name: String) -> String? { first(name).map { String(decoding: $0, as: UTF8.self) } }
    public func integer(_ name: String) -> Int64? { text(name).flatMap { Int64($0) } }
    public func values(_ name: String) -> [[UInt8]] { attributes[name.lowercased()] ?? [] }
}

public enum DirectoryChange: Sendable {
    case add(String, [[UInt8]])
    case delete(String, [[UInt8]])
    case replace(String, [[UInt8]])
    /// RFC 4525: adds `by` to an integer attribute at the server (noSuchAttribute when it is absent).
    case increment(String, Int64)
}

/// LDAP result codes this service acts on.
public enum LDAPResult {
    public static let success: Int32 = 0
    public static let noSuchAttribute: Int32 = 16
    public static let constraintViolation: Int32 = 19
    public static let attributeOrValueExists: Int32 = 20
    public static let noSuchObject: Int32 = 32
    public static let alreadyExists: Int32 = 68

    /// The compare-and-swap lost: the old value was gone, or someone added first to a single-valued attribute.
    public static func lostRace(_ code: Int32) -> Bool { code == noSuchAttribute || code == constraintViolation || code == attributeOrValueExists }
}

public final class Directory {
    let handle: OpaquePointer
    public let uri: String
    /// How long one operation may take; a spare's is set again when a login takes it (SpareConnection.swift).
    var timeoutMilliseconds: Int64

    private init(handle: OpaquePointer, uri: String, timeoutMilliseconds: Int64) {
        self.handle = handle
        self.uri = uri
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    deinit { ldap_unbind_ext_s(handle, nil, nil) }

    /// Tries the URIs in order within `budgetMilliseconds` all together; the reason names every URI tried.
    public static func connect(settings: FleetSettings, budgetMilliseconds: Int64) -> Result<Directory, ConnectFailure> {
        if let spare = takeSpare(settings: settings, budgetMilliseconds: budgetMilliseconds) { return .success(spare) }
        let password: [UInt8]?
        if let file = settings.bindPasswordFile {
            do {
                // Root-only: whoever reads it is this host to the directory.
                let bytes = try readTrustedFile(file, owners: [0], maxSize: 4096)
                password = Array(bytes.prefix { $0 != 0x0A && $0 != 0x0D })
            } catch {
                return .failure(ConnectFailure(reason: "ldap_bind_password_file: \(error)"))
            }
        } else {
            password = nil
        }
        if let keyFile = settings.keyFile {
            // Root-only too: whoever holds it is this host to the directory (libldap reads it by its path).
            do { _ = try readTrustedFile(keyFile, owners: [0], maxSize: 65536) } catch {
                return .failure(ConnectFailure(reason: "ldap_key: \(error)"))
            }
        }
        let started = monotonicNow()
        var problems: [String] = []
        for uri in settings.uris {
            let left = budgetMilliseconds - (monotonicNow() - started)
            guard left > 50 else { problems.append("\(uri): no time left"); continue }
            switch open(uri: uri, settings: settings, password: password, timeoutMilliseconds: left) {
            case .success(let directory): return .success(directory)
            case .failure(let problem): problems.append("\(uri): \(problem.reason)")
            }
        }
        return .failure(ConnectFailure(reason: problems.joined(separator: "; ")))
    }

    /// The CA and client certificate files the library-wide TLS context was made with, nil before.
    nonisolated(unsafe) private static var preparedTLSFiles: [String?]? = nil

    private static func tlsFiles(_ settings: FleetSettings) -> [String?] { [settings.caFile, settings.certFile, settings.keyFile] }

    /// Loads and initialises libldap once (its SASL plugins, the TLS context with certificate checking
    /// demanded), so that a process forked for each connection inherits it instead of redoing it: that
    /// is most of what a login would otherwise cost.
    public static func prepareLibrary(settings: FleetSettings) {
        var version: Int32 = LDAP_VERSION3
        ldap_set_option(nil, LDAP_OPT_PROTOCOL_VERSION, &version)
        demandCheckedTLS(nil, settings: settings)
        var handle: OpaquePointer? = nil
        if ldap_initialize(&handle, "ldapi:///") == LDAP_SUCCESS, let handle { ldap_unbind_ext_s(handle, nil, nil) }
        preparedTLSFiles = tlsFiles(settings)
    }

    /// A TLS context that demands a valid certificate, from `ldap_ca` or the system's CAs, and presents
    /// the host's client certificate if it has one: for one handle, or (nil) for the library's default.
    private static func demandCheckedTLS(_ handle: OpaquePointer?, settings: FleetSettings) {
        var demand: Int32 = LDAP_OPT_X_TLS_DEMAND
        ldap_set_option(handle, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand)
        if let caFile = settings.caFile {
            _ = caFile.withCString { ldap_set_option(handle, LDAP_OPT_X_TLS_CACERTFILE, $0) }
        }
        if let certFile = settings.certFile, let keyFile = settings.keyFile {
            _ = certFile.withCString { ldap_set_option(handle, LDAP_OPT_X_TLS_CERTFILE, $0) }
            _ = keyFile.withCString { ldap_set_option(handle, LDAP_OPT_X_TLS_KEYFILE, $0) }
        }
        var newContext: Int32 = 0
        ldap_set_option(handle, LDAP_OPT_X_TLS_NEWCTX, &newContext)
    }

    public struct ConnectFailure: Error { public var reason: String }

    private static func open(uri: String, settings: FleetSettings, password: [UInt8]?, timeoutMilliseconds: Int64) -> Result<Directory, ConnectFailure> {
        var handle: OpaquePointer? = nil
        guard ldap_initialize(&handle, uri) == LDAP_SUCCESS, let handle else { return .failure(ConnectFailure(reason: "cannot use this URI")) }
        var version: Int32 = LDAP_VERSION3
        ldap_set_option(handle, LDAP_OPT_PROTOCOL_VERSION, &version)
        var timeout = timeval(tv_sec: Int(timeoutMilliseconds / 1000), tv_usec: Int(timeoutMilliseconds % 1000) * 1000)
        ldap_set_option(handle, LDAP_OPT_NETWORK_TIMEOUT, &timeout)
        ldap_set_option(handle, LDAP_OPT_TIMEOUT, &timeout)
        ldap_set_option(handle, LDAP_OPT_REFERRALS, nil)  // LDAP_OPT_OFF: writes go where the server chains them
        if preparedTLSFiles.map({ $0 != tlsFiles(settings) }) ?? true {
            // Not the library-wide TLS context prepared before (see prepareLibrary): one for this handle.
            demandCheckedTLS(handle, settings: settings)
        }
        let directory = Directory(handle: handle, uri: uri, timeoutMilliseconds: timeoutMilliseconds)
        if FleetSettings.needsStartTLS(uri) {
            let code = ldap_start_tls_s(handle, nil, nil)
            guard code == LDAP_SUCCESS else {
                return .failure(ConnectFailure(reason: "StartTLS: \(directory.describeWithDiagnostic(code))" + certificateVerdict(uri: uri, settings: settings, timeoutMilliseconds: timeoutMilliseconds)))
            }
        }
        let code: Int32
        if let dn = settings.bindDN, var password {
            code = password.withUnsafeMutableBytes { bytes in
                var credential = berval(bv_len: ber_len_t(bytes.count), bv_val: bytes.baseAddress?.assumingMemoryBound(to: CChar.self))
                return ldap_sasl_bind_s(handle, dn, nil, &credential, nil, nil, nil)
            }
            for index in password.indices { password[index] = 0 }
        } else {
            // An empty initial response (no authorization identity), not none: with bv_val nil libldap
            // sends no credentials, and the server answers saslBindInProgress, waiting for them.
            var nothing: CChar = 0
            code = withUnsafeMutablePointer(to: &nothing) { pointer in
                var empty = berval(bv_len: 0, bv_val: pointer)
                return ldap_sasl_bind_s(handle, nil, "EXTERNAL", &empty, nil, nil, nil)
            }
        }
        guard code == LDAP_SUCCESS else {
            let verdict = code == LDAP_SERVER_DOWN && uri.hasPrefix("ldaps://")
                ? certificateVerdict(uri: uri, settings: settings, timeoutMilliseconds: timeoutMilliseconds) : ""
            return .failure(ConnectFailure(reason: "bind: \(directory.describeWithDiagnostic(code))" + verdict))
        }
        return .success(directory)
    }

    /// Why a TLS connection failed, which libldap (over GnuTLS) does not say: a second handshake that
    /// accepts any certificate and sends nothing else (no bind, no credential) tells a rejected
    /// certificate from a server that offers no TLS or is not there.
    private static func certificateVerdict(uri: String, settings: FleetSettings, timeoutMilliseconds: Int64) -> String {
        var handle: OpaquePointer? = nil
        guard ldap_initialize(&handle, uri) == LDAP_SUCCESS, let handle else { return "" }
        defer { ldap_unbind_ext_s(handle, nil, nil) }
        var version: Int32 = LDAP_VERSION3
        ldap_set_option(handle, LDAP_OPT_PROTOCOL_VERSION, &version)
        var timeout = timeval(tv_sec: Int(timeoutMilliseconds / 1000), tv_usec: Int(timeoutMilliseconds % 1000) * 1000)
        ldap_set_option(handle, LDAP_OPT_NETWORK_TIMEOUT, &timeout)
        ldap_set_option(handle, LDAP_OPT_TIMEOUT, &timeout)
        var allow: Int32 = LDAP_OPT_X_TLS_ALLOW
        ldap_set_option(handle, LDAP_OPT_X_TLS_REQUIRE_CERT, &allow)
        var newContext: Int32 = 0
        ldap_set_option(handle, LDAP_OPT_X_TLS_NEWCTX, &newContext)
        let handshake = FleetSettings.needsStartTLS(uri) ? ldap_start_tls_s(handle, nil, nil) : ldap_connect(handle)
        guard handshake == LDAP_SUCCESS else { return " (no TLS handshake at all: is TLS configured on the directory, and is this its address?)" }
        let checkedAgainst = settings.caFile.map { "ldap_ca \($0)" } ?? "the system's CAs"
        return " (the directory's certificate was rejected: not signed by a CA in \(checkedAgainst), expired, or issued for another name than the URI's)"
    }

    public func describe(_ code: Int32) -> String { "\(String(cString: ldap_err2string(code))) (\(code))" }

    /// The result code and what the library or the server added (a TLS failure says why there: "The
    /// certificate is NOT trusted", a name mismatch): text from the network, escaped where it is shown.
    func describeWithDiagnostic(_ code: Int32) -> String {
        var message: UnsafeMutablePointer<CChar>? = nil
        guard ldap_get_option(handle, LDAP_OPT_DIAGNOSTIC_MESSAGE, &message) == LDAP_OPT_SUCCESS, let message else { return describe(code) }
        defer { ldap_memfree(message) }
        let text = displayText(String(cString: message), limit: 200)
        return text.isEmpty ? describe(code) : "\(describe(code)): \(text)"
    }

    var operationTimeout: timeval {
        timeval(tv_sec: Int(timeoutMilliseconds / 1000), tv_usec: Int(timeoutMilliseconds % 1000) * 1000)
    }

    /// The entries found; noSuchObject is an empty answer, any other failure its result code.
    public func search(base: String, subtree: Bool, filter: String = "(objectClass=*)", attributes: [String]) -> Result<[DirectoryEntry], DirectoryFailure> {
        var names: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) } + [nil]
        defer { for name in names { free(name) } }
        var result: OpaquePointer? = nil
        var timeout = operationTimeout
        let code = ldap_search_ext_s(handle, base, subtree ? LDAP_SCOPE_SUBTREE : LDAP_SCOPE_BASE, filter, &names, 0, nil, nil, &timeout, 0, &result)
        defer { if let result { ldap_msgfree(result) } }
        if code == LDAPResult.noSuchObject { return .success([]) }
        guard code == LDAP_SUCCESS, let result else { return .failure(DirectoryFailure(code: code, text: describe(code))) }
        return .success(entries(of: result))
    }

    /// The entries of one search result.
    private func entries(of result: OpaquePointer) -> [DirectoryEntry] {
        var entries: [DirectoryEntry] = []
        var message = ldap_first_entry(handle, result)
        while let current = message {
            var entry = DirectoryEntry(dn: "", attributes: [:])
            if let dn = ldap_get_dn(handle, current) {
                entry.dn = String(cString: dn)
                ldap_memfree(dn)
            }
            var ber: OpaquePointer? = nil
            var attribute = ldap_first_attribute(handle, current, &ber)
            while let name = attribute {
                var values: [[UInt8]] = []
                if let list = ldap_get_values_len(handle, current, name) {
                    var index = 0
                    while let value = list[index] {
                        let pointer = UnsafeRawPointer(value.pointee.bv_val)
                        values.append(pointer.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(value.pointee.bv_len))) } ?? [])
                        index += 1
                    }
                    ldap_value_free_len(list)
                }
                entry.attributes[String(cString: name).lowercased()] = values
                ldap_memfree(name)
                attribute = ldap_next_attribute(handle, current, ber)
            }
            if let ber { ber_free(ber, 0) }
            entries.append(entry)
            message = ldap_next_entry(handle, current)
        }
        return entries
    }
    /// Every entry below `base` matching `filter`, fetched in pages (RFC 2696) so that a directory's size
    /// limit for one answer does not cut the list short; `each` sees them in the server's order.
    public func searchPaged(base: String, filter: String, attributes: [String], pageSize: Int32 = 1000,
                            _ each: (DirectoryEntry) -> Void) -> Result<Void, DirectoryFailure> {
        var names: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) } + [nil]
        defer { for name in names { free(name) } }
        var cookie: UnsafeMutablePointer<berval>? = nil
        defer { if let cookie { ber_bvfree(cookie) } }
        repeat {
            var pageControl: UnsafeMutablePointer<LDAPControl>? = nil
            guard ldap_create_page_control(handle, pageSize, cookie, 1, &pageControl) == LDAP_SUCCESS, let pageControl else {
                return .failure(DirectoryFailure(code: -1, text: "cannot make a paged-results control"))
            }
            defer { ldap_control_free(pageControl) }
            var controls: [UnsafeMutablePointer<LDAPControl>?] = [pageControl, nil]
            var result: OpaquePointer? = nil
            var timeout = operationTimeout
            let code = ldap_search_ext_s(handle, base, LDAP_SCOPE_SUBTREE, filter, &names, 0, &controls, nil, &timeout, 0, &result)
            defer { if let result { ldap_msgfree(result) } }
            if code == LDAPResult.noSuchObject { return .success(()) }
            guard code == LDAP_SUCCESS, let result else { return .failure(DirectoryFailure(code: code, text: describe(code))) }
            for entry in entries(of: result) { each(entry) }
            var returned: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>? = nil
            var resultCode: Int32 = 0
            ldap_parse_result(handle, result, &resultCode, nil, nil, nil, &returned, 0)
            defer { if let returned { ldap_controls_free(returned) } }
            if let cookie { ber_bvfree(cookie) }
            cookie = nil
            guard let returned, let response = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, returned, nil) else { break }
            var count: ber_int_t = 0
            var next = berval(bv_len: 0, bv_val: nil)
            guard ldap_parse_pageresponse_control(handle, response, &count, &next) == LDAP_SUCCESS else { break }
            if next.bv_len == 0 { ber_memfree(next.bv_val); break }
            cookie = ber_bvdup(&next)
            ber_memfree(next.bv_val)
        } while true
        return .success(())
    }

    /// Deletes one entry (a leaf).
    public func delete(dn: String) -> Int32 { ldap_delete_ext_s(handle, dn, nil, nil) }

    public struct DirectoryFailure: Error {
        public var code: Int32
        public var text: String
        /// Not an LDAP result: the entry found belongs to another user (a case twin, see readUser).
        public static let anotherUsersEntry: Int32 = -2
    }

    /// One modify operation: all changes or none (the compare-and-swap). The LDAP result code.
    public func modify(dn: String, _ changes: [DirectoryChange]) -> Int32 {
        withModifications(changes) { ldap_modify_ext_s(handle, dn, $0, nil, nil) }
    }

    public func add(dn: String, _ attributes: [(String, [[UInt8]])]) -> Int32 {
        withModifications(attributes.map { .add($0.0, $0.1) }) { ldap_add_ext_s(handle, dn, $0, nil, nil) }
    }

    func withModifications(_ changes: [DirectoryChange], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<LDAPMod>?>) -> Int32) -> Int32 {
        var allocations: [UnsafeMutableRawPointer] = []
        defer { for pointer in allocations { free(pointer) } }
        var modifications: [UnsafeMutablePointer<LDAPMod>?] = []
        for change in changes {
            let (operation, name, values): (Int32, String, [[UInt8]]) = switch change {
            case .add(let name, let values): (LDAP_MOD_ADD, name, values)
            case .delete(let name, let values): (LDAP_MOD_DELETE, name, values)
            case .replace(let name, let values): (LDAP_MOD_REPLACE, name, values)
            case .increment(let name, let by): (LDAP_MOD_INCREMENT, name, [Array(String(by).utf8)])
            }
            let modification = UnsafeMutablePointer<LDAPMod>.allocate(capacity: 1)
            allocations.append(UnsafeMutableRawPointer(modification))
            let type = strdup(name)!
            allocations.append(UnsafeMutableRawPointer(type))
            let list = UnsafeMutablePointer<UnsafeMutablePointer<berval>?>.allocate(capacity: values.count + 1)
            allocations.append(UnsafeMutableRawPointer(list))
            for (index, value) in values.enumerated() {
                let bytes = malloc(max(value.count, 1))!
                allocations.append(bytes)
                value.withUnsafeBytes { if $0.count > 0 { memcpy(bytes, $0.baseAddress!, $0.count) } }
                let entry = UnsafeMutablePointer<berval>.allocate(capacity: 1)
                allocations.append(UnsafeMutableRawPointer(entry))
                entry.initialize(to: berval(bv_len: ber_len_t(value.count), bv_val: bytes.assumingMemoryBound(to: CChar.self)))
                list[index] = entry
            }
            list[values.count] = nil
            modification.initialize(to: LDAPMod())
            modification.pointee.mod_op = operation | LDAP_MOD_BVALUES
            modification.pointee.mod_type = type
            // No values with delete removes the whole attribute.
            modification.pointee.mod_vals.modv_bvals = values.isEmpty && operation == LDAP_MOD_DELETE ? nil : list
            modifications.append(modification)
        }
        modifications.append(nil)
        return modifications.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }
}

public func monotonicNow() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

/// An RDN value with every byte but letters, digits, '-', '_' and '.' escaped as \XX (RFC 4514): a user
/// name may hold ',', '+', '=' or a leading '#', none of which may change which entry is meant.
public func escapedRDNValue(_ value: String) -> String {
    var out = ""
    for byte in value.utf8 {
        let plain = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || (byte == UInt8(ascii: ".") && !out.isEmpty)
        if plain { out.unicodeScalars.append(Unicode.Scalar(byte)) } else { out += "\\" + hexString([byte]) }
    }
    return out
}
