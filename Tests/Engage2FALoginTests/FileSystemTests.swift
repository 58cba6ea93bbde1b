import Foundation
import XCTest

@testable import Engage2FALogin

/// The file-system layer (Files/FileSystem.swift, Files/Errno.swift) through real system calls on
/// files in a fresh temporary directory.
final class FileSystemTests: XCTestCase {
    private func write(_ path: String, _ text: String, permissions: FilePermissions = .ownerReadWrite) throws {
        try writeFileAtomically(path, contents: Array(text.utf8), permissions: permissions)
    }

    func testOpenNeverFollowsASymbolicLinkUnlessAsked() throws {
        let directory = try temporaryDirectory(self)
        try write(directory + "/file", "contents")
        XCTAssertEqual(symlink(directory + "/file", directory + "/link"), 0)
        XCTAssertThrowsError(try FileDescriptor.open(directory + "/link", .readOnly)) {
            XCTAssertEqual($0 as? Errno, .tooManySymbolicLinkLevels)
        }
        XCTAssertThrowsError(try readTrustedFile(directory + "/link", owners: [geteuid()], maxSize: 100)) {
            XCTAssertEqual($0 as? TrustedFileError, .symbolicLink(path: directory + "/link"))
        }
        let followed = try FileDescriptor.open(directory + "/link", .readOnly, options: .followSymbolicLink)
        let status = try followed.closeAfter { try followed.status() }
        XCTAssertEqual(status.type, .regular)
        XCTAssertEqual(status.size, 8)
        XCTAssertEqual(try FileStatus(path: directory + "/link", followSymbolicLinks: false).type, .symbolicLink)
        XCTAssertEqual(try FileStatus(path: directory + "/link", followSymbolicLinks: true).type, .regular)
        XCTAssertThrowsError(try FileStatus(path: directory + "/none", followSymbolicLinks: false)) {
            XCTAssertEqual($0 as? Errno, .noSuchFileOrDirectory)
        }
    }

    func testStatusReportsTypeOwnerAndExactPermissions() throws {
        let directory = try temporaryDirectory(self)
        let path = directory + "/file"
        try write(path, "x", permissions: FilePermissions(rawValue: 0o640))
        var status = try FileStatus(path: path, followSymbolicLinks: false)
        XCTAssertEqual(status.type, .regular)
        XCTAssertEqual(status.owner, geteuid())
        XCTAssertEqual(status.group, getegid())
        XCTAssertEqual(status.permissions, [.ownerRead, .ownerWrite, .groupRead])
        XCTAssertEqual(status.permissions.description, "640")
        try FileSystem.setPermissions(path, FilePermissions(rawValue: 0o4755))
        status = try FileStatus(path: path, followSymbolicLinks: false)
        XCTAssertEqual(status.permissions.rawValue, 0o4755)
        XCTAssertEqual(status.permissions.accessBits, .directoryAllRead)
        XCTAssertEqual(try FileStatus(path: directory, followSymbolicLinks: false).type, .directory)
        XCTAssertEqual(mkfifo(directory + "/fifo", 0o600), 0)
        XCTAssertEqual(try FileStatus(path: directory + "/fifo", followSymbolicLinks: false).type, .other)
    }

