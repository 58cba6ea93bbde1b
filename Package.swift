// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "engage2fa",
    products: [
        .library(name: "Engage2FACore", targets: ["Engage2FACore"]),
        // Installed as pam_engage2fa.so (SwiftPM names the file libpam_engage2fa.so).
        .library(name: "pam_engage2fa", type: .dynamic, targets: ["PAMEngage2FA"]),
        .executable(name: "engage2fa-enroll", targets: ["Engage2FAEnroll"]),
        .executable(name: "engage2fa-admin", targets: ["Engage2FAAdmin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C libraries from Debian, each as a system-library target.
        .systemLibrary(name: "CPAM", pkgConfig: "pam", providers: [.apt(["libpam0g-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CQREncode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),

        // Syscalls the Glibc overlay does not import (setfsuid, getrandom) and PAM's variadic calls.
        .target(name: "CEngageSys"),

        // Every rule lives here. Foundation-free: it is loaded into sshd for every connection.
        .target(name: "Engage2FACore", dependencies: ["CEngageSys"]),

        // PAM's variadic calls (pam_prompt, pam_syslog), which Swift cannot make.
        .target(name: "CEngagePAM", dependencies: ["CPAM"]),

        // The PAM module: thin glue over the core. The Swift runtime is linked in statically so that
        // hosts need no Swift installed; only pam_sm_* are exported; -z defs makes a missing symbol a
        // link error instead of a dlopen failure inside sshd; -z nodelete keeps the static runtime
        // mapped across dlclose (it cannot be unloaded cleanly).
        .target(
            name: "PAMEngage2FA",
            dependencies: ["Engage2FACore", "CEngagePAM", "CPAM"],
            exclude: ["exports.map", "link"],
            swiftSettings: [.unsafeFlags(["-static-stdlib"])],
            linkerSettings: [
                .unsafeFlags([
                    "-static-stdlib",
                    "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/PAMEngage2FA/exports.map",
                    "-Xlinker", "-z", "-Xlinker", "defs",
                    "-Xlinker", "-z", "-Xlinker", "nodelete",
                    // libstdc++ and the unwinder from their static archives (see link/): loading the
                    // shared ones cost every sshd connection ~3.6 M instructions of symbol lookups.
                    "-L\(Context.packageDirectory)/Sources/PAMEngage2FA/link",
                    // lld for DT_RELR relocations and identical-code folding: ~90 k fewer instructions
                    // at load and 600 KB less code (bench/results.md).
                    "-use-ld=lld",
                    "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                    "-Xlinker", "--icf=all",
                ])
            ]
        ),

        // QR codes through libqrencode, drawn for the terminal, as PNG and as SVG.
        .target(name: "Engage2FAQR", dependencies: ["CQREncode"]),

        // What the two commands share: finding the user, reading the policy, messages that say how to fix things.
        .target(
            name: "Engage2FACommandSupport",
            dependencies: ["Engage2FACore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // engage2fa-enroll: run by the user (no setuid) to link devices.
        .executableTarget(
            name: "Engage2FAEnroll",
            dependencies: [
                "Engage2FACore", "Engage2FAQR", "Engage2FACommandSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // engage2fa-admin: run by root to manage the rollout.
        .executableTarget(
            name: "Engage2FAAdmin",
            dependencies: [
                "Engage2FACore", "Engage2FACommandSupport", "CEngageSys",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(
            name: "Engage2FACoreTests",
            dependencies: ["Engage2FACore", "COpenSSL"]
        ),
    ]
)
