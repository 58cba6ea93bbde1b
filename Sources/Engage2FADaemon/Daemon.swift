// engage2fad: fleet mode's host service. It alone holds this host's directory credentials and talks
// LDAP, so that the PAM module stays free of libldap and engage2fa-enroll needs no setuid.
//   engage2fad [--config PATH]
// Sockets: systemd's (socket activation: login.socket first, enroll.socket second), or made here in
// fleet_socket_dir: login.socket (0600, the module, as root) and enroll.socket (0666, engage2fa-enroll;
// the caller is identified by SO_PEERCRED). Each connection is served by a child process of its own.

import CEngageSys
import Engage2FADirectory
import Engage2FALogin
import Engage2FAManagement
import Glibc

func parseArguments() -> String {
    var configPath = Config.defaultPath
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
    switch argument {
    case "--config":
        guard let path = arguments.popFirst(), path.hasPrefix("/") else { fatalUsage("--config needs an absolute path") }
        configPath = path
    case "-V", "--version":
        print("engage2fad \(engage2faVersion)")
        exit(0)
    default:
        fatalUsage("unknown argument '\(displayText(argument, limit: 64))'")
    }
    }
    return configPath
}

func printError(_ message: String) {
    let line = Array(("engage2fad: " + message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress!, $0.count) }
}

func fatalUsage(_ message: String) -> Never {
    printError("\(message)\nusage: engage2fad [--config PATH]")
    exit(64)
}

func loadConfig(_ configPath: String) -> Config? {
    switch Config.load(path: configPath) {
    case .valid(let config) where config.fleet.store == .ldap: return config
    case .valid: serviceLog(LOG_ERR, "\(configPath): store is not ldap; nothing to serve"); return nil
    case .invalid(_, let errors): serviceLog(LOG_ERR, errors.map(\.description).joined(separator: "; ")); return nil
    case .unreadable(let reason): serviceLog(LOG_ERR, reason); return nil
    }
}

/// engage2fad's main: run by the program engage2fa when it is called by that name (one program, one
/// copy of the Swift runtime on the host, for both commands and the service).
public func runDaemon() -> Never {
    let configPath = parseArguments()
    guard geteuid() == 0 else {
        printError("must run as root (it reads the host's directory credentials)")
        exit(77)
    }
    guard let startConfig = loadConfig(configPath) else {
        printError("\(configPath) does not configure store = ldap (see the system log)")
        exit(78)
    }

    let loginListener: Int32
    let enrollListener: Int32
    if let count = getenv("LISTEN_FDS").flatMap({ Int32(String(cString: $0)) }), count >= 2,
       getenv("LISTEN_PID").flatMap({ pid_t(String(cString: $0)) }) == getpid() {
        // Named by the socket units (FileDescriptorName=login / enroll); without names, in that order.
        let names = getenv("LISTEN_FDNAMES").map { String(cString: $0).split(separator: ":").map(String.init) } ?? []
        loginListener = names.count >= 2 && names[1] == "login" ? 4 : 3
        enrollListener = loginListener == 3 ? 4 : 3
    } else {
        let folder = startConfig.fleet.socketDirectory
        _ = folder.withCString { mkdir($0, 0o755) }
        loginListener = startConfig.fleet.loginSocketPath.withCString { e2f_unix_listen($0, 0o600) }
        enrollListener = startConfig.fleet.enrollSocketPath.withCString { e2f_unix_listen($0, 0o666) }
        guard loginListener >= 0, enrollListener >= 0 else {
            printError("cannot listen in \(folder): \(String(cString: strerror(errno)))")
            exit(71)
        }
    }
    Directory.prepareLibrary(settings: startConfig.fleet)
    // Not SIG_IGN (which a parent may have left in place): the loop below reaps, and counts, its children.
    signal(SIGCHLD, SIG_DFL)
    signal(SIGPIPE, SIG_IGN)
    serviceLog(LOG_INFO, "serving \(startConfig.fleet.loginSocketPath) and \(startConfig.fleet.enrollSocketPath) for \(configPath)")

    /// Enrollment connections may wait minutes for a person, each in a root child: any local user can open
    /// them, so their number is bounded (per user and in all), and a flood of them never takes the forks
    /// that the module's logins need. Logins (root only) are not limited.
    let maxEnrollmentsPerUser = 4
    let maxEnrollments = 32
    /// The enrollment children still running, and whose they are.
    var enrollmentChildren: [pid_t: uid_t] = [:]

    while true {
        // Children are reaped here (not by SIGCHLD = SIG_IGN) so that the running enrollments are known.
        while true {
            let ended = waitpid(-1, nil, WNOHANG)
            guard ended > 0 else { break }
            enrollmentChildren[ended] = nil
        }
        // The next child's directory connection, opened and bound ahead of its login (SpareConnection.swift).
        Directory.keepSpare(settings: startConfig.fleet)
        // Wakes up every second to reap even when nobody connects (sooner when a spare is due).
        let ready = e2f_wait_either(loginListener, enrollListener, Directory.millisecondsUntilSpare(atMost: 1000))
        guard ready >= 0 else { continue }
        let listener = ready == 0 ? loginListener : enrollListener
        let client = accept(listener, nil, nil)
        guard client >= 0 else { continue }
        var peer: uid_t = 0, group: gid_t = 0
        let enrollment = listener == enrollListener
        if enrollment {
            guard e2f_peer_credentials(client, &peer, &group) == 0 else { close(client); continue }
            let own = enrollmentChildren.values.filter { $0 == peer }.count
            if own >= maxEnrollmentsPerUser || enrollmentChildren.count >= maxEnrollments {
                send(client, .failed(own >= maxEnrollmentsPerUser
                    ? "you have \(own) enrollments open already: finish or end one first; nothing was saved"
                    : "too many enrollments are open on this host: try again in a few minutes; nothing was saved"))
                close(client)
                continue
            }
        }
        let child = e2f_fork()
        if child == 0 {
            close(loginListener)
            close(enrollListener)
            serve(client: client, enrollment: enrollment, configPath: configPath)
            _exit(0)
        }
        if child > 0 { Directory.handSpareToChild() }
        if child > 0 && enrollment { enrollmentChildren[child] = peer }
        close(client)
    }
}