    /// The refusal carries the permissions found and the rule broken, and says both.
    func testTrustedReadReportsWrongOwnerAndModeWithTheBits() throws {
        let path = try temporaryDirectory(self) + "/file"
        try write(path, "x", permissions: FilePermissions(rawValue: 0o646))
        XCTAssertThrowsError(try readTrustedFile(path, owners: [geteuid()], maxSize: 100, forbidden: .groupOrOthersWrite)) {
            XCTAssertEqual($0 as? TrustedFileError, .tooPermissive(path: path, permissions: FilePermissions(rawValue: 0o646), forbidden: .groupOrOthersWrite))
            XCTAssertEqual("\($0)", "\(path): mode 646 lets group or others write to it (only its owner may: chmod go-w)")
        }
        try FileSystem.setPermissions(path, FilePermissions(rawValue: 0o644))
        XCTAssertEqual(try readTrustedFile(path, owners: [geteuid()], maxSize: 100, forbidden: .groupOrOthersWrite), Array("x".utf8))
        XCTAssertThrowsError(try readTrustedFile(path, owners: [geteuid()], maxSize: 100)) {
            XCTAssertEqual("\($0)", "\(path): mode 644 lets group or others access it (only its owner may: chmod go-rwx)")
        }
        XCTAssertThrowsError(try readTrustedFile(path, owners: [4242, 4243], maxSize: 100, forbidden: .groupOrOthersWrite)) {
            XCTAssertEqual($0 as? TrustedFileError, .wrongOwner(path: path, owner: geteuid(), expected: [4242, 4243]))
            XCTAssertEqual("\($0)", "\(path): owned by uid \(geteuid()), expected 4242 or 4243")
        }
    }

    func testReadAllIsBoundedAndReadsOnWhenTheFileGrew() throws {
        let path = try temporaryDirectory(self) + "/file"
        try write(path, String(repeating: "a", count: 100))
        func readAll(expectedSize: Int, limit: Int, trusting: Bool = false) throws -> [UInt8] {
            let file = try FileDescriptor.open(path, .readOnly)
            return try file.closeAfter { try file.readAll(expectedSize: expectedSize, limit: limit, trustingExpectedSize: trusting) }
        }
        XCTAssertEqual(try readAll(expectedSize: 100, limit: 1000).count, 100)
        // Larger than the limit: one byte more than the limit comes back, never the whole file.
        XCTAssertEqual(try readAll(expectedSize: 100, limit: 10).count, 11)
        // Grown since fstat (it said 5): read on, up to the end.
        XCTAssertEqual(try readAll(expectedSize: 5, limit: 1000).count, 100)
        XCTAssertEqual(try readAll(expectedSize: 5, limit: 50).count, 51)
        // Trusting fstat's size skips only the read(2) that would say "end of file": growth is still seen.
        XCTAssertEqual(try readAll(expectedSize: 100, limit: 1000, trusting: true).count, 100)
        XCTAssertEqual(try readAll(expectedSize: 5, limit: 1000, trusting: true).count, 100)
        XCTAssertEqual(try readAll(expectedSize: 0, limit: 1000).count, 100)
    }

    func testWritesAreExclusiveWholeAndExactlyAsPermitted() throws {
        let directory = try temporaryDirectory(self)
        let path = directory + "/new"
        let umask = Foundation.umask(0o077)
        defer { _ = Foundation.umask(umask) }
        let file = try FileDescriptor.open(path, .writeOnly, options: .exclusiveCreate, permissions: .ownerReadWriteAllRead)
        let contents = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
        try file.closeAfter {
            try file.writeAll(contents)
            try file.setPermissions(.ownerReadWriteAllRead)
            try file.sync()
        }
        XCTAssertEqual(try FileStatus(path: path, followSymbolicLinks: false).permissions, .ownerReadWriteAllRead)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data(contents))
        XCTAssertThrowsError(try FileDescriptor.open(path, .writeOnly, options: .exclusiveCreate)) { XCTAssertEqual($0 as? Errno, .fileExists) }

