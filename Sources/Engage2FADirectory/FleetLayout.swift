// Where engage2fa's entries are below ldap_base, and how a user's entries read (ldap/engage2fa-schema.ldif):
//   cn=policy,BASE                              e2faPolicy
//   uid=USER,ou=users,BASE                      e2faUser
//   e2faDeviceID=ID,uid=USER,ou=users,BASE      e2faDevice + oathTOTPToken + oathTOTPParams

import Engage2FALogin

/// The OIDs of OATH-LDAP's oathHMACAlgorithm.
public let algorithmOIDs: [(OTPAlgorithm, String)] = [(.sha1, "1.2.840.113549.2.7"), (.sha256, "1.2.840.113549.2.9"), (.sha512, "1.2.840.113549.2.11")]

public struct FleetLayout: Sendable {
    public let base: String

    public init(base: String) { self.base = base }

    public var policyDN: String { "cn=policy," + base }
    public var usersDN: String { "ou=users," + base }
    public func userDN(_ user: String) -> String { "uid=\(escapedRDNValue(user))," + usersDN }

    /// Sorts one entry of a subtree search below ou=users into its user (by the DN's user part).
    public func collect(_ entry: DirectoryEntry, into users: inout [String: DirectoryUser], order: inout [String]) {
        let isDevice = entry.first("e2faDeviceID") != nil
        guard let uidValue = (isDevice ? nil : entry.text("uid")) ?? userName(ofDevice: entry.dn) else { return }
        if users[uidValue] == nil {
            users[uidValue] = DirectoryUser(dn: userDN(uidValue))
            order.append(uidValue)
        }
        users[uidValue]!.take(entry)
    }

    /// The user part of a device entry's DN, as the directory returns it (escaped as in userDN).
    private func userName(ofDevice dn: String) -> String? {
        guard let comma = dn.firstIndex(of: ",") else { return nil }
        let parent = dn[dn.index(after: comma)...]
        guard parent.lowercased().hasPrefix("uid="), parent.lowercased().hasSuffix("," + usersDN.lowercased()) else { return nil }
        let escaped = parent.dropFirst(4).dropLast(usersDN.count + 1)
        return unescapedRDNValue(String(escaped))
    }
}

/// One device as the directory holds it.
public struct DirectoryDevice: Sendable {
    public var dn: String
    public var device: Device
    public var lastStep: Int64?
}

/// A user's entries, read in one subtree search.
public struct DirectoryUser: Sendable {
    /// What a user's entry and its devices' entries are read for.
    public static let attributes = [
        "e2faDeadline", "e2faFailures", "e2faLockedUntil", "e2faRecoveryHash", "e2faRecoverySalt", "e2faRecoveryIterations",
        "e2faDeviceID", "e2faDeviceName", "e2faAdded", "e2faVerifiedStep", "oathSecret", "oathOTPLength", "oathHMACAlgorithm",
        "oathTOTPTimeStepPeriod", "oathTOTPLastTimeStep", "e2faFirstDeviceClaim",
    ]

    public var dn: String
    public var entry: DirectoryEntry?
    public var devices: [DirectoryDevice] = []
    public var problems: [String] = []

    public init(dn: String) { self.dn = dn }

    public var failures: Int64? { entry?.integer("e2faFailures") }
    public var lockedUntil: Int64 { entry?.integer("e2faLockedUntil") ?? 0 }

    /// How many unused recovery codes the entry holds (0 without a usable set).
    public var recoveryCodesLeft: Int { recovery?.hashes.count ?? 0 }

    public var recovery: RecoveryCodes? {
        guard let entry, let salt = entry.text("e2faRecoverySalt").flatMap({ parseHex($0.utf8) }),
              let iterations = entry.integer("e2faRecoveryIterations"), (1...RecoveryCodes.maxIterations).contains(Int(iterations)) else { return nil }
        let hashes = entry.values("e2faRecoveryHash").compactMap { parseHex($0) }
        return RecoveryCodes(salt: salt, iterations: Int(iterations), createdAt: 0, hashes: hashes)
    }

