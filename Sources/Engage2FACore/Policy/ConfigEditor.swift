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
        let bytes = Array(text.utf8)
        var lines = bytes.isEmpty ? [] : bytes.withUnsafeBufferPointer { Lines($0).map { Array($0)[...] } }
        let hadFinalNewline = bytes.isEmpty || bytes.last == 0x0A
        if hadFinalNewline && !bytes.isEmpty { lines.removeLast() }

        func joined(finalNewline: Bool) -> String {
            var out: [UInt8] = []
            for (index, line) in lines.enumerated() {
                if index > 0 { out.append(0x0A) }
                out.append(contentsOf: line)
            }
            if finalNewline { out.append(0x0A) }
            return String(decoding: out, as: UTF8.self)
        }

        var inDeadlines = false
        var lastEntryInDeadlines: Int? = nil
        var deadlinesHeader: Int? = nil
        for (index, line) in lines.enumerated() {
            let content = stripComment(line)
            if content.first == UInt8(ascii: "[") {
                inDeadlines = bytesEqualIgnoringASCIICase(content.dropFirst().prefix { $0 != UInt8(ascii: "]") }.trimmingBlanks(), "deadlines")
                if inDeadlines { deadlinesHeader = index }
                continue
            }
            guard inDeadlines, let equals = content.firstIndex(of: UInt8(ascii: "=")) else { continue }
            lastEntryInDeadlines = index
            guard content[..<equals].trimmingBlanks().elementsEqual(user.utf8) else { continue }
            // Replace just the value: keep the indentation, the spacing around '=' and any comment.
            // `content` is a slice of `line` (no '=' can precede it), so its indices are the line's.
            let afterEquals = line[(equals + 1)...]
            let valueStart = afterEquals.firstIndex { $0 != 0x20 && $0 != 0x09 } ?? afterEquals.endIndex
            let value = stripComment(afterEquals)
            let valueEnd = value.isEmpty ? afterEquals.endIndex : value.endIndex
            lines[index] = line[..<valueStart] + Array(date.utf8) + line[valueEnd...]
            return joined(finalNewline: hadFinalNewline)
        }
        let entry = Array("\(user) = \(date)".utf8)[...]
        if let insertAfter = lastEntryInDeadlines ?? deadlinesHeader {
            lines.insert(entry, at: insertAfter + 1)
        } else {
            if let last = lines.last, !last.isEmpty { lines.append([]) }
            lines += [Array("[deadlines]".utf8)[...], entry]
        }
        return joined(finalNewline: true)
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
