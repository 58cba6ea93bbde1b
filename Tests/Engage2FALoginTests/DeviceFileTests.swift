import Foundation
import XCTest

@testable import Engage2FALogin
@testable import Engage2FAManagement

final class DeviceFileTests: XCTestCase {
    func testRoundTripWithSeveralDevicesAndRecoveryCodes() throws {
        var file = DeviceFile()
        try file.addDevice(name: "Pixel 8", secret: try newSecret(), parameters: OTPParameters(), now: 1_764_000_000)
        try file.addDevice(name: "  Work phone (100%) ", secret: try newSecret(), parameters: OTPParameters(algorithm: .sha512, digits: 8, period: 60), now: 1_764_000_100)
        let (codes, recovery) = try RecoveryCodes.generate(now: 1_764_000_200, iterations: 1_000)
        file.recovery = recovery
        XCTAssertEqual(file.devices[1].name, "Work phone (100%)")
        XCTAssertNotEqual(file.devices[0].id, file.devices[1].id)

        let parsed = try DeviceFile.parse(file.serialized(), path: "f")
        XCTAssertEqual(parsed, file)
        XCTAssertEqual(codes.count, 10)
        XCTAssertEqual(Set(codes).count, 10)
        // The file holds hashes, never a code or its canonical form.
        let text = String(decoding: file.serialized(), as: UTF8.self)
        for code in codes {
            XCTAssertFalse(text.contains(code))
            XCTAssertFalse(text.contains(code.replacingOccurrences(of: "-", with: "")))
        }
        XCTAssertEqual(parsed.recovery?.match(Array(codes[3].utf8)), 3)
        XCTAssertEqual(parsed.recovery?.match(Array(codes[3].uppercased().replacingOccurrences(of: "-", with: " ").utf8)), 3)
        XCTAssertNil(parsed.recovery?.match(Array("aaaaa-aaaaa".utf8)))
        XCTAssertNil(parsed.recovery?.match(Array("123456".utf8)))
    }

    func testEnrollmentStepIsKeptAndOptional() throws {
        var file = DeviceFile()
        try file.addDevice(name: "Pixel 8", secret: try newSecret(), parameters: OTPParameters(), now: 1_764_000_000, verifiedStep: 58_800_000)
        try file.addDevice(name: "Old phone", secret: try newSecret(), parameters: OTPParameters(), now: 1_700_000_000)
        let text = String(decoding: file.serialized(), as: UTF8.self)
        XCTAssertEqual(text.components(separatedBy: " verified-step=58800000 ").count, 2, text)
        let parsed = try DeviceFile.parse(file.serialized(), path: "f")
        XCTAssertEqual(parsed.devices.map(\.verifiedStep), [58_800_000, nil])
        XCTAssertEqual(parsed, file)
        let line = "engage2fa-devices 1\ndevice id=0123456789abcdef added=1 algorithm=SHA1 digits=6 period=30 verified-step=x secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ name=P\n"
        XCTAssertThrowsError(try DeviceFile.parse(Array(line.utf8), path: "f")) {
            XCTAssertEqual("\($0)", "f:2: bad verified-step 'x'")
        }
    }

    func testDeviceNamesAreCheckedAndUniqueIgnoringCase() throws {
        var file = DeviceFile()
        try file.addDevice(name: "Pixel 8", secret: try newSecret(), parameters: OTPParameters(), now: 0)
        XCTAssertThrowsError(try file.addDevice(name: "pixel 8", secret: try newSecret(), parameters: OTPParameters(), now: 0)) {
            XCTAssertEqual($0 as? CoreError, .deviceName(.duplicate("Pixel 8")))
        }
        XCTAssertThrowsError(try file.validatedNewName("   ")) { XCTAssertEqual($0 as? DeviceNameError, .empty) }
        XCTAssertThrowsError(try file.validatedNewName("evil\u{1b}[2J")) { XCTAssertEqual($0 as? DeviceNameError, .unsafeCharacter(0x1B)) }
        XCTAssertThrowsError(try file.validatedNewName(String(repeating: "x", count: 65))) { XCTAssertEqual($0 as? DeviceNameError, .tooLong(limit: 64)) }
        try file.addDevice(name: "Work", secret: try newSecret(), parameters: OTPParameters(), now: 0)
        XCTAssertEqual(file.device(named: "pIxEl 8")?.name, "Pixel 8")
        XCTAssertNil(file.device(named: "Pixel"))
        XCTAssertTrue(file.removeDevice(named: "PIXEL 8"))
        XCTAssertFalse(file.removeDevice(named: "Pixel 8"))
        XCTAssertEqual(file.devices.map(\.name), ["Work"])
    }

