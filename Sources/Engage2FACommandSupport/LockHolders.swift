import Engage2FALogin
import Engage2FAManagement
import Glibc

/// The processes that hold a flock(2) on `path`, from /proc/locks (`N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE …`,
/// device numbers in hex), each with its command name from /proc/PID/comm: so that an admin told "still
/// locked" learns which process to look at (a login stopped with SIGSTOP by its own user, say).
public func lockHolders(of path: String) -> [(pid: Int32, command: String)] {
    guard let status = try? FileStatus(path: path, followSymbolicLinks: true), let file = fopen("/proc/locks", "r") else { return [] }
    defer { fclose(file) }
    let device = UInt(status.device)
    let major = (device >> 8) & 0xfff | (device >> 32) & ~0xfff
    let minor = device & 0xff | (device >> 12) & ~0xff
    var holders: [(Int32, String)] = []
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, Int32(line.count), file) != nil {
        let fields = text(of: line).split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6, fields[1] == "FLOCK", let pid = Int32(fields[4]) else { continue }
        let id = fields[5].split(separator: ":")
        guard id.count == 3, UInt(id[0], radix: 16) == major, UInt(id[1], radix: 16) == minor, UInt64(id[2]) == status.inode else { continue }
        var command = "?"
        if let comm = fopen("/proc/\(pid)/comm", "r") {
            var name = [CChar](repeating: 0, count: 64)
            if fgets(&name, Int32(name.count), comm) != nil { command = text(of: name).split(separator: "\n").first.map(String.init) ?? "?" }
            fclose(comm)
        }
        holders.append((pid, displayText(command, limit: 32)))
    }
    return holders
}

/// The text of a NUL-terminated buffer.
private func text(of buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// " (held by PID 123, sudo)" for a lock timeout; empty when nobody is seen holding it.
public func lockHolderText(_ path: String) -> String {
    let holders = lockHolders(of: path)
    guard !holders.isEmpty else { return "" }
    return " (held by " + holders.map { "PID \($0.pid), \($0.command)" }.joined(separator: "; ") + ": see ps -p PID, kill it if it is stuck)"
}

/// Whether process `pid` is stopped (state T or t in /proc/PID/stat): frozen by SIGSTOP or a debugger.
public func isStopped(_ pid: Int32) -> Bool {
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return false }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 1024)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return false }
    let line = text(of: buffer)
    // "PID (COMM) STATE …": COMM may hold spaces and parentheses, so the state follows the last ')'.
    guard let close = line.lastIndex(of: ")") else { return false }
    let rest = line[line.index(after: close)...].drop { $0 == " " }
    return rest.first == "T" || rest.first == "t"
}
