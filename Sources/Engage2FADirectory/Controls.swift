// A modify decided at the provider on the provider's own copy: the assertion control (RFC 4528) makes the
// modify fail unless the provider's entry matches a filter, and the post-read control (RFC 4527) returns
// the entry as the provider has it after the change. Both pass through slapo-chain with the write, so a
// replica that is behind can neither decide nor report the outcome.

import CLDAP
import Engage2FALogin
import Glibc

extension LDAPResult {
    public static let assertionFailed: Int32 = 122
}

/// What one controlled modify came to: the result code and, on success, the entry's values after it.
public struct ControlledModify: Sendable {
    public var code: Int32
    public var after: DirectoryEntry?
}

extension Directory {
    /// One modify that the provider applies only when its entry matches `assertion` (an LDAP filter built
    /// from numbers and fixed names: nothing of it comes from a user), returning the `postRead` attributes
    /// as they are after it.
    public func modify(dn: String, _ changes: [DirectoryChange], assertion: String?, postRead: [String]) -> ControlledModify {
        var controls: [UnsafeMutablePointer<LDAPControl>?] = []
        defer { for control in controls { if let control { ldap_control_free(control) } } }
        if let assertion {
            var control: UnsafeMutablePointer<LDAPControl>? = nil
            let made = assertion.withCString { ldap_create_assertion_control(handle, UnsafeMutablePointer(mutating: $0), 1, &control) }
            guard made == LDAP_SUCCESS, control != nil else { return ControlledModify(code: -1, after: nil) }
            controls.append(control)
        }
        if !postRead.isEmpty {
            var value = postReadRequest(postRead)
            var control: UnsafeMutablePointer<LDAPControl>? = nil
            let made = value.withUnsafeMutableBytes { bytes in
                var encoded = berval(bv_len: ber_len_t(bytes.count), bv_val: bytes.baseAddress?.assumingMemoryBound(to: CChar.self))
                return ldap_control_create(LDAP_CONTROL_POST_READ, 1, &encoded, 1, &control)
            }
            guard made == LDAP_SUCCESS, control != nil else { return ControlledModify(code: -1, after: nil) }
            controls.append(control)
        }
        controls.append(nil)
        var messageID: Int32 = 0
        let sent = withModifications(changes) { modifications in
            controls.withUnsafeMutableBufferPointer { ldap_modify_ext(handle, dn, modifications, $0.baseAddress, nil, &messageID) }
        }
        guard sent == LDAP_SUCCESS else { return ControlledModify(code: sent, after: nil) }
        var timeout = operationTimeout
        var result: OpaquePointer? = nil
        let got = ldap_result(handle, messageID, 1, &timeout, &result)
        guard got > 0, let result else {
            if let result { ldap_msgfree(result) }
            if got == 0 { ldap_abandon_ext(handle, messageID, nil, nil) }
            return ControlledModify(code: got == 0 ? LDAP_TIMEOUT : LDAP_SERVER_DOWN, after: nil)
        }
        var code: Int32 = 0
        var returned: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>? = nil
        let parsed = ldap_parse_result(handle, result, &code, nil, nil, nil, &returned, 1)
        defer { if let returned { ldap_controls_free(returned) } }
        guard parsed == LDAP_SUCCESS else { return ControlledModify(code: parsed, after: nil) }
        guard code == LDAP_SUCCESS, !postRead.isEmpty else { return ControlledModify(code: code, after: nil) }
        guard let returned, let control = ldap_control_find(LDAP_CONTROL_POST_READ, returned, nil),
              let entry = postReadEntry(&control.pointee.ldctl_value) else {
            // Applied, but what it came to is not known: the caller must not guess (a count unread is no count).
            return ControlledModify(code: LDAPResult.success, after: nil)
        }
        return ControlledModify(code: code, after: entry)
    }

    /// The post-read request value: SEQUENCE OF AttributeDescription (RFC 4527 2.1), for a few short names.
    private func postReadRequest(_ names: [String]) -> [UInt8] {
        var body: [UInt8] = []
        for name in names {
            let bytes = Array(name.utf8)
            precondition(bytes.count < 128, "an attribute name this short is encoded in one length byte")
            body += [0x04, UInt8(bytes.count)] + bytes
        }
        precondition(body.count < 128, "a list this short is encoded in one length byte")
        return [0x30, UInt8(body.count)] + body
    }

    /// The entry of a post-read response (a SearchResultEntry), read with liblber's bounds-checked decoder:
    /// the server's bytes are not trusted to be well formed.
    private func postReadEntry(_ value: UnsafeMutablePointer<berval>) -> DirectoryEntry? {
        // LBER_DEFAULT, ((ber_tag_t) -1): what liblber's readers return for a missing or malformed element.
        let end = ber_tag_t.max
        guard let ber = ber_init(value) else { return nil }
        defer { ber_free(ber, 1) }
        var length: ber_len_t = 0
        let inPlace: Int32 = 0x02  // LBER_BV_NOTERM: no copy, no terminator written
        func bytes(_ value: berval) -> [UInt8] {
            guard let start = value.bv_val, value.bv_len > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: start, count: Int(value.bv_len)))
        }
        guard ber_skip_tag(ber, &length) != end else { return nil }
        var dn = berval()
        guard ber_get_stringbv(ber, &dn, inPlace) != end else { return nil }
        var entry = DirectoryEntry(dn: String(decoding: bytes(dn), as: UTF8.self), attributes: [:])
        var attributesEnd: UnsafeMutablePointer<CChar>? = nil
        var tag = ber_first_element(ber, &length, &attributesEnd)
        while tag != end {
            guard ber_skip_tag(ber, &length) != end else { return nil }
            var type = berval()
            guard ber_get_stringbv(ber, &type, inPlace) != end else { return nil }
            var values: [[UInt8]] = []
            var valuesEnd: UnsafeMutablePointer<CChar>? = nil
            var valueTag = ber_first_element(ber, &length, &valuesEnd)
            while valueTag != end {
                var value = berval()
                guard ber_get_stringbv(ber, &value, inPlace) != end, values.count < 1000 else { return nil }
                values.append(bytes(value))
                valueTag = ber_next_element(ber, &length, valuesEnd)
            }
            entry.attributes[String(decoding: bytes(type), as: UTF8.self).lowercased()] = values
            tag = ber_next_element(ber, &length, attributesEnd)
        }
        return entry
    }
}