    /// Adds one entry of the user's subtree: the user's own, or a device (checked: an incomplete or
    /// out-of-range device is left out and named in `problems`).
    mutating func take(_ entry: DirectoryEntry) {
        guard entry.first("e2faDeviceID") != nil else {
            if entry.values("e2faDeviceName").isEmpty { self.entry = entry }
            return
        }
        guard let id = entry.text("e2faDeviceID"), let name = entry.text("e2faDeviceName"),
              let secret = entry.first("oathSecret"), !secret.isEmpty,
              let digits = entry.integer("oathOTPLength"), OTPParameters.digitRange.contains(Int(digits)),
              let period = entry.integer("oathTOTPTimeStepPeriod"), OTPParameters.periodRange.contains(Int(period)),
              let oid = entry.text("oathHMACAlgorithm"), let algorithm = algorithmOIDs.first(where: { $0.1 == oid })?.0 else {
            problems.append("device entry \(displayText(entry.dn, limit: 200)) is incomplete or out of range; ignored")
            return
        }
        let device = Device(id: id, name: name, secret: secret, parameters: OTPParameters(algorithm: algorithm, digits: Int(digits), period: Int(period)),
                            addedAt: entry.integer("e2faAdded") ?? 0, verifiedStep: entry.integer("e2faVerifiedStep"))
        devices.append(DirectoryDevice(dn: entry.dn, device: device, lastStep: entry.integer("oathTOTPLastTimeStep")))
    }
}

extension Directory {
    /// A user's entry and devices in one subtree search; a user the directory does not know has neither.
    public func readUser(_ user: String, layout: FleetLayout) -> Result<DirectoryUser, DirectoryFailure> {
        let dn = layout.userDN(user)
        let entries: [DirectoryEntry]
        switch search(base: dn, subtree: true, attributes: DirectoryUser.attributes + ["uid"]) {
        case .success(let found): entries = found
        case .failure(let failure): return .failure(failure)
        }
        var found = DirectoryUser(dn: dn)
        for entry in entries { found.take(entry) }
        // uid matches ignoring case, spacing and Unicode form: the local users "x" and "X" (two accounts) name
        // one entry. It serves the one user whose name it holds, byte for byte, and nobody else.
        if let entry = found.entry {
            let names = entry.values("uid")
            guard names.count == 1, names[0] == Array(user.utf8) else {
                let holder = names.map { displayText(String(decoding: $0, as: UTF8.self), limit: 64) }.joined(separator: ", ")
                return .failure(DirectoryFailure(code: DirectoryFailure.anotherUsersEntry,
                    text: "\(displayText(dn, limit: 200)) is the entry of '\(holder)', not of '\(displayText(user, limit: 64))' (user names that differ only in case, spacing or Unicode form share one entry in the directory): '\(displayText(user, limit: 64))' cannot use fleet mode until one of the two is renamed"))
            }
        }
        return .success(found)
    }
}

extension Directory {
    /// Adds the user's entry unless it is there.
    public func ensureUser(_ user: String, layout: FleetLayout) -> Result<Void, DirectoryFailure> {
        let dn = layout.userDN(user)
        let code = add(dn: dn, [("objectClass", [Array("e2faUser".utf8)]), ("uid", [Array(user.utf8)])])
        guard code == LDAPResult.success || code == LDAPResult.alreadyExists else { return .failure(DirectoryFailure(code: code, text: "add \(dn): \(describe(code))")) }
        return .success(())
    }

    /// Writes a new device entry below the user's (made first if missing), with the last step already
    /// used if one is known (a migrated device's codes are not accepted again).
    public func addDevice(_ device: Device, lastStep: Int64?, user: String, layout: FleetLayout) -> Result<Void, DirectoryFailure> {
        if case .failure(let failure) = ensureUser(user, layout: layout) { return .failure(failure) }
        let oid = algorithmOIDs.first { $0.0 == device.parameters.algorithm }!.1
        var attributes: [(String, [[UInt8]])] = [
            ("objectClass", ["e2faDevice", "oathTOTPToken", "oathTOTPParams"].map { Array($0.utf8) }),
            ("e2faDeviceID", [Array(device.id.utf8)]), ("e2faDeviceName", [Array(device.name.utf8)]),
            ("e2faAdded", [Array(String(device.addedAt).utf8)]), ("oathSecret", [device.secret]),
            ("oathOTPLength", [Array(String(device.parameters.digits).utf8)]),
            ("oathTOTPTimeStepPeriod", [Array(String(device.parameters.period).utf8)]), ("oathHMACAlgorithm", [Array(oid.utf8)]),
        ]
        if let step = device.verifiedStep { attributes.append(("e2faVerifiedStep", [Array(String(step).utf8)])) }
        if let lastStep { attributes.append(("oathTOTPLastTimeStep", [Array(String(lastStep).utf8)])) }
        let dn = "e2faDeviceID=\(escapedRDNValue(device.id)),\(layout.userDN(user))"
        let code = add(dn: dn, attributes)
        guard code == LDAPResult.success else { return .failure(DirectoryFailure(code: code, text: "add \(dn): \(describe(code))")) }
        return .success(())
    }
}