        try FileSystem.rename(path, to: directory + "/renamed")
        XCTAssertThrowsError(try FileSystem.remove(path)) { XCTAssertEqual($0 as? Errno, .noSuchFileOrDirectory) }
        try FileSystem.remove(directory + "/renamed")
        // mkdir(2) is subject to the umask (077 here): callers that need a mode set it afterwards.
        try FileSystem.makeDirectory(directory + "/sub", permissions: .directoryAllSearch)
        XCTAssertEqual(try FileStatus(path: directory + "/sub", followSymbolicLinks: false).permissions, [.ownerRead, .ownerWrite, .ownerExecute])
        try FileSystem.setPermissions(directory + "/sub", .directoryAllSearch)
        XCTAssertEqual(try FileStatus(path: directory + "/sub", followSymbolicLinks: false).permissions, .directoryAllSearch)
        XCTAssertThrowsError(try FileSystem.makeDirectory(directory + "/sub", permissions: .directoryAllSearch)) {
            XCTAssertEqual($0 as? Errno, .fileExists)
        }
    }

    func testCloseAfterClosesWhetherTheBodyReturnsOrThrows() throws {
        let path = try temporaryDirectory(self) + "/file"
        try write(path, "x")
        let returned = try FileDescriptor.open(path, .readOnly)
        returned.closeAfter {}
        XCTAssertEqual(fcntl(returned.rawValue, F_GETFD), -1)
        XCTAssertEqual(errno, EBADF)
        let thrown = try FileDescriptor.open(path, .readOnly)
        XCTAssertThrowsError(try thrown.closeAfter { () throws(Errno) in throw .permissionDenied })
        XCTAssertEqual(fcntl(thrown.rawValue, F_GETFD), -1)
        // O_CLOEXEC on every descriptor opened.
        let open = try FileDescriptor.open(path, .readOnly)
        open.closeAfter { XCTAssertEqual(fcntl(open.rawValue, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC) }
    }

    func testALockHeldElsewhereTimesOutAsWouldBlock() throws {
        let path = try temporaryDirectory(self) + "/lock"
        let holder = try FileDescriptor.open(path, .readWrite, options: .create, permissions: .ownerReadWrite)
        try holder.closeAfter {
            try holder.lockExclusively(timeoutSeconds: 0)
            let waiter = try FileDescriptor.open(path, .readWrite)
            try waiter.closeAfter {
                XCTAssertThrowsError(try waiter.lockExclusively(timeoutSeconds: 0)) { XCTAssertEqual($0 as? Errno, .wouldBlock) }
            }
        }
        // Released by the close.
        let next = try FileDescriptor.open(path, .readWrite)
        try next.closeAfter { try next.lockExclusively(timeoutSeconds: 0) }
    }

    func testRelativeOpenStatusAndLinkTargetInADirectory() throws {
        let path = try temporaryDirectory(self)
        try write(path + "/zone", "TZif")
        XCTAssertEqual(symlink("zone", path + "/link"), 0)
        let root = try FileDescriptor.openRootDirectory()
        try root.closeAfter {
            let relative = String(path.dropFirst())
            let directory = try root.open(at: relative, .readOnly, options: [.directory, .followSymbolicLink])
            try directory.closeAfter {
                XCTAssertEqual(try directory.status().type, .directory)
                XCTAssertThrowsError(try directory.open(at: "link", .readOnly)) { XCTAssertEqual($0 as? Errno, .tooManySymbolicLinkLevels) }
                XCTAssertThrowsError(try directory.open(at: "zone", .readOnly, options: .directory)) { XCTAssertEqual($0 as? Errno, .notDirectory) }
                XCTAssertEqual(try directory.status(at: "link").type, .symbolicLink)
                XCTAssertEqual(try directory.symbolicLinkTarget(at: "link"), Array("zone".utf8))
                XCTAssertThrowsError(try directory.symbolicLinkTarget(at: "zone")) { XCTAssertEqual($0 as? Errno, Errno(rawValue: EINVAL)) }
                let zone = try directory.open(at: "zone", .readOnly)
                XCTAssertEqual(try zone.closeAfter { try zone.readAll(expectedSize: 4, limit: 100) }, Array("TZif".utf8))
            }
        }
    }

    /// A call interrupted by a signal (EINTR) is made again; any other failure is its Errno.
    func testInterruptedCallsAreRetried() {
        var calls = 0
        let result = valueOrErrno { () -> Int32 in
            calls += 1
            if calls < 3 {
                errno = EINTR
                return -1
            }
            return 7
        }
        XCTAssertEqual(try result.get(), 7)
        XCTAssertEqual(calls, 3)
        let failed = valueOrErrno { () -> Int32 in
            errno = EACCES
            return -1
        }
        XCTAssertEqual(failed, .failure(.permissionDenied))
        XCTAssertEqual(SystemError("open", .permissionDenied).description, "open: Permission denied")
    }
}
