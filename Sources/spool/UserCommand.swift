import ArgumentParser
import Foundation
import SpoolCluster
import SpoolEtcd
import SpoolSecurity

#if canImport(Glibc)
import Glibc
#endif

/// `spool user create|delete|list`: the SCRAM credentials in a data directory
/// (`credentials.json`), or with `--etcd … --cluster-id C` a cluster's, in etcd, where every
/// broker of it reads them. A running broker re-reads the file when it changes and follows
/// etcd's changes, so a user created here can log in at once. Passwords come from standard
/// input (`--password-stdin`) or a prompt, never from the command line.
struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage SASL/SCRAM users (in a broker's data directory, or a cluster's etcd).",
        discussion: """
            Examples:
              spool user create alice --data-dir spool-data          (prompts for the password)
              echo "$PASSWORD" | spool user create alice --password-stdin --mechanism SCRAM-SHA-512
              spool user list --data-dir spool-data
              spool user delete alice --data-dir spool-data
              spool user create broker --etcd http://127.0.0.1:2379 --cluster-id c1 --password-stdin
                                          (a cluster: every broker's users live in etcd)
            PLAIN logins check against the same SCRAM record.
            """,
        subcommands: [Create.self, Delete.self, List.self]
    )

    struct Location: ParsableArguments {
        @Option(help: "The broker's data directory (one broker alone). Default: spool-data.") var dataDir: String?
        @Option(help: "A cluster's etcd client URLs, comma-separated (with --cluster-id): its users, which every broker of it reads.")
        var etcd: String?
        @Option(help: "The cluster's id (with --etcd).") var clusterId: String?
        @Option(help: "Give up after this many seconds without an answer from etcd.") var timeoutSeconds: Int = 10

        func validate() throws {
            if etcd != nil || clusterId != nil {
                guard etcd != nil, clusterId != nil else { throw ValidationError("--etcd and --cluster-id go together") }
                guard dataDir == nil else { throw ValidationError("--data-dir is for one broker alone; a cluster's users live in etcd (--etcd)") }
                try EtcdAddress.validate(clusterId: clusterId!, timeoutSeconds: timeoutSeconds)
            }
        }

        /// Where the users are: a data directory's file, or a cluster's etcd.
        enum Users {
            case local(CredentialStore)
            case cluster(ClusterUsers, EtcdClient)
        }

        /// Opens them; a cluster's client is shut down by `close`.
        func open() throws -> Users {
            if let etcd, let clusterId {
                let client = try EtcdAddress.client(etcd: etcd, timeoutSeconds: timeoutSeconds)
                do { return .cluster(try ClusterUsers(client: client, clusterId: clusterId), client) } catch {
                    client.shutdown()
                    throw CLIError("\(error)")
                }
            }
            let directory = dataDir ?? "spool-data"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            do { return .local(try CredentialStore(directory: directory)) } catch { throw CLIError(error.message) }
        }

        /// Runs `body` on the users, with etcd errors said in words.
        func with<T>(_ body: (Users) async throws -> T) async throws -> T {
            let users = try open()
            defer { if case .cluster(_, let client) = users { client.shutdown() } }
            do {
                return try await body(users)
            } catch let error as EtcdError {
                throw CLIError("cannot change the cluster's users in etcd (\(etcd ?? "")): \(error)")
            } catch let error as SecurityError {
                throw CLIError(error.message)
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user or change its password.")
        @Argument(help: "The user name.") var name: String
        @OptionGroup var location: Location
        @Option(help: "SCRAM-SHA-256, SCRAM-SHA-512 or all. Default: all (PLAIN works with either).") var mechanism = "all"
        @Option(help: "PBKDF2 iterations (4096...16384). Default: 4096.") var iterations = ScramMechanism.minIterations
        @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false

        func run() async throws {
            let mechanisms: [ScramMechanism]
            if mechanism == "all" {
                mechanisms = ScramMechanism.allCases
            } else if let one = ScramMechanism(rawValue: mechanism) {
                mechanisms = [one]
            } else {
                throw ValidationError("--mechanism must be SCRAM-SHA-256, SCRAM-SHA-512 or all (got '\(mechanism)')")
            }
            let password = try readPassword(fromStdin: passwordStdin, prompt: "Password for \(name): ")
            try await location.with { users in
                for mechanism in mechanisms {
                    let credential = try ScramCredential.derive(password: password, mechanism: mechanism, iterations: iterations)
                    switch users {
                    case .local(let store): try store.upsert(user: name, credential)
                    case .cluster(let cluster, _): try await cluster.upsert(user: name, credential)
                    }
                }
            }
            print("user \(name): \(mechanisms.map(\.name).joined(separator: ", ")), \(iterations) iterations")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a user's credentials.")
        @Argument(help: "The user name.") var name: String
        @OptionGroup var location: Location
        @Option(help: "Only this mechanism (SCRAM-SHA-256 or SCRAM-SHA-512). Default: all.") var mechanism: String?

        func run() async throws {
            let which = try mechanism.map { text in
                guard let m = ScramMechanism(rawValue: text) else { throw ValidationError("unknown mechanism \(text)") }
                return m
            }
            try await location.with { users in
                switch users {
                case .local(let store): try store.delete(user: name, mechanism: which)
                case .cluster(let cluster, _):
                    guard try await cluster.delete(user: name, mechanism: which) else { throw CLIError("no user \(name)\(which.map { " with \($0.name)" } ?? "") in the cluster") }
                }
            }
            print("deleted \(name)\(which.map { " (\($0.name))" } ?? "")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users and their mechanisms.")
        @OptionGroup var location: Location

        func run() async throws {
            let all = try await location.with { users in
                switch users {
                case .local(let store): return store.users()
                case .cluster(let cluster, _): return try await cluster.list()
                }
            }
            for (user, credentials) in all {
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