    /// Issue 13 C: what enrollment refuses, the parser refuses too, so a name written into the file by
    /// hand never reaches root's terminal or the log.
    func testEnrollmentRefusesControlBidiAndZeroWidthMarks() {
        let file = DeviceFile()
        for (name, scalar) in [("Phone\u{202E}", 0x202E), ("Pho\u{200B}ne", 0x200B), ("a\u{2066}b", 0x2066), ("soft\u{AD}hyphen", 0xAD),
                               ("nel\u{85}", 0x85), ("del\u{7F}", 0x7F), ("bom\u{FEFF}", 0xFEFF), ("line\u{2028}sep", 0x2028),
                               ("new\nline", 0x0A), ("tab\tinside", 0x09), ("Ph\u{1B}]0;x\u{07}", 0x1B), ("zwj\u{200D}", 0x200D)] {
            XCTAssertThrowsError(try file.validatedNewName(name), name) {
                XCTAssertEqual($0 as? DeviceNameError, .unsafeCharacter(UInt32(scalar)), name)
            }
        }
        XCTAssertEqual("\(DeviceNameError.unsafeCharacter(0x202E))", "a device name cannot contain a control or invisible formatting character (found U+202E)")
        XCTAssertEqual("\(DeviceNameError.unsafeCharacter(0x7))", "a device name cannot contain a control or invisible formatting character (found U+0007)")
        // Printable names of every script, emoji and a backslash are fine; blanks around are trimmed.
        for name in ["Pixel 8", "Jürgen's Handy", "電話", "هاتف", "📱 Phone", "C:\\phone", "Work phone (100%)"] {
            XCTAssertEqual(try file.validatedNewName("  \(name)\t"), name)
        }
        XCTAssertEqual(try file.validatedNewName(String(repeating: "é", count: 64)), String(repeating: "é", count: 64))
        XCTAssertThrowsError(try file.validatedNewName(String(repeating: "é", count: 65))) { XCTAssertEqual($0 as? DeviceNameError, .tooLong(limit: 64)) }
        XCTAssertEqual("\(DeviceNameError.duplicate("a\u{1B}b"))", "there is already a device named 'a\\x1bb'")
    }

    /// The rules of naming devices well are enrollment's, not the login's: a file edited by hand with two
    /// names equal but for case, or a name of more than 64 characters, still logs in (its names are only
    /// ever shown escaped), and enrollment flags it and refuses to change it.
    func testCaseTwinsAndLongNamesParseAndEnrollmentFlagsThem() throws {
        let device = "device added=1 algorithm=SHA1 digits=6 period=30 secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        let twins = "engage2fa-devices 1\n\(device) id=0123456789abcdef name=Phone\n\(device) id=0123456789abcdee name=PHONE\n"
        let file = try DeviceFile.parse(Array(twins.utf8), path: "/home/a/.engage2fa")
        XCTAssertEqual(file.devices.map(\.name), ["Phone", "PHONE"])
        XCTAssertEqual(file.namingProblem(path: "/home/a/.engage2fa"),
                       "/home/a/.engage2fa: duplicate device 'PHONE' (the same name as 'Phone', ignoring case): edit one of their name= (percent-encoded) in the file")
        XCTAssertThrowsError(try file.validatedNewName("phone")) { XCTAssertEqual($0 as? DeviceNameError, .duplicate("Phone")) }
        // Unicode's case mapping, which only the management library carries: É and é.
        let accents = "engage2fa-devices 1\n\(device) id=0123456789abcdef name=%C3%89cole\n\(device) id=0123456789abcdee name=%C3%A9cole\n"
        XCTAssertNotNil(try DeviceFile.parse(Array(accents.utf8), path: "f").namingProblem(path: "f"))
        let long = String(repeating: "%C3%A9", count: 65)
        let longFile = try DeviceFile.parse(Array("engage2fa-devices 1\n\(device) id=0123456789abcdef name=\(long)\n".utf8), path: "f")
        XCTAssertEqual(longFile.namingProblem(path: "f"),
                       "f: bad device name '\(String(repeating: "é", count: 32))…': a device name can be at most 64 characters; edit its name= (percent-encoded) in the file")
        XCTAssertNil(try DeviceFile.parse(Array("engage2fa-devices 1\n\(device) id=0123456789abcdef name=Phone\n".utf8), path: "f").namingProblem(path: "f"))
        // What enrollment writes always parses: its longest names stay within the login's bound in bytes.
        XCTAssertEqual(DeviceFile.problem(inNewName: String(repeating: "\u{10FFFD}", count: 65)), .tooLong(limit: 64))
        XCTAssertEqual(DeviceFile.problem(inNewName: String(repeating: "e\u{301}\u{302}", count: 60)), .tooManyBytes(limit: 256))
    }

