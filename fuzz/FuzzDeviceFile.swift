import Engage2FACore

/// Any bytes as a device file: never a crash, and whatever parses survives a write–read round trip.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let file = try? DeviceFile.parse(bytes, path: "fuzz") else { return 0 }
    let again = try? DeviceFile.parse(file.serialized(), path: "fuzz")
    precondition(again == file, "device file did not survive a round trip")
    return 0
}
