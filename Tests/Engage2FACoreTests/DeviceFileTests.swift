import Foundation
import XCTest

@testable import Engage2FACore

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
        XCTAssertThrowsError(try file.validatedNewName("evil\u{1b}[2J")) { XCTAssertEqual($0 as? DeviceNameError, .controlCharacter) }
        XCTAssertThrowsError(try file.validatedNewName(String(repeating: "x", count: 65))) { XCTAssertEqual($0 as? DeviceNameError, .tooLong(limit: 64)) }
        XCTAssertTrue(file.removeDevice(named: "PIXEL 8"))
        XCTAssertFalse(file.removeDevice(named: "Pixel 8"))
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

    func testTrustedFileChecks() throws {
        let directory = try temporaryDirectory(self)
        let path = directory + "/devices"
        try writeFileAtomically(path, contents: DeviceFile().serialized())
        XCTAssertNotNil(try DeviceFile.load(path: path, owners: [geteuid()]))
        XCTAssertNil(try DeviceFile.load(path: directory + "/none", owners: [geteuid()]))

        func loadError(_ path: String, owners: [uid_t] = [geteuid()]) -> TrustedFileError? {
            do { _ = try DeviceFile.load(path: path, owners: owners); return nil } catch .file(let error) { return error } catch { return nil }
        }
        XCTAssertEqual(chmod(path, 0o640), 0)
        XCTAssertEqual(loadError(path), .tooPermissive(path: path, mode: S_IFREG | 0o640))
        XCTAssertEqual(chmod(path, 0o604), 0)
        XCTAssertEqual(loadError(path)?.description, "\(path): mode 604 lets group or others access it (expected 600)")
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
        try writeFileAtomically(path, contents: Array("new".utf8), mode: 0o600)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new")
        XCTAssertNotEqual(try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int, oldInode)
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int), 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["f"])
        // A directory we cannot write into fails cleanly and leaves the old file alone.
        XCTAssertThrowsError(try writeFileAtomically(directory + "/missing/f", contents: []))
    }
}
