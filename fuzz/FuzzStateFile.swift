import Engage2FACore

/// Any bytes as a state file: never a crash, and what parses survives a write–read round trip.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let state = try? UserState.parse(bytes, path: "fuzz") else { return 0 }
    precondition((try? UserState.parse(state.serialized(), path: "fuzz")) == state, "state did not survive a round trip")
    return 0
}
