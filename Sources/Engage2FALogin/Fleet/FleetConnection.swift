import CEngageSys

/// Why engage2fad gave no usable answer.
public enum FleetConnectionError: Error, Equatable {
    /// Nothing listens at the socket (the service is not running), or it is not root's.
    case noService(String)
    /// No whole answer within the time allowed.
    case timedOut
    case broken(String)

    public var description: String {
        switch self {
        case .noService(let reason): "engage2fad not reachable: " + reason
        case .timedOut: "engage2fad did not answer in time"
        case .broken(let reason): "engage2fad: " + reason
        }
    }
}

/// One connection to this host's engage2fad: request lines out, answer lines back, each answer awaited
/// for at most the time left of the budget given at the start, so that a login never waits longer.
public final class FleetConnection {
    public static let maxAnswer = 64 * 1024
    let fd: Int32
    /// How long each answer may take.
    let budgetMilliseconds: Int64

    /// Connects to the service at `path`, which must run as `serverUID` (root: only root can have made the socket).
    public init(path: String, budgetMilliseconds: Int64, serverUID: uid_t = 0) throws(FleetConnectionError) {
        var peer: uid_t = 0
        let fd = path.withCString { e2f_unix_connect($0, &peer) }
        guard fd >= 0 else {
            let error = SystemError("connect")
            throw .noService(displayText(path, limit: 128) + ": " + error.description)
        }
        guard peer == serverUID else {
            close(fd)
            throw .noService(displayText(path, limit: 128) + " is served by uid " + String(peer) + ", not " + String(serverUID))
        }
        self.fd = fd
        self.budgetMilliseconds = budgetMilliseconds
    }

    deinit { close(fd) }

    public func ask(_ request: FleetRequest) throws(FleetConnectionError) -> FleetAnswer {
        let line = try exchange(request.line)
        guard let answer = FleetAnswer(line: line) else { throw .broken("malformed answer") }
        return answer
    }

    /// Sends one line and reads one line back (without its '\n').
    public func exchange(_ line: [UInt8]) throws(FleetConnectionError) -> [UInt8] {
        let deadline = monotonicMilliseconds() + budgetMilliseconds
        var sent = 0
        while sent < line.count {
            let wrote = line.withUnsafeBytes { buffer in write(fd, buffer.baseAddress! + sent, buffer.count - sent) }
            if wrote < 0 {
                if e2f_errno() == EINTR { continue }
                throw .broken(SystemError("write").description)
            }
            sent += wrote
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while true {
            let left = deadline - monotonicMilliseconds()
            guard left > 0, e2f_wait_readable(fd, Int32(clamping: left)) == 1 else { throw .timedOut }
            let got = chunk.withUnsafeMutableBytes { buffer in read(fd, buffer.baseAddress!, buffer.count) }
            if got < 0 {
                if e2f_errno() == EINTR { continue }
                throw .broken(SystemError("read").description)
            }
            guard got > 0 else { throw .broken("connection closed") }
            if let end = chunk[..<got].firstIndex(of: 0x0A) {
                answer.append(contentsOf: chunk[..<end])
                return answer
            }
            answer.append(contentsOf: chunk[..<got])
            guard answer.count <= FleetConnection.maxAnswer else { throw .broken("answer too long") }
        }
    }
}

func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
