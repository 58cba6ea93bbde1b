/// The release, shown by `--version` and in the Debian package.
public let engage2faVersion = "0.1.0"
