import CEngageSys

/// Why a login is let through without a code although 2FA applies on the host: the policy file's
/// scope keys (`exempt_groups`, `only_groups`, `exempt_services`). Root's file only: a policy file that
/// cannot be used grants none once 2FA is active (`decidePolicy`).
public enum Exemption: Equatable, Sendable {
    /// The user is a member (primary or supplementary, through NSS) of this `exempt_groups` group.
    case group(String)
    /// `only_groups` is set and the user is in none of its groups.
    case outsideOnlyGroups
    /// The PAM service (named by the application) is in `exempt_services`.
    case service(String)

    /// For the system log and `engage2fa-admin status`.
    public var text: String {
        switch self {
        case .group(let group): quotingValue("member of ", group, " (exempt_groups)")
        case .outsideOnlyGroups: "in none of only_groups"
        case .service(let service): quotingValue("service ", service, " (exempt_services)")
        }
    }
}

/// Which of the policy's groups a user is in.
public enum GroupMembership: Equatable, Sendable {
    /// The names (as the policy file spells them) of the policy's groups the user is in.
    case known(memberOf: [String])
    /// The user database could not tell: no group exempts the user, and the user counts as in
    /// `only_groups` (asked for a code). An unknown user is treated so too.
    case unknown
}

extension Config {
    /// The groups the scope keys name, each once.
    public var scopeGroups: [String] {
        var groups = exemptGroups
        for group in onlyGroups where !groups.containsBytes(of: group) { groups.append(group) }
        return groups
    }

    /// Why this login needs no code, or nil when the scope keys leave it to the rest of the policy.
    public func exemption(service: String?, membership: GroupMembership) -> Exemption? {
        if let service, exemptServices.containsBytes(of: service) { return .service(service) }
        guard case .known(let memberOf) = membership else { return nil }
        if let group = exemptGroups.first(where: { memberOf.containsBytes(of: $0) }) { return .group(group) }
        if !onlyGroups.isEmpty, !onlyGroups.contains(where: { memberOf.containsBytes(of: $0) }) { return .outsideOnlyGroups }
        return nil
    }

    /// Parses a scope key's value (`setting`, named `key` in the file): names separated by commas and/or
    /// white space; returns the problem, or nil.
    mutating func applyScope(_ setting: SettingKey, name key: String, value: String) -> String? {
        let isServices = setting == .exemptServices
        var names: [String] = []
        var current: [UInt8] = []
        // A separator after the last byte ends the last name: one place that ends a name, not two.
        var bytes = Array(value.utf8)
        bytes.append(UInt8(ascii: " "))
        for byte in bytes {
            guard byte == UInt8(ascii: ",") || byte == UInt8(ascii: " ") || byte == 0x09 else {
                current.append(isServices ? asciiLowercase(byte) : byte)
                continue
            }
            guard !current.isEmpty else { continue }
            let name = String(decoding: current, as: UTF8.self)
            current.removeAll(keepingCapacity: true)
            // A service is a file name in /etc/pam.d, a group a name in the group database: neither holds a '/'.
            guard isSafeUserName(name) else {
                return key + quotingValue(": '", name, isServices ? "' is not a valid service name" : "' is not a valid group name")
            }
            if !names.containsBytes(of: name) { names.append(name) }
        }
        guard !names.isEmpty else { return key + " needs at least one name (remove the line to name none)" }
        if isServices { exemptServices = names } else if setting == .exemptGroups { exemptGroups = names } else { onlyGroups = names }
        return nil
    }
}

extension Account {
    /// Which of `groups` this user is in, through the user and group databases (NSS: files, sssd,
    /// LDAP), the primary group included (getgrouplist(3)). A group the database does not know takes
    /// in nobody; a lookup that fails makes the membership `.unknown`.
    public func membership(of groups: [String]) -> GroupMembership {
        guard !groups.isEmpty else { return .known(memberOf: []) }
        var userGroups = [gid_t](repeating: 0, count: 64)
        var count = Int32(userGroups.count)
        while true {
            let found = name.withCString { getgrouplist($0, gid, &userGroups, &count) }
            if found >= 0 {
                userGroups.removeLast(userGroups.count - Int(found))
                break
            }
            guard count > Int32(userGroups.count), count <= 1 << 16 else { return .unknown }
            userGroups = [gid_t](repeating: 0, count: Int(count))
        }
        var memberOf: [String] = []
        for group in groups {
            switch groupID(named: group) {
            case .failure: return .unknown
            case .success(let id?): if userGroups.contains(id) { memberOf.append(group) }
            case .success(nil): continue
            }
        }
        return .known(memberOf: memberOf)
    }
}

public struct GroupLookupError: Error {}

/// The id of a group (getgrnam_r(3)); nil when the database has no such group.
public func groupID(named name: String) -> Result<gid_t?, GroupLookupError> {
    var size = 4096
    while true {
        let (status, id) = withUnsafeTemporaryAllocation(of: CChar.self, capacity: size) { buffer -> (Int32, gid_t?) in
            var entry = group()
            var result: UnsafeMutablePointer<group>? = nil
            let status = name.withCString { getgrnam_r($0, &entry, buffer.baseAddress!, size, &result) }
            return (status, result == nil ? nil : entry.gr_gid)
        }
        if status == ERANGE && size < 1 << 20 {
            size *= 4
            continue
        }
        if let id { return .success(id) }
        // getgrnam_r(3): these mean "not found" as much as 0 does.
        return status == 0 || status == ENOENT || status == ESRCH || status == EBADF || status == EPERM
            ? .success(nil) : .failure(GroupLookupError())
    }
}

extension ParsedConfig {
    /// Warnings that need the host's group database and /etc/pam.d: scope keys naming groups or services
    /// the host does not have (they exempt nobody, or — in `only_groups` — take in nobody).
    public func scopeWarnings(file: String, groupExists: (String) -> Bool, serviceExists: (String) -> Bool) -> [ConfigDiagnostic] {
        var warnings: [ConfigDiagnostic] = []
        let keyLines = keyLines
        func warn(_ key: String, _ message: String) {
            warnings.append(ConfigDiagnostic(file: file, line: keyLines[key] ?? 0, severity: .warning, message: message))
        }
        for (key, groups) in [("exempt_groups", config.exemptGroups), ("only_groups", config.onlyGroups)] {
            let missing = groups.filter { !groupExists($0) }
            for group in missing { warn(key, "\(key): no group '\(displayText(group, limit: 64))' on this host") }
            if key == "only_groups", !groups.isEmpty, missing.count == groups.count {
                warn(key, "only_groups names no group this host has: no login is asked for a code")
            }
        }
        for service in config.exemptServices where !serviceExists(service) {
            warn("exempt_services", "exempt_services: no PAM service '\(displayText(service, limit: 64))' (no /etc/pam.d/\(displayText(service, limit: 64)))")
        }
        return warnings
    }
}
