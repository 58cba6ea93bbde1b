// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "engage2fa",
    products: [
        .library(name: "Engage2FACore", targets: ["Engage2FACore"]),
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

        .testTarget(
            name: "Engage2FACoreTests",
            dependencies: ["Engage2FACore", "COpenSSL"]
        ),
    ]
)
