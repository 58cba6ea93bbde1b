#if canImport(Glibc)
import Glibc
#else
import CEngageSys
#endif

/// Edits of the policy file that keep every other byte as it was: comments, order, spacing.
public enum ConfigEditor {
    /// The text with `user`'s personal deadline set to `date`: the value of an existing entry is
    /// replaced in place (its comment kept), or a line is added at the end of `[deadlines]`, which is
    /// created at the end of the file if there is none.
    public static func settingDeadline(in text: String, user: String, date: String) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let hadFinalNewline = text.isEmpty || text.hasSuffix("\n")
        if hadFinalNewline && !text.isEmpty { lines.removeLast() }
        if text.isEmpty { lines = [] }

        var inDeadlines = false
        var lastEntryInDeadlines: Int? = nil
        var deadlinesHeader: Int? = nil
        for (index, line) in lines.enumerated() {
            let content = stripComment(Substring(line))
            if content.hasPrefix("[") {
                inDeadlines = trim(content.dropFirst().prefix { $0 != "]" }).lowercased() == "deadlines"
                if inDeadlines { deadlinesHeader = index }
                continue
            }
            guard inDeadlines, let equals = content.firstIndex(of: "=") else { continue }
            lastEntryInDeadlines = index
            guard trim(content[..<equals]) == user else { continue }
            // Replace just the value: keep the indentation, the spacing around '=' and any comment.
            let valueStart = line.index(after: line.firstIndex(of: "=")!)
            let afterEquals = line[valueStart...]
            let leading = afterEquals.prefix { $0 == " " || $0 == "\t" }
            let value = trim(stripComment(afterEquals))
            let valueEnd = value.isEmpty ? afterEquals.endIndex : line.index(leading.endIndex, offsetBy: value.count)
            lines[index] = String(line[..<leading.endIndex]) + date + String(line[valueEnd...])
            return lines.joined(separator: "\n") + (hadFinalNewline ? "\n" : "")
        }
        let entry = "\(user) = \(date)"
        if let insertAfter = lastEntryInDeadlines ?? deadlinesHeader {
            lines.insert(entry, at: insertAfter + 1)
        } else {
            if let last = lines.last, !last.isEmpty { lines.append("") }
            lines += ["[deadlines]", entry]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    #if !hasFeature(Embedded)
    /// Rewrites the policy file under an exclusive lock on its directory, so that concurrent edits
    /// never lose each other's lines; the file is replaced atomically with its owner and mode kept.
    public static func edit(path: String, _ change: (String) throws -> String) throws {
        let (directory, _) = splitPath(path)
        let lock = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard lock >= 0 else { throw SystemError("open \(directory)") }
        defer { close(lock) }
        guard retryOnInterrupt({ flock(lock, LOCK_EX) }) == 0 else { throw SystemError("flock \(directory)") }

        var info = stat()
        let exists = lstat(path, &info) == 0
        if exists && info.st_mode & mode_t(S_IFMT) != mode_t(S_IFREG) { throw TrustedFileError.notRegularFile(path: path) }
        let old = exists ? try readTrustedFile(path, owners: [info.st_uid], maxSize: Config.maxFileSize, groupOtherMask: 0o022) : []
        guard let text = String(validating: old, as: UTF8.self) else { throw TrustedFileError.notRegularFile(path: path) }
        let new = try change(text)
        try writeFileAtomically(path, contents: Array(new.utf8), mode: exists ? info.st_mode & 0o7777 : 0o644,
                                owner: exists && geteuid() == 0 ? (info.st_uid, info.st_gid) : nil)
    }
    #endif
}