/// How a user's first device claim came out (`Directory.addFirstDevice`).
public enum FirstDeviceOutcome: Equatable, Sendable {
    case added
    /// Another first device was linked (or is being linked) at this moment, on this host or another.
    case lostToAnother
}

extension Directory {
    /// How long a claim of a first device stands: the claim and the add are two operations moments apart;
    /// one left by a service that died in between stops counting after this.
    public static let firstDeviceClaimSeconds: Int64 = 600

    /// Adds a user's first device, which needs no code: only if, at the provider, the user has no device
    /// and no other first device is being linked. Two enrollments confirmed at once both read "no device";
    /// each first claims the user's entry by a compare-and-swap of e2faFirstDeviceClaim (add when the read
    /// shows none, else delete the stale value read and add), with an assertion (RFC 4528) that the entry
    /// has no device below it at the provider. One claim wins; the device is then added and the claim
    /// released. A replica behind only makes the claim fail.
    /// With `assertingNoRecoveryCodes` (nothing was proved) the provider's entry must hold no recovery code either.
    public func addFirstDevice(_ device: Device, user: String, layout: FleetLayout, now: Int64, assertingNoRecoveryCodes: Bool) -> Result<FirstDeviceOutcome, DirectoryFailure> {
        if case .failure(let failure) = ensureUser(user, layout: layout) { return .failure(failure) }
        let read: DirectoryUser
        switch readUser(user, layout: layout) {
        case .success(let found): read = found
        case .failure(let failure): return .failure(failure)
        }
        guard read.devices.isEmpty, read.problems.isEmpty, !(assertingNoRecoveryCodes && read.recoveryCodesLeft > 0) else { return .success(.lostToAnother) }
        let dn = layout.userDN(user)
        var changes: [DirectoryChange] = []
        if let held = read.entry?.first("e2faFirstDeviceClaim") {
            // A claim's time is the claiming host's word (range-checked); one still standing is another enrollment.
            let pieces = held.split(separator: UInt8(ascii: " "), maxSplits: 1)
            if let first = pieces.first, let claimed = Int64(String(decoding: first, as: UTF8.self)),
               claimed > now - Self.firstDeviceClaimSeconds, claimed < now + Self.firstDeviceClaimSeconds {
                return .success(.lostToAnother)
            }
            changes.append(.delete("e2faFirstDeviceClaim", [held]))
        }
        let claim = Array("\(now) \(device.id)".utf8)
        changes.append(.add("e2faFirstDeviceClaim", [claim]))
        let assertion = assertingNoRecoveryCodes ? "(&(hasSubordinates=FALSE)(!(e2faRecoveryHash=*)))" : "(hasSubordinates=FALSE)"
        let claimed = modify(dn: dn, changes, assertion: assertion, postRead: [])
        if LDAPResult.lostRace(claimed.code) || claimed.code == LDAPResult.assertionFailed { return .success(.lostToAnother) }
        guard claimed.code == LDAPResult.success else { return .failure(DirectoryFailure(code: claimed.code, text: "modify \(dn): \(describe(claimed.code))")) }
        let added = addDevice(device, lastStep: nil, user: user, layout: layout)
        // Released whatever the add came to: a later first enrollment (after a failed add) need not wait.
        _ = modify(dn: dn, [.delete("e2faFirstDeviceClaim", [claim])])
        return added.map { .added }
    }
}

/// The inverse of escapedRDNValue for the escapes it makes (\XX) and the ones a server may return (\c).
func unescapedRDNValue(_ value: String) -> String {
    var out: [UInt8] = []
    let bytes = Array(value.utf8)
    var index = 0
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "\\"), index + 2 < bytes.count + 0, let pair = parseHex(bytes[(index + 1)..<min(index + 3, bytes.count)]), pair.count == 1 {
            out.append(pair[0])
            index += 3
        } else if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count {
            out.append(bytes[index + 1])
            index += 2
        } else {
            out.append(bytes[index])
            index += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