    func testTheParserAppliesTheNameRule() {
        func error(_ encodedName: String) -> String {
            let text = "engage2fa-devices 1\n"
                + "device id=0123456789abcdef added=1 algorithm=SHA1 digits=6 period=30 secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ name=Phone\n"
                + "device id=0123456789abcdee added=1 algorithm=SHA1 digits=6 period=30 secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ name=\(encodedName)\n"
            do { _ = try DeviceFile.parse(Array(text.utf8), path: "/home/a/.engage2fa"); return "no error" } catch { return "\(error)" }
        }
        let fix = "; edit name= on this line (percent-encoded) to plain printable text"
        // The issue's attack: a title sequence, then CR LF and a forged row of `status`.
        XCTAssertEqual(error("Phone%1B%5D0%3Bowned%07%0D%0Aaud2%20%201%20"),
                       "/home/a/.engage2fa:3: bad device name 'Phone\\x1b]0;owned\\x07\\x0d\\x0aaud2  1 ':"
                       + " a device name cannot contain a control or invisible formatting character (found U+001B)" + fix)
        XCTAssertEqual(error("Phone%0Apam_engage2fa(sshd:auth)"),
                       "/home/a/.engage2fa:3: bad device name 'Phone\\x0apam_engage2fa(sshd:auth)':"
                       + " a device name cannot contain a control or invisible formatting character (found U+000A)" + fix)
        XCTAssertEqual(error("Phone%E2%80%AE"), "/home/a/.engage2fa:3: bad device name 'Phone\\u{202e}':"
                       + " a device name cannot contain a control or invisible formatting character (found U+202E)" + fix)
        XCTAssertTrue(error("Pho%E2%80%8Bne").contains("(found U+200B)"))
        XCTAssertTrue(error("Pho%C2%9Bne").contains("(found U+009B)"))
        XCTAssertEqual(error("%20Phone"), "/home/a/.engage2fa:3: bad device name ' Phone': a device name cannot start or end with a space" + fix)
        XCTAssertEqual(error(""), "/home/a/.engage2fa:3: bad device name '': a device name cannot be empty" + fix)
        // A login bounds a name's bytes; its length in characters is enrollment's rule (below).
        XCTAssertEqual(error(String(repeating: "x", count: 256)), "no error")
        XCTAssertEqual(error(String(repeating: "x", count: 257)),
                       "/home/a/.engage2fa:3: bad device name '\(String(repeating: "x", count: 64))…': a device name can be at most 256 bytes long (UTF-8)" + fix)
        XCTAssertEqual(error("%FF"), "/home/a/.engage2fa:3: bad name (not percent-encoded UTF-8)")
        // A long name is quoted in part only.
        XCTAssertLessThan(error(String(repeating: "%1B", count: 500)).utf8.count, 400)
        XCTAssertEqual(error("Tablet%20%E2%80%94%20J%C3%BCrgen"), "no error")
        XCTAssertEqual(error(String(repeating: "%C3%A9", count: 64)), "no error")  // 64 characters, 128 bytes
    }

