import Engage2FALogin
import Engage2FAManagement

/// Any bytes as a device file: never a crash, whatever parses survives a write–read round trip, and
/// no parsed device name holds a byte that must not reach a terminal or a log line (issue 13 C): the
/// parser applies the login's rule of names, `DeviceFile.problem(inName:)` (the rules of naming devices well,
/// `problem(inNewName:)` and `namingProblem`, are enrollment's: a parsed file may break them, and is still
/// written back as it was read).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let file: DeviceFile
    do {
        file = try DeviceFile.parse(bytes, path: "fuzz")
    } catch {
        // The error quotes bytes of the file: escaped, so it is safe to print and log as it is.
        let message = "\(error)"
        precondition(!message.unicodeScalars.contains { isUnsafeForDisplay($0.value) }, "unsafe scalar in a parse error: \(message.debugDescription)")
        return 0
    }
    for device in file.devices {
        precondition(!device.name.unicodeScalars.contains { isUnsafeForDisplay($0.value) }, "unsafe scalar in a device name: \(device.name.debugDescription)")
        precondition(DeviceFile.problem(inName: device.name) == nil, "a name the login's rule refuses was parsed: \(device.name.debugDescription)")
    }
    let again = try? DeviceFile.parse(file.serialized(), path: "fuzz")
    precondition(again == file, "device file did not survive a round trip")
    return 0
}
