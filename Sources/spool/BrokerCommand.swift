import ArgumentParser
import Dispatch
import Foundation
import NIOCore
import CoreMetrics
import Logging
import Prometheus
import ServiceLifecycle
import SpoolAdminHTTP
import SpoolBroker
import SpoolCluster
import SpoolKafka
import SpoolNative
import SpoolSecurity
import SpoolServer
import SpoolStorage

#if canImport(Glibc)
import Glibc
#endif

/// `spool broker`: runs the broker until SIGINT or SIGTERM, then shuts down cleanly.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the Spool broker.",
        discussion: """
            Examples:
              spool broker                                  data in ./spool-data, listening on 127.0.0.1:9292
              spool broker --data-dir /var/lib/spool --listen 127.0.0.1:9300 --topic-default retention.ms=86400000
              spool broker --config spool.properties

            The config file holds key=value lines ('#' starts a comment), as in Kafka's server.properties:
              data.dir=/var/lib/spool
              listen=127.0.0.1:9292
              kafka.listen=127.0.0.1:9092   (none: no Kafka listener; several, comma-separated, as Kafka's
                                             listeners=PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093)
              kafka.ssl.certificate=certs/broker.pem   (PEM chain for SSL:// and SASL_SSL:// listeners)
              kafka.ssl.key=certs/broker.key
              kafka.ssl.client.ca=certs/ca.pem         (CA of client certificates, for mutual TLS)
              kafka.ssl.client.auth=none               (Kafka's ssl.client.auth: none, requested, required)
              sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512   (on SASL_* listeners)
              ssl.certificate=certs/broker.pem   (TLS on the native listener; with ssl.key)
              ssl.key=certs/broker.key
              ssl.client.ca=certs/ca.pem         (native mutual TLS: the client certificate's CN is the principal)
              ssl.client.auth=none               (none, requested, required)
              native.auth=none              (native SCRAM authentication: none, optional, required;
                                             native.sasl.enabled=true is required)
              connections.max.reauth.ms=0              (SASL session lifetime; 0: no limit)
              authorizer.enabled=false      (check ACLs on every Kafka request and admin HTTP call; `spool acl` manages them)
              super.users=User:admin;User:ops   (principals allowed everything, ';'-separated)
              allow.everyone.if.no.acl.found=false   (with the authorizer on: a resource no ACL covers is open)
              kafka.advertise=10.0.0.5:9092 (what Kafka clients are told to connect to; with several listeners PLAINTEXT://h:9092,SASL_SSL://h:9093)
              auto.create.topics.enable=true
              default.partitions=3
              max.frame.bytes=16777216
              max.in.flight.per.connection=1024
              idle.timeout.seconds=600
              max.open.files=1024
              log.retention.check.interval.ms=300000
              log.cleaner.enable=true       (the log cleaner of cleanup.policy=compact topics; one thread)
              log.cleaner.backoff.ms=15000
              log.cleaner.io.max.bytes.per.second=1.7976931348623157E308   (read and written together)
              log.cleaner.dedupe.buffer.size=134217728
              group.initial.rebalance.delay.ms=3000   (consumer groups, as Kafka names them)
              group.min.session.timeout.ms=6000
              group.max.session.timeout.ms=1800000
              group.max.size=1000
              offsets.retention.minutes=10080
              offsets.retention.check.interval.ms=600000
              offsets.flush.ms=1000         (commits answered once written, fsynced within this; 0: fsync before each answer)
              max.connections=4096          (default: derived from the descriptor limit)
              max.span.descriptors.per.connection=32
              max.outbound.bytes.per.connection=4194304
              max.inbound.buffered.bytes=268435456
              frame.completion.seconds=30
              quota.window.num=11           (client quotas: rates are measured over this many windows)
              quota.window.size.seconds=1
              http.listen=127.0.0.1:9644    (admin HTTP: /metrics, /health, /ready, /v1/, console; 'none' turns it off)
              http.ssl.certificate=certs/broker.pem   (admin HTTP over TLS only, with http.ssl.key)
              http.ssl.key=certs/broker.key
              http.auth.enabled=false       (login on the admin HTTP listener; default: authorizer.enabled)
              http.auth.open.paths=/metrics,/health   (answered without a login)
              http.auth.token-file=http-tokens        ('USER TOKEN' lines for 'Authorization: Bearer TOKEN')
              log.level=info                (trace, debug, info, notice, warning, error, critical)
              log.format=text               (text or json: one JSON object per line on standard error)
              retention.ms=604800000        (any topic setting here becomes a topic default)
              etcd.endpoints=http://127.0.0.1:2379,http://127.0.0.1:12379   (cluster mode; absent: one broker alone)
              node.id=1                     (this broker's id in the cluster)
              cluster.id=c1                 (the cluster's keys live under /spool/c1/ in etcd)
              cluster.lease.ttl.seconds=9   (registration lease; a broker silent this long is out)
              default.replication.factor=1  (cluster mode: replicas of topics created without a factor)
              security.inter.broker.protocol=SASL_SSL   (the leaders' listener followers dial; default: the first's)
              sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
              inter.broker.sasl.user=broker              (a super user, or one with CLUSTER_ACTION)
              inter.broker.sasl.password.file=broker.password
              inter.broker.ssl.ca=certs/ca.pem           (default: kafka.ssl.client.ca; client certificate and key:
                                                          inter.broker.ssl.certificate/.key, default the listener's
                                                          when kafka.ssl.client.auth is on)
            Flags override the file.

            Cluster mode (--etcd): the broker registers in etcd and campaigns for controller; topics,
            their replica assignment and each partition's leader and ISR live in etcd; the controller
            elects leaders when brokers go and come back.
            """,
        subcommands: [BrokerInfoCommand.self]
    )

    @Option(help: "A key=value config file (see below).") var config: String?
    @Option(help: "Data directory (created if missing). Default: spool-data.") var dataDir: String?
    @Option(help: "HOST:PORT to listen on. Default: 127.0.0.1:9292.") var listen: String?
    @Option(help: "Partitions of topics created without a count. Default: 1.") var defaultPartitions: Int32?
    @Option(help: "HOST:PORT or PROTOCOL://HOST:PORT (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) for Kafka clients, or 'none' (repeatable). Default: 127.0.0.1:9092.")
    var kafkaListen: [String] = []
    @Option(help: "PEM certificate (chain) of the Kafka SSL/SASL_SSL listeners.") var kafkaSslCertificate: String?
    @Option(help: "PEM private key of the Kafka SSL/SASL_SSL listeners.") var kafkaSslKey: String?
    @Option(help: "PEM CA of client certificates (mutual TLS) on the Kafka TLS listeners.") var kafkaSslClientCa: String?
    @Option(help: "ssl.client.auth of the Kafka TLS listeners: none, requested or required. Default: none.")
    var kafkaSslClientAuth: String?
    @Option(help: "PEM certificate (chain): TLS on the native listener (ssl.certificate).") var sslCertificate: String?
    @Option(help: "PEM private key of the native listener's TLS (ssl.key).") var sslKey: String?
    @Option(help: "PEM CA of client certificates (mutual TLS) on the native listener (ssl.client.ca).") var sslClientCa: String?
    @Option(help: "ssl.client.auth of the native listener: none, requested or required. Default: none.")
    var sslClientAuth: String?
    @Option(help: "Native authentication (SCRAM through Authenticate, or a client certificate): none, optional or required (native.auth). Default: none.")
    var nativeAuth: String?
    @Option(help: "[PROTOCOL://]HOST:PORT that Kafka clients are told to connect to (Metadata), per listener of that protocol (kafka.advertise, Kafka's advertised.listeners); may repeat. Default: each listener's own address.")
    var kafkaAdvertise: [String] = []
    @Option(help: "offsets.flush.ms: OffsetCommits are answered once written and fsynced within this many ms; 0 fsyncs before each answer. Default: 1000.")
    var offsetsFlushMs: Int?
    @Flag(help: "Check ACLs on every Kafka request (authorizer.enabled=true); also turns on the admin HTTP login (--no-http-auth: off).") var authorizer = false
    @Option(help: "Principals allowed everything, ';'-separated: User:admin;User:ops (super.users).") var superUsers: String?
    @Option(help: "With the authorizer on, whether a resource no ACL covers is open to everyone (allow.everyone.if.no.acl.found). Default: false.")
    var allowEveryoneIfNoAclFound: Bool?
    @Option(name: .customLong("topic-default"), help: "A topic default as key=value, e.g. retention.ms=86400000 (repeatable).")
    var topicDefaults: [String] = []
    @OptionGroup var operations: OperationsOptions
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var interBroker: InterBrokerOptions

    static let brokerKeys = ["data.dir", "listen", "default.partitions", "max.frame.bytes", "max.in.flight.per.connection",
                             "idle.timeout.seconds", "max.open.files", "log.retention.check.interval.ms",
                             "kafka.listen", "kafka.advertise", "auto.create.topics.enable",
                             "group.initial.rebalance.delay.ms", "group.min.session.timeout.ms", "group.max.session.timeout.ms",
                             "group.max.size", "offsets.retention.minutes", "offsets.retention.check.interval.ms",
                             "offsets.flush.ms", "max.connections", "max.span.descriptors.per.connection", "max.outbound.bytes.per.connection",
                             "max.inbound.buffered.bytes", "frame.completion.seconds", "log.cleaner.enable", "log.cleaner.threads",
                             "log.cleaner.backoff.ms", "log.cleaner.io.max.bytes.per.second", "log.cleaner.dedupe.buffer.size",
                             "kafka.ssl.certificate", "kafka.ssl.key", "kafka.ssl.client.ca", "kafka.ssl.client.auth",
                             "sasl.enabled.mechanisms", "connections.max.reauth.ms",
                             "ssl.certificate", "ssl.key", "ssl.client.ca", "ssl.client.auth", "native.auth", "native.sasl.enabled",
                             "quota.window.num", "quota.window.size.seconds",
                             "authorizer.enabled", "super.users", "allow.everyone.if.no.acl.found"] + OperationsOptions.keys + ClusterOptions.keys + InterBrokerOptions.keys

    /// Reads a properties file into ordered key/value pairs.
    static func readProperties(_ path: String) throws -> [(String, String)] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read config file \(path)")
        }
        var pairs: [(String, String)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let eq = trimmed.firstIndex(of: "="), eq != trimmed.startIndex else {
                throw ValidationError("\(path):\(n + 1): expected key=value, got '\(trimmed)'")
            }
            pairs.append((trimmed[..<eq].trimmingCharacters(in: .whitespaces), trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)))
        }
        return pairs
    }

    /// The effective configuration: defaults, then the file, then flags.
    func brokerConfig() throws -> BrokerConfig {
        try settings().broker
    }

    /// The Kafka listeners' configurations (none when `kafka.listen` is `none`).
    func kafkaConfigs() throws -> [KafkaListenerConfig] {
        let (settings, broker) = try settings()
        let listen = settings["kafka.listen"] ?? "127.0.0.1:9092"
        if listen == "none" { return [] }
        var base = KafkaListenerConfig()
        switch settings["auto.create.topics.enable"] {
        case nil, "true": base.autoCreateTopics = true
        case "false": base.autoCreateTopics = false
        case let other?: throw ValidationError("auto.create.topics.enable must be true or false (got '\(other)')")
        }
        let entries = listen.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let parsed = try entries.map { entry in
            guard let listener = KafkaSecurityProtocol.parseListener(entry) else {
                throw ValidationError("kafka.listen must be HOST:PORT or PROTOCOL://HOST:PORT (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), or none, e.g. 127.0.0.1:9092 (got '\(entry)')")
            }
            return listener
        }
        // The credential store is always there: Describe/AlterUserScramCredentials answer on
        // every listener, SASL listeners check against it.
        base.credentials = try credentialStore(dataDirectory: broker.storage.dataDirectory)
        if let text = settings["sasl.enabled.mechanisms"] {
            let mechanisms = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard !mechanisms.isEmpty, mechanisms.allSatisfy(SaslServerSession.mechanisms.contains) else {
                throw ValidationError("sasl.enabled.mechanisms must list some of \(SaslServerSession.mechanisms.joined(separator: ",")) (got '\(text)')")
            }
            base.saslMechanisms = mechanisms
        }
        if let text = settings["connections.max.reauth.ms"] {
            guard let ms = Int64(text), ms >= 0 else { throw ValidationError("connections.max.reauth.ms must be >= 0 (got '\(text)')") }
            base.reauthMillis = ms == 0 ? nil : ms
        }
        if parsed.contains(where: { $0.protocol.usesTLS }) {
            guard let certificate = settings["kafka.ssl.certificate"], let key = settings["kafka.ssl.key"] else {
                throw ValidationError("an SSL:// or SASL_SSL:// Kafka listener needs kafka.ssl.certificate and kafka.ssl.key (--kafka-ssl-certificate, --kafka-ssl-key)")
            }
            var tls = TLSSettings(certificatePath: certificate, keyPath: key, clientCAPath: settings["kafka.ssl.client.ca"])
            if let auth = settings["kafka.ssl.client.auth"] {
                guard let value = TLSSettings.ClientAuth(rawValue: auth) else {
                    throw ValidationError("kafka.ssl.client.auth must be none, requested or required (got '\(auth)')")
                }
                tls.clientAuth = value
            }
            if tls.clientAuth != .none && tls.clientCAPath == nil {
                throw ValidationError("kafka.ssl.client.auth=\(tls.clientAuth.rawValue) needs kafka.ssl.client.ca")
            }
            base.tls = tls
        }
        if parsed.contains(where: { $0.protocol.usesSASL }) && base.credentials == nil {
            throw ValidationError("cannot open the credential store in \(broker.storage.dataDirectory)")
        }
        let advertised = try Self.advertisedAddresses(settings["kafka.advertise"], listeners: parsed.map(\.protocol))
        return parsed.indices.map { i in
            var config = base
            config.securityProtocol = parsed[i].protocol
            config.host = parsed[i].host
            config.port = parsed[i].port
            config.advertisedHost = advertised[i]?.host
            config.advertisedPort = advertised[i]?.port
            return config
        }
    }

    /// `kafka.advertise` (Kafka's `advertised.listeners`) matched to the listeners of
    /// `kafka.listen`: comma-separated `[PROTOCOL://]HOST:PORT` entries, each taken by the next
    /// listener of its protocol (a bare HOST:PORT is PLAINTEXT, or the one listener when there
    /// is one); a listener without an entry advertises its own address (nil).
    static func advertisedAddresses(_ text: String?, listeners: [KafkaSecurityProtocol]) throws -> [(host: String, port: Int)?] {
        var result: [(host: String, port: Int)?] = Array(repeating: nil, count: listeners.count)
        guard let text else { return result }
        let entries = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for entry in entries {
            guard let parsed = KafkaSecurityProtocol.parseListener(entry), !parsed.host.isEmpty, parsed.port > 0 else {
                throw ValidationError("kafka.advertise must list [PROTOCOL://]HOST:PORT entries, e.g. 10.0.0.5:9092 or SASL_SSL://kafka.example.com:9093 (got '\(entry)')")
            }
            if entries.count == 1 && listeners.count == 1 && !entry.contains("://") {
                result[0] = (parsed.host, parsed.port)
                break
            }
            guard let i = listeners.indices.first(where: { listeners[$0] == parsed.protocol && result[$0] == nil }) else {
                throw ValidationError("kafka.advertise names \(entry), but kafka.listen has no \(parsed.protocol.rawValue) listener left for it (listeners: \(listeners.map(\.rawValue).joined(separator: ", ")))")
            }
            result[i] = (parsed.host, parsed.port)
        }
        return result
    }

    /// The native listener's TLS (`ssl.*`) and authentication (`native.auth`).
    func nativeSecurity() throws -> NativeSecurityConfig {
        let (settings, broker) = try settings()
        var security = NativeSecurityConfig()
        let certificate = settings["ssl.certificate"], key = settings["ssl.key"]
        if certificate != nil || key != nil {
            guard let certificate, let key else {
                throw ValidationError("TLS on the native listener needs both ssl.certificate and ssl.key (--ssl-certificate, --ssl-key)")
            }
            var tls = TLSSettings(certificatePath: certificate, keyPath: key, clientCAPath: settings["ssl.client.ca"])
            if let auth = settings["ssl.client.auth"] {
                guard let value = TLSSettings.ClientAuth(rawValue: auth) else {
                    throw ValidationError("ssl.client.auth must be none, requested or required (got '\(auth)')")
                }
                tls.clientAuth = value
            }
            if tls.clientAuth != .none && tls.clientCAPath == nil {
                throw ValidationError("ssl.client.auth=\(tls.clientAuth.rawValue) needs ssl.client.ca (--ssl-client-ca)")
            }
            security.tls = tls
        } else if settings["ssl.client.ca"] != nil || settings["ssl.client.auth"] != nil {
            throw ValidationError("ssl.client.ca and ssl.client.auth need TLS on the native listener (ssl.certificate, ssl.key)")
        }
        var mode = settings["native.auth"]
        if mode == nil, let enabled = settings["native.sasl.enabled"] {
            guard enabled == "true" || enabled == "false" else {
                throw ValidationError("native.sasl.enabled must be true or false (got '\(enabled)')")
            }
            mode = enabled == "true" ? "required" : "none"
        }
        if let mode {
            guard let value = NativeSecurityConfig.Authentication(rawValue: mode) else {
                throw ValidationError("native.auth must be none, optional or required (got '\(mode)')")
            }
            security.authentication = value
        }
        if security.authentication != .none {
            guard let store = try credentialStore(dataDirectory: broker.storage.dataDirectory) else {
                throw ValidationError("cannot open the credential store in \(broker.storage.dataDirectory)")
            }
            security.credentials = store
        }
        return security
    }

    /// Every setting (defaults, the file, then flags) and the broker configuration they make.
    func settings() throws -> (raw: [String: String], broker: BrokerConfig) {
        var settings: [String: String] = ["data.dir": "spool-data", "listen": "127.0.0.1:9292"]
        var topicSettings: [String: String] = [:]
        if let config {
            for (key, value) in try Self.readProperties(config) {
                if Self.brokerKeys.contains(key) {
                    settings[key] = value
                } else if TopicConfig.keys.contains(key) {
                    topicSettings[key] = value
                } else {
                    throw ValidationError("\(config): unknown setting \(key); broker settings: \(Self.brokerKeys.joined(separator: ", ")); topic settings: \(TopicConfig.keys.joined(separator: ", "))")
                }
            }
        }
        if let dataDir { settings["data.dir"] = dataDir }
        if let listen { settings["listen"] = listen }
        if !kafkaListen.isEmpty { settings["kafka.listen"] = kafkaListen.joined(separator: ",") }
        if !kafkaAdvertise.isEmpty { settings["kafka.advertise"] = kafkaAdvertise.joined(separator: ",") }
        if let v = kafkaSslCertificate { settings["kafka.ssl.certificate"] = v }
        if let v = kafkaSslKey { settings["kafka.ssl.key"] = v }
        if let v = kafkaSslClientCa { settings["kafka.ssl.client.ca"] = v }
        if let v = kafkaSslClientAuth { settings["kafka.ssl.client.auth"] = v }
        if let v = sslCertificate { settings["ssl.certificate"] = v }
        if let v = sslKey { settings["ssl.key"] = v }
        if let v = sslClientCa { settings["ssl.client.ca"] = v }
        if let v = sslClientAuth { settings["ssl.client.auth"] = v }
        if let v = nativeAuth { settings["native.auth"] = v }
        if let defaultPartitions { settings["default.partitions"] = String(defaultPartitions) }
        if let offsetsFlushMs { settings["offsets.flush.ms"] = String(offsetsFlushMs) }
        if authorizer { settings["authorizer.enabled"] = "true" }
        if let superUsers { settings["super.users"] = superUsers }
        if let v = allowEveryoneIfNoAclFound { settings["allow.everyone.if.no.acl.found"] = String(v) }
        topicSettings.merge(try parseConfigs(topicDefaults)) { _, flag in flag }

        let address = settings["listen"]!
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (0...65535).contains(port), colon != address.startIndex else {
            throw ValidationError("listen must be HOST:PORT, e.g. 127.0.0.1:9292 (got '\(address)')")
        }
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let text = settings[key] else { return nil }
            guard let v = Int(text), range.contains(v) else {
                throw ValidationError("\(key) must be an integer in \(range.lowerBound)...\(range.upperBound) (got '\(text)')")
            }
            return v
        }
        var result = BrokerConfig(dataDirectory: settings["data.dir"]!)
        result.host = String(address[..<colon])
        result.port = port
        if let v = try int("default.partitions", 1...Int(TopicStore.maxPartitions)) { result.defaultPartitions = Int32(v) }
        if let v = try int("max.frame.bytes", 65536...(1 << 30)) { result.maxFrameBytes = v }
        if let v = try int("max.in.flight.per.connection", 1...1_000_000) { result.maxInFlightPerConnection = v }
        if let v = try int("idle.timeout.seconds", 1...86_400 * 7) { result.idleTimeoutSeconds = Int64(v) }
        if let v = try int("max.open.files", 16...1_000_000) { result.storage.maxOpenFiles = v }
        if let v = try int("log.retention.check.interval.ms", 100...86_400_000) { result.storage.retentionCheckIntervalMillis = Int64(v) }
        if let v = try int("log.cleaner.backoff.ms", 10...86_400_000) { result.storage.cleaner.backoffMillis = Int64(v) }
        if let v = try int("log.cleaner.dedupe.buffer.size", 1 << 16...(1 << 34)) { result.storage.cleaner.dedupeBufferBytes = v }
        if let v = try int("log.cleaner.threads", LogCleanerConfig.threads...LogCleanerConfig.threads) { _ = v }
        if let v = settings["log.cleaner.enable"] {
            guard v == "true" || v == "false" else { throw ValidationError("log.cleaner.enable=\(v): expected true or false") }
            result.storage.cleaner.enabled = v == "true"
        }
        if let v = settings["log.cleaner.io.max.bytes.per.second"] {
            guard let rate = Double(v), rate > 0 else { throw ValidationError("log.cleaner.io.max.bytes.per.second=\(v): expected a positive number") }
            result.storage.cleaner.ioMaxBytesPerSecond = rate >= 1e300 ? .infinity : rate
        }
        if let v = try int("group.initial.rebalance.delay.ms", 0...300_000) { result.groups.initialRebalanceDelayMillis = Int64(v) }
        if let v = try int("group.min.session.timeout.ms", 1...86_400_000) { result.groups.minSessionTimeoutMillis = Int32(v) }
        if let v = try int("group.max.session.timeout.ms", 1...86_400_000) { result.groups.maxSessionTimeoutMillis = Int32(v) }
        if let v = try int("group.max.size", 1...1_000_000) { result.groups.maxMembersPerGroup = v }
        if let v = try int("offsets.retention.minutes", 1...10_000_000) { result.groups.offsetsRetentionMillis = Int64(v) * 60_000 }
        if let v = try int("offsets.retention.check.interval.ms", 1_000...86_400_000) { result.groups.offsetsRetentionCheckIntervalMillis = Int64(v) }
        if let v = try int("offsets.flush.ms", 0...3_600_000) { result.storage.offsetsFlush = OffsetFlushPolicy(flushMillis: Int64(v)) }
        guard result.groups.minSessionTimeoutMillis <= result.groups.maxSessionTimeoutMillis else {
            throw ValidationError("group.min.session.timeout.ms must not be above group.max.session.timeout.ms")
        }
        if let v = try int("max.connections", 1...1_000_000) { result.budgets.maxConnections = v }
        if let v = try int("max.span.descriptors.per.connection", 1...65_536) { result.budgets.spanDescriptorsPerConnectionMax = v }
        if let v = try int("max.outbound.bytes.per.connection", 65_536...(1 << 30)) { result.budgets.outboundBytesPerConnectionMax = v }
        if let v = try int("max.inbound.buffered.bytes", 1 << 20...(1 << 40)) { result.budgets.inboundBufferedBytesMax = v }
        if let v = try int("frame.completion.seconds", 1...3600) { result.budgets.frameCompletionSeconds = Int64(v) }
        if let v = try int("quota.window.num", 2...100) { result.quotas.samples = v }
        if let v = try int("quota.window.size.seconds", 1...3600) { result.quotas.windowMillis = Int64(v) * 1000 }
        result.authorization = try Self.authorization(settings)
        // Listed read-only by DescribeConfigs on the BROKER resource; AlterConfigs refuses them.
        result.staticSettings = settings
        result.staticSettingKeys = Set(Self.brokerKeys)
        do {
            result.storage.topicDefaults = try TopicConfig(topicSettings)
        } catch let error as StorageError {
            throw ValidationError("topic default: \(error.message)")
        }
        return (settings, result)
    }

    /// `authorizer.enabled`, `super.users` (`User:a;User:b`), `allow.everyone.if.no.acl.found`.
    static func authorization(_ settings: [String: String]) throws -> Authorizer.Config {
        func bool(_ key: String) throws -> Bool? {
            guard let text = settings[key] else { return nil }
            guard text == "true" || text == "false" else { throw ValidationError("\(key) must be true or false (got '\(text)')") }
            return text == "true"
        }
        var config = Authorizer.Config()
        config.enabled = try bool("authorizer.enabled") ?? false
        config.allowEveryoneIfNoAclFound = try bool("allow.everyone.if.no.acl.found") ?? false
        if let text = settings["super.users"] {
            let users = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            for user in users {
                guard let colon = user.firstIndex(of: ":"), colon != user.startIndex, user.index(after: colon) != user.endIndex else {
                    throw ValidationError("super.users must be ';'-separated principals like User:admin;User:ops (got '\(user)')")
                }
            }
            config.superUsers = Set(users)
        }
        return config
    }

    func validate() throws {
        _ = try brokerConfig()
        _ = try kafkaConfigs()
        _ = try nativeSecurity()
        _ = try operationsSettings()
        _ = try clusterSettings()
    }

    /// Cluster mode: the one credential store of every listener, filled from the cluster's
    /// metadata (one broker per process, so one store).
    static let replicatedCredentials = CredentialStore(replicated: ())

    /// The listeners' credential store: the replicated one in cluster mode, else the data
    /// directory's file (nil if it cannot be opened).
    func credentialStore(dataDirectory: String) throws -> CredentialStore? {
        if try clusterSettings() != nil { return Self.replicatedCredentials }
        return try? CredentialStore(directory: dataDirectory)
    }

    func clusterSettings() throws -> ClusterOptions.Settings? {
        try cluster.resolve(file: fileSettings())
    }

    /// The settings given in the config file (for the operations options).
    func fileSettings() throws -> [String: String] {
        guard let config else { return [:] }
        return Dictionary(try Self.readProperties(config), uniquingKeysWith: { _, last in last })
    }

    func operationsSettings() throws -> OperationsOptions.Settings {
        try operations.resolve(file: fileSettings())
    }

    /// Settings given in the file or as flags (what differs from the defaults), for the start log.
    func explicitSettings() throws -> [String: String] {
        var explicit = try fileSettings()
        if let dataDir { explicit["data.dir"] = dataDir }
        if let listen { explicit["listen"] = listen }
        if let defaultPartitions { explicit["default.partitions"] = String(defaultPartitions) }
        if !kafkaListen.isEmpty { explicit["kafka.listen"] = kafkaListen.joined(separator: ",") }
        if !kafkaAdvertise.isEmpty { explicit["kafka.advertise"] = kafkaAdvertise.joined(separator: ",") }
        if let v = sslCertificate { explicit["ssl.certificate"] = v }
        if let v = sslKey { explicit["ssl.key"] = v }
        if let v = sslClientCa { explicit["ssl.client.ca"] = v }
        if let v = sslClientAuth { explicit["ssl.client.auth"] = v }
        if let v = nativeAuth { explicit["native.auth"] = v }
        if authorizer { explicit["authorizer.enabled"] = "true" }
        if let superUsers { explicit["super.users"] = superUsers }
        if let v = allowEveryoneIfNoAclFound { explicit["allow.everyone.if.no.acl.found"] = String(v) }
        for (key, value) in try parseConfigs(topicDefaults) { explicit[key] = value }
        if let v = operations.httpListen { explicit["http.listen"] = v }
        if let v = operations.httpSslCertificate { explicit["http.ssl.certificate"] = v }
        if let v = operations.httpSslKey { explicit["http.ssl.key"] = v }
        if let v = operations.httpAuth { explicit["http.auth.enabled"] = String(v) }
        if let v = operations.httpAuthOpenPaths { explicit["http.auth.open.paths"] = v }
        if let v = operations.httpAuthTokenFile { explicit["http.auth.token-file"] = v }
        if let v = operations.logLevel { explicit["log.level"] = v }
        if let v = operations.logFormat { explicit["log.format"] = v }
        if let v = cluster.etcd { explicit["etcd.endpoints"] = v }
        if let v = cluster.nodeId { explicit["node.id"] = String(v) }
        if let v = cluster.clusterId { explicit["cluster.id"] = v }
        if let v = cluster.clusterLeaseTtlSeconds { explicit["cluster.lease.ttl.seconds"] = String(v) }
        if let v = cluster.defaultReplicationFactor { explicit["default.replication.factor"] = String(v) }
        explicit.merge(interBroker.merged(file: [:]), uniquingKeysWith: { _, flag in flag })
        return explicit
    }

    func run() async throws {
        var clusteredConfig = try brokerConfig()
        if let settings = try clusterSettings() {
            clusteredConfig.nodeId = settings.nodeId
            clusteredConfig.securityInCluster = true
            clusteredConfig.replicaLagTimeMaxMillis = settings.replicaLagTimeMaxMillis
        }
        let config = clusteredConfig
        let ops = try operationsSettings()
        LoggingSystem.bootstrap { label in SpoolLogHandler(label: label, format: ops.logFormat, level: ops.logLevel) }
        let logger = Logger(label: "spool.broker")
        let exporter = ops.http == nil ? nil : PrometheusExporter()
        let metrics = exporter.map { BrokerMetrics(factory: $0) } ?? .disabled()
        let events = BrokerEvents(metrics: metrics, logger: logger)
        let admin = try ops.http.map { http in
            var auth: AdminHTTPAuth?
            if ops.httpAuth ?? config.authorization.enabled {
                guard let store = try credentialStore(dataDirectory: config.storage.dataDirectory) else {
                    throw CLIError("the admin listener's login needs the credential store in \(config.storage.dataDirectory)")
                }
                let tokens = try ops.httpTokenFile.map { path in
                    do { return try BearerTokens(file: path) } catch { throw CLIError("http.auth.token-file: \(error)") }
                }
                auth = AdminHTTPAuth(verifier: PasswordVerifier(store: store), tokens: tokens, openPaths: ops.httpOpenPaths, events: events)
            }
            do {
                return try AdminHTTPListener(exporter: exporter, host: http.host, port: http.port, tls: ops.httpTLS, auth: auth,
                                             logger: Logger(label: "spool.admin-http"))
            } catch let error as SecurityError {
                throw CLIError("admin HTTP listener: \(error)")
            }
        }
        let dataPath = URL(fileURLWithPath: config.storage.dataDirectory).standardizedFileURL.path
        let explicit = try explicitSettings()
        let clusterSettings = try clusterSettings()
        let metricsFactory: any MetricsFactory = exporter ?? NOOPMetricsHandler.instance
        var join: BrokerService.Join?
        if let settings = clusterSettings {
            join = { @Sendable (native: String, kafka: String?, kafkaListeners: [String: String], broker: Broker) throws -> ClusterReplicaManager in
                var configuration = ClusterConfiguration(
                    nodeId: settings.nodeId, clusterId: settings.clusterId, etcdEndpoints: settings.endpoints,
                    nativeAddress: native, kafkaAddress: kafka ?? "")
                configuration.kafkaListeners = kafkaListeners
                configuration.leaseTTLSeconds = settings.leaseTTLSeconds
                configuration.defaultReplicationFactor = settings.defaultReplicationFactor
                configuration.preferredLeaderIntervalSeconds = settings.preferredLeaderIntervalSeconds
                let member = try ClusterMember(configuration: configuration, logger: Logger(label: "spool.cluster"), factory: metricsFactory)
                let credentials = Self.replicatedCredentials
                let manager = try ClusterReplicaManager(member: member, broker: broker, credentials: credentials,
                                                        logger: Logger(label: "spool.cluster"), factory: metricsFactory)
                credentials.replicate(through: manager)
                return manager
            }
        }
        let nativeSecurity = try nativeSecurity()
        let nativeName = nativeSecurity.tls == nil ? "native" : "native+tls"
        let kafkaListeners = try kafkaConfigs()
        let interBrokerSecurity = try interBroker.resolve(file: try fileSettings(), listeners: kafkaListeners, clustered: clusterSettings != nil)
        let broker = BrokerService(config: config, kafka: kafkaListeners, native: nativeSecurity, events: events, admin: admin, join: join,
                                   interBroker: interBrokerSecurity,
                                   offsetsTopic: (clusterSettings?.offsetsTopicPartitions ?? Broker.offsetsTopicPartitionsDefault,
                                                  clusterSettings?.offsetsTopicReplicationFactor ?? Broker.offsetsTopicReplicationFactorDefault)) { server, adminAddress in
            var listeners = "\(nativeName)=\(server.localAddress.ipAddress ?? config.host):\(server.port)"
            for kafka in server.kafkaListeners {
                let name = kafka.securityProtocol == .plaintext ? "kafka" : "kafka-\(kafka.securityProtocol.rawValue.lowercased())"
                listeners += ",\(name)=\(kafka.localAddress.ipAddress ?? "?"):\(kafka.localAddress.port ?? 0)"
            }
            if let adminAddress { listeners += ",admin-http=\(adminAddress)" }
            logger.info("broker started", metadata: [
                "version": "\(Broker.version)", "listeners": "\(listeners)", "data_dir": "\(dataPath)",
                "clean_start": "\(server.broker.openedClean)",
                "config": "\(explicit.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
            ])
            for kafka in server.kafkaListeners {
                // The first line keeps the form tools parse; each other listener names its protocol.
                let tag = kafka.securityProtocol == .plaintext ? "" : " \(kafka.securityProtocol.rawValue)"
                print("Kafka clients\(tag): \(kafka.localAddress) (advertised as \(kafka.advertisedAddress))")
            }
            // The banner: tools and tests wait for it. Printed once the service group's
            // signal handlers are in place, so a SIGTERM right after it finds them.
            print("spool broker \(Broker.version) listening on \(server.localAddress), data in \(dataPath)\(server.broker.openedClean ? "" : " (recovered after an unclean stop)")\(adminAddress.map { ", admin \(admin?.scheme ?? "http")://\($0)/" } ?? "")")
            fflush(nil)
        }
        // Services stop in reverse order: the broker first (stop accepting, drain, flush,
        // clean marker), then the admin listener, so /metrics and /ready answer until the end.
        var services: [any Service] = []
        if let admin { services.append(admin) }
        services.append(broker)
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE || error.errnoCode == EADDRNOTAVAIL {
            // Say which listener could not bind, in words.
            var candidates = ["\(config.host):\(config.port)"]
            for kafka in try kafkaConfigs() { candidates.append("\(kafka.host):\(kafka.port)") }
            if let http = ops.http { candidates.append("\(http.host):\(http.port)") }
            let address = candidates.first { candidate in
                let parts = candidate.split(separator: ":")
                return !Self.canBind(host: String(parts[0]), port: Int(parts[1]) ?? 0)
            } ?? candidates[0]
            if error.errnoCode == EADDRNOTAVAIL { throw CLIError("cannot listen on \(address): the address is not one of this machine's") }
            throw CLIError("address \(address) is already in use (another broker?); pick others with --listen, --kafka-listen and --http-listen HOST:PORT (or none)")
        }
        print("stopped cleanly")
    }
}

extension BrokerCommand {
    /// True if a TCP socket can bind `host:port` right now (used to tell which listener failed).
    static func canBind(host: String, port: Int) -> Bool {
        guard port != 0 else { return true }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { return true }
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }
}