    func testParseErrorsQuoteBytesEscapedAndShort() {
        func error(_ line: String) -> String {
            do { _ = try DeviceFile.parse(Array(("engage2fa-devices 1\n" + line).utf8), path: "f"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("dev\u{1B}]0;owned\u{07}ice\u{9B}2J\u{202E} id=1"), "f:2: unknown record 'dev\\x1b]0;owned\\x07ice\\x9b2J\\u{202e}'")
        XCTAssertEqual(error("device \u{1B}[2J"), "f:2: malformed field '\\x1b[2J'")
        XCTAssertEqual(error("device id=\u{202E}"), "f:2: bad id '\\u{202e}'")
        XCTAssertEqual(error("recovery-codes salt=00 salt=\u{7}"), "f:2: duplicate field 'salt'")
        XCTAssertEqual(error("recovery-codes salt=000102030405060708090a0b0c0d0e0f iterations=1000 created=1 x\u{85}=1"), "f:2: unknown field 'x\\x85'")
        XCTAssertEqual(error(String(repeating: "\u{1B}", count: 5000)), "f:2: unknown record '\(String(repeating: "\\x1b", count: 16))…'")
    }

    func testAFieldCutOffOrOversizedAtTheEndOfTheFileIsAnError() {
        func error(_ text: String) -> String {
            do { _ = try DeviceFile.parse(Array(text.utf8), path: "f"); return "no error" } catch { return "\(error)" }
        }
        let header = "engage2fa-devices 1\n"
        XCTAssertEqual(error("engage2fa-devi"), "f:1: expected 'engage2fa-devices 1' (an unknown version or not a device file)")
        XCTAssertEqual(error(header + "device id="), "f:2: bad id ''")
        XCTAssertEqual(error(header + "device "), "f:2: malformed field ''")
        XCTAssertEqual(error(header + "device id=0123456789abcdef added"), "f:2: malformed field 'added'")
        XCTAssertEqual(error(header + "device id=0123456789abcdef added=99999999999999999999"), "f:2: bad added '99999999999999999999'")
        XCTAssertEqual(error(header + "recovery-codes salt=" + String(repeating: "0", count: 100_000)), "f:2: bad salt")
    }

    func testParseErrorsNameTheLine() {
        func error(_ text: String) -> String {
            do { _ = try DeviceFile.parse(Array(text.utf8), path: "/home/a/.engage2fa"); return "no error" } catch { return "\(error)" }
        }
        let header = "engage2fa-devices 1\n"
        let good = "device id=0123456789abcdef added=1 algorithm=SHA1 digits=6 period=30 secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ name=Phone"
        XCTAssertEqual(error(""), "/home/a/.engage2fa:1: empty file (expected 'engage2fa-devices 1')")
        XCTAssertEqual(error("engage2fa-devices 2\n"), "/home/a/.engage2fa:1: expected 'engage2fa-devices 1' (an unknown version or not a device file)")
        XCTAssertEqual(error(header + "# c\n" + good.replacingOccurrences(of: "digits=6", with: "digits=9")), "/home/a/.engage2fa:3: bad digits '9'")
        XCTAssertEqual(error(header + good.replacingOccurrences(of: " name=Phone", with: "")), "/home/a/.engage2fa:2: missing field 'name'")
        XCTAssertEqual(error(header + good + " colour=red"), "/home/a/.engage2fa:2: unknown field 'colour'")
        XCTAssertEqual(error(header + good + "\n" + good), "/home/a/.engage2fa:3: duplicate device 'Phone'")
        XCTAssertEqual(error(header + good.replacingOccurrences(of: "secret=GEZD", with: "secret=GEZ1")), "/home/a/.engage2fa:2: bad secret: invalid base32 character '1' at position 4 (expected A–Z, 2–7, spaces or hyphens)")
        XCTAssertEqual(error(header + "recovery hash=00\n"), "/home/a/.engage2fa:2: recovery line before recovery-codes")
        XCTAssertEqual(error(header + "\u{ff}\n"), "/home/a/.engage2fa:2: unknown record 'ÿ'")
        XCTAssertTrue(error(header + good).hasPrefix("no error"))
    }

    /// A login reads the devices before its prompt and again under the state lock; the second read is
    /// skipped only when the file is provably the one read first, unchanged.
    func testDevicesAreReadAgainUnderTheLockUnlessProvablyUnchanged() throws {
        let directory = try temporaryDirectory(self)
        var config = Config()
        config.secretPath = directory + "/devices"
        let account = Account(name: "tester", uid: geteuid(), gid: getegid(), home: directory)
        let location = DeviceFileLocation(account: account, config: config)
        func file(_ name: String) throws -> DeviceFile {
            var file = DeviceFile()
            try file.addDevice(name: name, secret: try newSecret(), parameters: OTPParameters(), now: 1_764_000_000)
            return file
        }
        let first = try file("Phone"), second = try file("Other"), third = try file("Third")
        XCTAssertEqual(first.serialized().count, second.serialized().count)
        try writeFileAtomically(location.path, contents: first.serialized())
        let snapshot = try location.loadSnapshot()
        XCTAssertEqual(snapshot.file, first)

        // Rewritten in place (same inode, same size) just after the read: a file changed less than
        // DeviceFileLocation.settledNanoseconds before a read is always read again, whatever its stamps say.
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: location.path))
        handle.write(Data(second.serialized()))
        handle.closeFile()
        XCTAssertEqual(try location.load(unlessUnchangedSince: snapshot), second)

        // Left alone long enough before a read (here: the read said to be that much later) and unchanged
        // since: the snapshot's devices, not read again (the snapshot is doctored to show it).
        var aged = try location.loadSnapshot()
        aged.readAt = try XCTUnwrap(aged.version).changedNanoseconds + DeviceFileLocation.settledNanoseconds + 1
        aged.file = first
        XCTAssertEqual(try location.load(unlessUnchangedSince: aged), first)
        // Its mode changed: read again.
        XCTAssertEqual(chmod(location.path, 0o400), 0)
        XCTAssertEqual(try location.load(unlessUnchangedSince: aged), second)
        aged = try location.loadSnapshot()
        aged.readAt = try XCTUnwrap(aged.version).changedNanoseconds + DeviceFileLocation.settledNanoseconds + 1
        // Replaced (another inode, as enroll's rename or a restored backup): read again.
        try writeFileAtomically(location.path, contents: third.serialized())
        XCTAssertEqual(try location.load(unlessUnchangedSince: aged), third)
        // Removed: read again, no devices.
        XCTAssertEqual(unlink(location.path), 0)
        XCTAssertNil(try location.load(unlessUnchangedSince: aged))
    }

