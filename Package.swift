// swift-tools-version:6.0
import Foundation
import PackageDescription

#if arch(arm64)
let embeddedTriple = "aarch64-unknown-linux-gnu"
#else
let embeddedTriple = "x86_64-unknown-linux-gnu"
#endif

/// The Embedded Swift libraries of the toolchain that builds this package (found from swiftc on PATH).
let embeddedLibraries: String = {
    let path = Context.environment["PATH"] ?? "/usr/bin"
    for directory in path.split(separator: ":") {
        let swiftc = URL(fileURLWithPath: String(directory)).appendingPathComponent("swiftc").resolvingSymlinksInPath()
        guard FileManager.default.isExecutableFile(atPath: swiftc.path) else { continue }
        let prefix = swiftc.deletingLastPathComponent().deletingLastPathComponent()
        return prefix.appendingPathComponent("lib/swift/embedded/\(embeddedTriple)").path
    }
    return "/usr/lib/swift/embedded/\(embeddedTriple)"
}()

/// How both Embedded targets (the login library's twin and the module) are compiled: whole-module, and each
/// function in its own section, so that the module's link (--gc-sections) keeps only what pam_sm_* reach.
/// Optimised for size (-Osize): the module is mapped into every sshd connection, and most of its code (errors,
/// denials, fleet mode, the time zone reader) runs rarely; the hot paths a valid login takes cost ~20,000 more
/// instructions this way, measured (bench/results.md). -Osize makes LLVM emit unwind tables for every Swift
/// function (~14 KB of .eh_frame nothing uses: Embedded Swift code does not throw through or unwind its frames),
/// so they are turned off (IRGen takes -fno-asynchronous-unwind-tables from the clang options); the machine
/// outliner shares repeated instruction sequences (-10 KB).
let embeddedSwiftSettings: [SwiftSetting] = [
    .enableExperimentalFeature("Embedded"),
    .unsafeFlags([
        "-wmo", "-Xfrontend", "-function-sections",
        "-Osize", "-Xcc", "-fno-asynchronous-unwind-tables",
        "-Xllvm", "-enable-machine-outliner=always",
    ]),
]

