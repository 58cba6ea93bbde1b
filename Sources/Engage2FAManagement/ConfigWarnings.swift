import Engage2FALogin

/// For `engage2fa-admin check` only: the module never looks up the users a policy file names.
extension ParsedConfig {
    /// Warnings that need the host's user database: deadlines for users that do not exist.
    public func userWarnings(file: String, userExists: (String) -> Bool) -> [ConfigDiagnostic] {
        deadlineLines.sorted { $0.value < $1.value }.compactMap { user, line in
            userExists(user) ? nil
                : ConfigDiagnostic(file: file, line: line, severity: .warning, message: "[deadlines]: no user '\(displayText(user, limit: 64))' on this host")
        }
    }
}
