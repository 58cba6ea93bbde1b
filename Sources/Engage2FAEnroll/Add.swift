import Glibc
import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement
import Engage2FAQR

extension Enroll {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Link a new authenticator app (the default subcommand).",
            discussion: """
                Shows the secret for typing in by hand, the otpauth:// URI on a line of its own and, on a \
                terminal, the QR code right above the prompt, then asks for the code the app shows. When \
                standard input is not a terminal, the code is read as one line from it, after the URI line \
                has been printed, so scripts can enroll.
                """
        )

        enum QRMode: String, ExpressibleByArgument, CaseIterable {
            case terminal, none
        }

        @OptionGroup var options: UserOptions

        @Option(name: .long, help: ArgumentHelp("A name you will recognise, e.g. the phone's model.", valueName: "name"))
        var name: String?

        @Option(name: .long, help: "Show the QR code in the terminal, or not (default: terminal when standard output is one).")
        var qr: QRMode?

        @Option(name: .customLong("qr-png"), help: ArgumentHelp("Also write the QR code as a PNG image.", valueName: "file"))
        var qrPNG: String?

        @Option(name: .customLong("qr-svg"), help: ArgumentHelp("Also write the QR code as an SVG image.", valueName: "file"))
        var qrSVG: String?

        func run() throws {
            let context = try EnrollContext(options)
            if context.config.fleet.store == .ldap { return try runInFleet(context) }
            try context.checkWritable()
            let interactive = isTerminal(STDIN_FILENO)
            let tries = interactive ? 3 : 1
            var devices = try context.loadDevicesToEdit()
            if let state = context.state() { devices.devices = state.liveDevices(of: devices) }

            let deviceName = try chooseName(devices: devices, tries: tries)
            let parameters = context.config.newDeviceParameters
            let secret = try newSecret()
            let account = context.config.accountLabel(user: context.account.name, host: hostName())
            let uri = OTPAuthURI(issuer: context.config.issuer, account: account, secret: secret, parameters: parameters)
            try show(uri, name: deviceName)

            var verifiedStep: Int64? = nil
            for attempt in 1...tries {
                guard let answer = readAnswer(prompt: "Verification code: ") else { break }
                let check = verifyTOTP(code: Array(answer.utf8), secret: secret, parameters: parameters, now: currentUnixTime(),
                                       window: context.config.window, lastAcceptedStep: nil)
                if case .accepted(let step) = check {
                    verifiedStep = step
                    break
                }
                let reason = check == .malformed
                    ? "That is not a \(parameters.digits)-digit code."
                    : "That code is not right: check that you scanned this new entry and that the phone's clock is correct."
                printError(reason + context.config.appCaveatsSentence + (attempt < tries ? " Try the code the app shows now." : ""))
            }
            guard let verifiedStep else { throw CommandFailure("no correct code was entered, so '\(deviceName)' was not linked; nothing was saved") }

            // Under the device file's lock, on the file as it is now: another command may have changed it meanwhile.
            devices = try context.update { (file: inout DeviceFile) throws -> DeviceFile in
                do {
                    // The step is saved with the device, so that the code just typed is not accepted again at a login.
                    try file.addDevice(name: deviceName, secret: secret, parameters: parameters, now: currentUnixTime(), verifiedStep: verifiedStep)
                } catch {
                    throw CommandFailure("\(error); nothing was saved")
                }
                return file
            }
            // Root may act for anyone (--user, or itself under sudo): say whose account it was.
            let whose = getuid() == 0 ? " for \(context.shownUser)" : ""
            print("Linked '\(deviceName)'\(whose). \(devices.devices.count == 1 ? "It is your only device" : "You have \(devices.devices.count) devices").")
            if devices.recovery == nil {
                print("Tip: run 'engage2fa-enroll recovery-codes' for one-time codes that let you in if you lose the device.")
            }
        }

        func chooseName(devices: DeviceFile, tries: Int) throws -> String {
            if let name {
                do { return try devices.validatedNewName(name) } catch { throw CommandFailure("\(error)") }
            }
            for _ in 1...tries {
                guard let answer = readAnswer(prompt: "Device name (one you will recognise, e.g. the phone's model): ") else { break }
                do { return try devices.validatedNewName(answer) } catch { printError("\(error).") }
            }
            throw CommandFailure("no usable device name was given; nothing was saved")
        }

        /// The secret and the URI first, then the QR code, right above the prompt: on an 80×24 terminal
        /// the code and the prompt are the visible screen (the text above scrolls away), and a warning
        /// that the code does not fit is printed under it, where the user is looking.
        func show(_ uri: OTPAuthURI, name: String) throws {
            let code = try QRCode(encoding: uri.text)
            let showQR = (qr ?? (isTerminal(STDOUT_FILENO) ? .terminal : .none)) == .terminal
            let parameters = uri.parameters
            print("To link '\(name)', \(showQR ? "scan the QR code below with your authenticator app, or " : "")type this secret into it (time-based, \(parameters.algorithm.rawValue), \(parameters.digits) digits, every \(parameters.period) s):")
            print("  " + Base32.grouped(Base32.encode(uri.secret)))
            if let qrPNG { try writeImage(qrPNG, code.png()) }
            if let qrSVG { try writeImage(qrSVG, Array(code.svg().utf8)) }
            print("Key URI:")
            printFlushed(uri.text)
            guard showQR else { return }
            print(code.terminalText(), terminator: "")
            let size = terminalSize()
            if let columns = size.columns, columns < code.terminalWidth {
                printError("Warning: the terminal is \(columns) columns wide and the QR code above needs \(code.terminalWidth): widen the window, or use --qr-png FILE.")
            } else if let lines = size.lines, lines < code.terminalHeight + 1 {
                printError("Warning: the terminal shows \(lines) lines and the QR code above needs \(code.terminalHeight) and one for this prompt: enlarge the window, or use --qr-png FILE.")
            }
        }

        private func writeImage(_ path: String, _ bytes: [UInt8]) throws {
            do {
                try writeFileAtomically(path, contents: bytes)
                print("QR code written to \(displayText(path)) (it holds the secret: delete it after scanning).")
            } catch {
                throw CommandFailure("cannot write \(path): \(error)")
            }
        }
    }
}