/// The C shims' calls checked by glibc (syslog(3) becomes __syslog_chk): _FORTIFY_SOURCE, as Debian's
/// hardening builds C, in release builds (it needs optimisation; debug builds would only warn).
/// Each C function in its own section too, so that the module's link (--gc-sections) drops the shims only the
/// commands call (the daemon's listen and fork): each symbol they import is one more lookup at every dlopen.
let fortified: [CSetting] = [
    .unsafeFlags(["-O2", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=2", "-ffunction-sections", "-fdata-sections"], .when(configuration: .release)),
]

let package = Package(
    name: "engage2fa",
    products: [
        .library(name: "Engage2FALogin", targets: ["Engage2FALogin"]),
        .library(name: "Engage2FAManagement", targets: ["Engage2FAManagement"]),
        // Installed as pam_engage2fa.so (SwiftPM names the file libpam_engage2fa.so).
        .library(name: "pam_engage2fa", type: .dynamic, targets: ["PAMEngage2FA"]),
        // One program behind both commands' names (scripts/build-release links them): the Swift runtime
        // and Foundation it carries are most of its size, and are then installed once.
        .executable(name: "engage2fa", targets: ["Engage2FACommands"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C libraries from Debian, each as a system-library target.
        .systemLibrary(name: "CPAM", pkgConfig: "pam", providers: [.apt(["libpam0g-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CQREncode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        // OpenLDAP's client library, for engage2fad only: the PAM module never links it.
        .systemLibrary(name: "CLDAP", pkgConfig: "ldap", providers: [.apt(["libldap-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Syscalls the Glibc overlay does not import (setfsuid, getrandom) and PAM's variadic calls.
        .target(name: "CEngageSys", cSettings: fortified),

        // What pam_engage2fa.so runs, and nothing else: the login flow and every rule it applies (policy,
        // codes, the device file's parser, root's state, the activation record, the time zone). Foundation-free:
        // it is loaded into sshd for every connection. The only part compiled twice (see Engage2FALoginEmbedded).
        .target(name: "Engage2FALogin", dependencies: ["CEngageSys"]),

        // What only the commands use, on top of the login library: enrollment (otpauth URIs, new secrets,
        // recovery codes, device names), the admin's view of a user, `check`'s diagnostics. Never in the module.
        .target(name: "Engage2FAManagement", dependencies: ["Engage2FALogin", "CEngageSys"]),

        // PAM's variadic calls (pam_prompt, pam_syslog), which Swift cannot make.
        .target(name: "CEngagePAM", dependencies: ["CPAM"], cSettings: fortified),

        // The login library again, compiled with Embedded Swift for the PAM module: no Swift runtime to load,
        // bind and relocate in every sshd connection. Same sources: Sources/Engage2FALoginEmbedded is a
        // symbolic link to Sources/Engage2FALogin (scripts/check-login-twin fails if that ever stops being so).
        .target(
            name: "Engage2FALoginEmbedded",
            dependencies: ["CEngageSys"],
            swiftSettings: embeddedSwiftSettings
        ),

        // The PAM module: thin glue over the core, in Embedded Swift (nothing of the Swift runtime is
        // loaded; hosts need no Swift installed). Only pam_sm_* are exported; -z defs makes a missing
        // symbol a link error instead of a dlopen failure inside sshd; -z nodelete keeps it mapped
        // across pam_end in long-lived hosts, so it is bound once per process, not once per login;
        // lld packs the relative relocations (DT_RELR), folds identical code and drops every function
        // section nothing reachable from pam_sm_* calls (--gc-sections: the login library's public API the
        // module does not use, the unused parts of the Embedded standard library).
        .target(
            name: "PAMEngage2FA",
            dependencies: ["Engage2FALoginEmbedded", "CEngagePAM", "CPAM", "CEngageSys"],
            exclude: ["exports.map"],
            swiftSettings: embeddedSwiftSettings,
            linkerSettings: [
                .unsafeFlags([
                    "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/PAMEngage2FA/exports.map",
                    "-Xlinker", "-z", "-Xlinker", "defs",
                    "-Xlinker", "-z", "-Xlinker", "nodelete",
                    // Bound at dlopen, before sshd or sudo hands it anything (BIND_NOW, with full RELRO).
                    "-Xlinker", "-z", "-Xlinker", "now",
                    "-use-ld=lld",
                    "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                    "-Xlinker", "--icf=all",
                    "-Xlinker", "--gc-sections",
                    // Without the C start files (crti, crtbeginS, crtendS, crtn): the module has no constructor or
                    // destructor to run, and their four weak undefined symbols (__gmon_start__, __cxa_finalize,
                    // the two _ITM_ ones) were each looked up in every loaded object at every dlopen and found in
                    // none (~4,600 instructions a process, bench/results.md).
                    "-Xclang-linker", "-nostartfiles",
                    // ceil(3) is in CEngagePAM, not libm.
                ]),
                // String's Unicode tables (normalisation, grapheme breaking, case mapping) only for the debug build,
                // whose unoptimised standard library still names them. The release module (the one installed)
                // compares names, keys and ids as bytes and links without them: that link fails if anything
                // brings them back.
                .unsafeFlags(["-L\(embeddedLibraries)", "-lswiftUnicodeDataTables"], .when(configuration: .debug)),
            ]
        ),

        // QR codes through libqrencode, drawn for the terminal, as PNG and as SVG.
        .target(name: "Engage2FAQR", dependencies: ["CQREncode", "CZlib"]),

        // What the two commands share: finding the user, reading the policy, messages that say how to fix things.
        .target(
            name: "Engage2FACommandSupport",
            dependencies: ["Engage2FALogin", "Engage2FAManagement", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // engage2fa-enroll: run by the user (no setuid) to link devices.
        .target(
            name: "Engage2FAEnroll",
            dependencies: [
                "Engage2FALogin", "Engage2FAManagement", "Engage2FAQR", "Engage2FACommandSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // engage2fa-admin: run by root to manage the rollout.
        .target(
            name: "Engage2FAAdmin",
            dependencies: [
                "Engage2FALogin", "Engage2FAManagement", "Engage2FACommandSupport", "Engage2FADirectory", "CEngageSys",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // The program both commands are: it runs the one its name (argv[0]) names. BIND_NOW (-z now)
        // with lld's full RELRO; lld packs the relative relocations of the static runtime (DT_RELR,
        // glibc 2.36) and folds identical code. --no-export-dynamic undoes the -export-dynamic that
        // -static-stdlib adds: it put every public symbol of our modules and swift-argument-parser in
        // .dynsym (240 KB of names nothing looks up: the runtime finds types and conformances through
        // its metadata sections, and nothing loads a plug-in that would bind to the program).
        .executableTarget(
            name: "Engage2FACommands",
            dependencies: ["Engage2FAEnroll", "Engage2FAAdmin", "Engage2FACommandSupport", "Engage2FADaemon"],
            linkerSettings: [
                .unsafeFlags([
                    "-use-ld=lld",
                    "-Xlinker", "-z", "-Xlinker", "now",
                    "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                    "-Xlinker", "--icf=all",
                    "-Xlinker", "--no-export-dynamic",
                ])
            ]
        ),

        // The fleet's LDAP directory through libldap, for engage2fad and engage2fa-admin (never the module).
        .target(name: "Engage2FADirectory", dependencies: ["Engage2FALogin", "CLDAP"]),

        // engage2fad: fleet mode's root host service, the one holder of the host's directory credentials
        // (run by the one program, Engage2FACommands, under that name).
        .target(
            name: "Engage2FADaemon",
            dependencies: ["Engage2FALogin", "Engage2FAManagement", "Engage2FADirectory", "CEngageSys"]
        ),

        .testTarget(
            name: "Engage2FALoginTests",
            dependencies: ["Engage2FALogin", "Engage2FAManagement", "COpenSSL"]
        ),

        // The two commands' parsing and help, in process: `@testable import` of their targets.
        .testTarget(
            name: "CommandTests",
            dependencies: [
                "Engage2FAAdmin", "Engage2FAEnroll", "Engage2FACommandSupport", "Engage2FALogin", "Engage2FAManagement",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ]
)