/// How long one connection may stay open in all: a user at the enrollment prompt needs minutes, and a
/// connection that trickles a byte now and then must not hold one of the host's few slots for ever.
let connectionLifetimeMilliseconds: Int64 = 15 * 60 * 1000

func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

/// One connection: request lines until the client hangs up, stays silent for ten minutes (a user at the
/// prompt), or has been open for connectionLifetimeMilliseconds.
func serve(client: Int32, enrollment: Bool, configPath: String) {
    let closesAt = monotonicMilliseconds() + connectionLifetimeMilliseconds
    var uid: uid_t = 0, gid: gid_t = 0
    guard e2f_peer_credentials(client, &uid, &gid) == 0 else { return }
    guard let config = loadConfig(configPath) else {
        send(client, FleetAnswer.failed("engage2fad: \(configPath) is not usable (see the system log)"))
        return
    }
    if !enrollment && uid != 0 { return }
    let service = FleetService(configPath: configPath, config: config)
    let enroller = enrollment ? EnrollService(fleet: service, uid: uid) : nil
    var buffer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let left = closesAt - monotonicMilliseconds()
        guard left > 0, e2f_wait_readable(client, Int32(min(600_000, left))) == 1 else { return }
        let got = chunk.withUnsafeMutableBytes { read(client, $0.baseAddress!, $0.count) }
        guard got > 0 else { return }
        buffer.append(contentsOf: chunk[..<got])
        while let end = buffer.firstIndex(of: 0x0A) {
            let line = Array(buffer[..<end])
            buffer.removeSubrange(...end)
            // The enrollment socket's own requests (list, status, remove, recovery-codes) go to the enroller;
            // the rest are FleetProtocol's lines, routed as the socket allows.
            let reply: [UInt8]?
            if let enroller, let request = EnrollRequest(line: line) {
                reply = enroller.answer(request)
            } else {
                reply = FleetRequest(line: line).map { route($0, enroller: enroller, service: service, peer: uid).line }
            }
            guard let reply else {
                send(client, .failed("malformed request"))
                return
            }
            send(client, line: reply)
        }
        guard buffer.count <= 8192 else { return }
    }
}

/// Which service answers: the module's login socket is root's; on the enrollment socket anyone may also
/// ask the login questions, about their own user only (a screen locker running PAM as the user), so that
/// such a caller gets the fleet-wide replay and lockout instead of no check at all.
func route(_ request: FleetRequest, enroller: EnrollService?, service: FleetService, peer: uid_t) -> FleetAnswer {
    guard let enroller else { return service.answer(request) }
    switch request {
    case .snapshot(let user), .check(let user, _, _):
        guard let account = Account.lookup(user), account.uid == peer else {
            serviceLog(LOG_WARNING, "uid \(peer) asked about user \(displayText(user, limit: 64)) on the enrollment socket: refused (only about oneself)")
            return .failed("a process without root may ask only about its own user")
        }
        return service.answer(request)
    case .enrollBegin, .enrollConfirm:
        return enroller.answer(request)
    }
}

func send(_ client: Int32, _ answer: FleetAnswer) { send(client, line: answer.line) }

func send(_ client: Int32, line: [UInt8]) {
    var sent = 0
    while sent < line.count {
        let wrote = line.withUnsafeBytes { write(client, $0.baseAddress! + sent, $0.count - sent) }
        guard wrote > 0 else { return }
        sent += wrote
    }
}
