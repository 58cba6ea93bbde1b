import XCTest

@testable import Engage2FALogin
@testable import Engage2FAManagement

/// The enrollment socket's list/status/remove/recovery-codes lines: every client line and every answer
/// line is attacker input on the other side (hostile names, over-long fields, numbers out of range).
final class EnrollProtocolTests: XCTestCase {
    func testRequestsRoundTripWithHostileNames() {
        let requests: [EnrollRequest] = [.list, .status, .remove(name: "a b\nc\u{1b}[2J", proof: Array("123456".utf8)),
                                         .remove(name: "", proof: []), .recoveryCodes(proof: Array("abcde-fghij".utf8)), .recoveryCodes(proof: [])]
        for request in requests {
            var line = request.line
            XCTAssertEqual(line.popLast(), 0x0A)
            XCTAssertFalse(line.contains(0x0A))
            XCTAssertEqual(EnrollRequest(line: line), request)
        }
    }

    func testMalformedRequestsAreRefused() {
        for text in ["", "list x", "status 00", "remove", "remove 61", "remove zz 00", "remove 61 00 00", "recovery-codes",
                     "recovery-codes 0", "remove ff 00", "check 61 62", "LIST",
                     "recovery-codes " + String(repeating: "30", count: EnrollRequest.maxProofBytes + 1)] {
            XCTAssertNil(EnrollRequest(line: Array(text.utf8)), text)
        }
    }

    func testAnswersRoundTripAndStayBounded() {
        let device = ListedDevice(name: "Phone \u{1b}]0;x\u{7}", addedAt: 1_800_000_000, parameters: OTPParameters(algorithm: .sha256, digits: 8, period: 60))
        let answers: [EnrollAnswer] = [.devices([device], total: 1, recoveryCodesLeft: 9, unusable: 2), .devices([], total: 0, recoveryCodesLeft: 0, unusable: 0),
                                       .recoveryCodes(["abcde-fghij", "klmno-pqrst"], replaced: 8)]
        for answer in answers {
            var line = answer.line
            XCTAssertEqual(line.popLast(), 0x0A)
            XCTAssertEqual(EnrollAnswer(line: line), answer)
        }
        // A directory holding many long names still gives one line the client takes, names cut on a scalar.
        let long = ListedDevice(name: String(repeating: "é", count: 300), addedAt: 0, parameters: OTPParameters())
        let line = EnrollAnswer.devices(Array(repeating: long, count: 80), total: 80, recoveryCodesLeft: 0, unusable: 0).line
        XCTAssertLessThanOrEqual(line.count, FleetConnection.maxAnswer)
        guard case .devices(let listed, let total, _, _)? = EnrollAnswer(line: Array(line.dropLast())) else { return XCTFail("not parsed") }
        XCTAssertEqual(listed.count, EnrollAnswer.maxListed)
        XCTAssertEqual(total, 80)
        XCTAssertEqual(listed[0].name, String(repeating: "é", count: EnrollAnswer.maxNameBytes / 2))
    }

    func testMalformedAnswersAreRefused() {
        for text in ["devices", "devices 1 0", "devices 1 0 0 61:0:SHA1:6", "devices 1 0 0 61:0:SHA1:9:30", "devices 1 0 0 61:0:MD5:6:30",
                     "devices 1 0 0 61:0:SHA1:6:5", "devices -1 0 0", "devices 1 99999 0", "devices 1 0 0 ff:0:SHA1:6:30",
                     "recovery-codes", "recovery-codes x", "recovery-codes 0 zz", "done 61"] {
            XCTAssertNil(EnrollAnswer(line: Array(text.utf8)), text)
        }
    }
}