    func testTrustedFileChecks() throws {
        let directory = try temporaryDirectory(self)
        let path = directory + "/devices"
        try writeFileAtomically(path, contents: DeviceFile().serialized())
        XCTAssertNotNil(try DeviceFile.load(path: path, owners: [geteuid()]))
        XCTAssertNil(try DeviceFile.load(path: directory + "/none", owners: [geteuid()]))

        func loadError(_ path: String, owners: FileOwners = [geteuid()]) -> TrustedFileError? {
            do { _ = try DeviceFile.load(path: path, owners: owners); return nil } catch .file(let error) { return error } catch { return nil }
        }
        XCTAssertEqual(chmod(path, 0o640), 0)
        XCTAssertEqual(loadError(path), .tooPermissive(path: path, permissions: FilePermissions(rawValue: 0o640), forbidden: .groupOrOthersAny))
        XCTAssertEqual(chmod(path, 0o604), 0)
        XCTAssertEqual(loadError(path)?.description, "\(path): mode 604 lets group or others access it (only its owner may: chmod go-rwx)")
        XCTAssertEqual(chmod(path, 0o600), 0)
        XCTAssertEqual(loadError(path, owners: [4242]), .wrongOwner(path: path, owner: geteuid(), expected: [4242]))

        let link = directory + "/link"
        XCTAssertEqual(symlink(path, link), 0)
        XCTAssertEqual(loadError(link), .symbolicLink(path: link))
        XCTAssertEqual(mkdir(directory + "/dir", 0o700), 0)
        XCTAssertEqual(loadError(directory + "/dir"), .notRegularFile(path: directory + "/dir"))
        XCTAssertEqual(mkfifo(directory + "/fifo", 0o600), 0)
        XCTAssertEqual(loadError(directory + "/fifo"), .notRegularFile(path: directory + "/fifo"))

        let big = directory + "/big"
        try writeFileAtomically(big, contents: [UInt8](repeating: UInt8(ascii: "#"), count: DeviceFile.maxSize + 1))
        XCTAssertEqual(loadError(big), .tooLarge(path: big, size: DeviceFile.maxSize + 1, limit: DeviceFile.maxSize))
    }

    func testOwnershipCheckAgainstAnotherUser() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to create a file owned by another user") }
        let directory = try temporaryDirectory(self)
        let path = directory + "/devices"
        try writeFileAtomically(path, contents: DeviceFile().serialized(), owner: (uid: 4242, gid: 4242))
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        XCTAssertEqual(info.st_uid, 4242)
        XCTAssertNotNil(try DeviceFile.load(path: path, owners: [4242]))
        XCTAssertThrowsError(try DeviceFile.load(path: path, owners: [4243, 0])) {
            XCTAssertEqual($0 as? DeviceFileError, .file(.wrongOwner(path: path, owner: 4242, expected: [4243, 0])))
        }
    }

    func testAtomicWriteReplacesAndLeavesNoTemporaryFile() throws {
        let directory = try temporaryDirectory(self)
        let path = directory + "/f"
        try writeFileAtomically(path, contents: Array("old".utf8))
        let oldInode = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
        umask(0o022)
        try writeFileAtomically(path, contents: Array("new".utf8), permissions: .ownerReadWrite)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new")
        XCTAssertNotEqual(try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int, oldInode)
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int), 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["f"])
        // A directory we cannot write into fails cleanly and leaves the old file alone.
        XCTAssertThrowsError(try writeFileAtomically(directory + "/missing/f", contents: []))
    }
}
