import Engage2FALogin
import Engage2FAManagement

/// Any bytes as one line from engage2fad or to it (the module and the enroll command read answers; engage2fad
/// reads requests, recovery-code hashes included): never a crash; what parses writes back as one line that
/// parses to the same request or answer. The enrollment socket's own lines (list, status, remove,
/// recovery-codes: EnrollProtocol) likewise, their names and proofs bounded.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let request = FleetRequest(line: bytes) {
        let line = request.line
        precondition(line.last == 0x0A && line.filter { $0 == 0x0A }.count == 1, "a request is one line")
        precondition(FleetRequest(line: Array(line.dropLast())) == request, "request round trip")
        if case .check(_, let typed, let hashes) = request {
            precondition(typed.count <= FleetRequest.maxTypedBytes, "typed answer bounded")
            precondition(hashes.count <= FleetRequest.maxRecoveryHashes && hashes.allSatisfy { $0.count == FleetRequest.recoveryHashBytes }, "hashes bounded")
        }
    }
    if let answer = FleetAnswer(line: bytes) {
        let line = answer.line
        precondition(line.last == 0x0A && line.filter { $0 == 0x0A }.count == 1, "an answer is one line")
        precondition(FleetAnswer(line: Array(line.dropLast())) == answer, "answer round trip")
        if case .snapshot(let snapshot) = answer {
            precondition(snapshot.recoveryIterations <= RecoveryCodes.maxIterations && (snapshot.recoverySalt?.count ?? 1) <= 64, "recovery parameters bounded")
        }
    }
    if let request = EnrollRequest(line: bytes) {
        let line = request.line
        precondition(line.last == 0x0A && line.filter { $0 == 0x0A }.count == 1, "an enrollment request is one line")
        precondition(EnrollRequest(line: Array(line.dropLast())) == request, "enrollment request round trip")
        if case .remove(_, let proof) = request { precondition(proof.count <= EnrollRequest.maxProofBytes, "proof bounded") }
        if case .recoveryCodes(let proof) = request { precondition(proof.count <= EnrollRequest.maxProofBytes, "proof bounded") }
    }
    if let answer = EnrollAnswer(line: bytes) {
        let line = answer.line
        precondition(line.last == 0x0A && line.filter { $0 == 0x0A }.count == 1, "an enrollment answer is one line")
        precondition(EnrollAnswer(line: Array(line.dropLast())) == answer, "enrollment answer round trip")
        if case .devices(let devices, _, _, _) = answer {
            precondition(devices.count <= EnrollAnswer.maxListed && devices.allSatisfy { $0.name.utf8.count <= EnrollAnswer.maxNameBytes }, "listing bounded")
        }
    }
    return 0
}
