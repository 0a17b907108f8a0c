import ArgumentParser
import Foundation
import SpoolSecurity

#if canImport(Glibc)
import Glibc
#endif

/// `spool user create|delete|list`: the SCRAM credentials in a data directory
/// (`credentials.json`). A running broker re-reads the file when it changes, so a user
/// created here can log in at once. Passwords come from standard input
/// (`--password-stdin`) or a prompt, never from the command line.
struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage SASL/SCRAM users (in the broker's data directory).",
        discussion: """
            Examples:
              spool user create alice --data-dir spool-data          (prompts for the password)
              echo "$PASSWORD" | spool user create alice --password-stdin --mechanism SCRAM-SHA-512
              spool user list --data-dir spool-data
              spool user delete alice --data-dir spool-data
            PLAIN logins check against the same SCRAM record.
            """,
        subcommands: [Create.self, Delete.self, List.self]
    )

    struct Location: ParsableArguments {
        @Option(help: "The broker's data directory. Default: spool-data.") var dataDir = "spool-data"

        func store() throws -> CredentialStore {
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            do { return try CredentialStore(directory: dataDir) } catch { throw CLIError(error.message) }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user or change its password.")
        @Argument(help: "The user name.") var name: String
        @OptionGroup var location: Location
        @Option(help: "SCRAM-SHA-256, SCRAM-SHA-512 or all. Default: all (PLAIN works with either).") var mechanism = "all"
        @Option(help: "PBKDF2 iterations (4096...16384). Default: 4096.") var iterations = ScramMechanism.minIterations
        @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false

        func run() throws {
            let mechanisms: [ScramMechanism]
            if mechanism == "all" {
                mechanisms = ScramMechanism.allCases
            } else if let one = ScramMechanism(rawValue: mechanism) {
                mechanisms = [one]
            } else {
                throw ValidationError("--mechanism must be SCRAM-SHA-256, SCRAM-SHA-512 or all (got '\(mechanism)')")
            }
            let password = try readPassword(fromStdin: passwordStdin, prompt: "Password for \(name): ")
            let store = try location.store()
            do {
                for mechanism in mechanisms {
                    try store.upsert(user: name, try .derive(password: password, mechanism: mechanism, iterations: iterations))
                }
            } catch { throw CLIError(error.message) }
            print("user \(name): \(mechanisms.map(\.name).joined(separator: ", ")), \(iterations) iterations")
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a user's credentials.")
        @Argument(help: "The user name.") var name: String
        @OptionGroup var location: Location
        @Option(help: "Only this mechanism (SCRAM-SHA-256 or SCRAM-SHA-512). Default: all.") var mechanism: String?

        func run() throws {
            let store = try location.store()
            let which = try mechanism.map { text in
                guard let m = ScramMechanism(rawValue: text) else { throw ValidationError("unknown mechanism \(text)") }
                return m
            }
            do { try store.delete(user: name, mechanism: which) } catch { throw CLIError(error.message) }
            print("deleted \(name)\(which.map { " (\($0.name))" } ?? "")")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users and their mechanisms.")
        @OptionGroup var location: Location

        func run() throws {
            for (user, credentials) in try location.store().users() {
                print("\(user)\t\(credentials.map { "\($0.mechanism.name)(\($0.iterations))" }.joined(separator: ","))")
            }
        }
    }
}

/// A password from the first line of standard input, or typed at a prompt without echo.
func readPassword(fromStdin: Bool, prompt: String) throws -> String {
    let password: String
    if fromStdin || isatty(0) == 0 {
        guard let line = readLine(strippingNewline: true) else { throw CLIError("no password on standard input") }
        password = line
    } else {
        guard let typed = getpass(prompt) else { throw CLIError("cannot read a password from the terminal") }
        password = String(cString: typed)
    }
    guard !password.isEmpty else { throw CLIError("the password is empty") }
    return password
}
