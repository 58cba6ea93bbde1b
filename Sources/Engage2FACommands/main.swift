import Engage2FAAdmin
import Engage2FADaemon
import Engage2FACommandSupport
import Engage2FAEnroll
#if canImport(Glibc)
import Glibc
#endif

// One program, installed as /usr/bin/engage2fa-enroll and linked as /usr/sbin/engage2fa-admin and
// /usr/sbin/engage2fad (fleet mode's root host service): the
// name it is run by chooses the command. It is no setuid program: whoever runs it as
// engage2fa-admin gets what engage2fa-admin gives them (its subcommands check for root themselves).
switch CommandLine.arguments.first?.split(separator: "/").last {
case "engage2fa-enroll": runEnroll()
case "engage2fa-admin": runAdmin()
case "engage2fad": runDaemon()
default:
    printError("engage2fa: run this program by the name engage2fa-enroll, engage2fa-admin or engage2fad (a link of that name)")
    exit(64)
}
