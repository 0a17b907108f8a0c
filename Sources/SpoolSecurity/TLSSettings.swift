import NIOSSL

/// TLS for one listener (or the client): certificate chain and key (PEM files), an optional
/// CA for client certificates, Kafka's `ssl.client.auth`, TLS 1.2 or newer.
///
/// ```swift
/// var tls = TLSSettings(certificatePath: "certs/broker.pem", keyPath: "certs/broker.key")
/// tls.clientCAPath = "certs/ca.pem"; tls.clientAuth = .required
/// let context = try tls.makeServerContext()   // one per listener, shared by its connections
/// ```
public struct TLSSettings: Sendable, Equatable {
    /// Kafka's `ssl.client.auth`.
    public enum ClientAuth: String, Sendable, CaseIterable {
        /// No client certificate is asked for.
        case none
        /// A client certificate is verified if presented; a client without one connects.
        case requested
        /// A client without a certificate signed by the client CA is refused in the handshake.
        case required
    }

    public var certificatePath: String
    public var keyPath: String
    /// The CA that signs client certificates (needed for `requested` and `required`).
    public var clientCAPath: String?
    public var clientAuth: ClientAuth = .none

    public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil, clientAuth: ClientAuth = .none) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
        self.clientAuth = clientAuth
    }

    /// The server context: loads and checks the files now, so a bad path fails at start.
    public func makeServerContext() throws(SecurityError) -> NIOSSLContext {
        let configuration = try makeServerConfiguration()
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw SecurityError(.tls, "cannot load TLS certificate \(certificatePath) / key \(keyPath): \(error)")
        }
    }

    /// The server configuration (for a listener that makes its own context, as Hummingbird's
    /// TLS channel does); the certificate and key are loaded now, so a bad path fails at start.
    public func makeServerConfiguration() throws(SecurityError) -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            if clientAuth != .none {
                guard let clientCAPath else {
                    throw SecurityError(.tls, "ssl.client.auth=\(clientAuth.rawValue) needs a client CA (ssl.client.ca)")
                }
                configuration.trustRoots = .file(clientCAPath)
                configuration.certificateVerification = clientAuth == .required ? .noHostnameVerification : .optionalVerification
                configuration.sendCANameList = true
            }
            return configuration
        } catch let error as SecurityError {
            throw error
        } catch {
            throw SecurityError(.tls, "cannot load TLS certificate \(certificatePath) / key \(keyPath): \(error)")
        }
    }

    /// A client context trusting `caPath` (nil: the system roots), with an optional client
    /// certificate for mutual TLS.
    public static func makeClientContext(caPath: String?, certificatePath: String? = nil, keyPath: String? = nil) throws(SecurityError) -> NIOSSLContext {
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            if let caPath { configuration.trustRoots = .file(caPath) }
            if let certificatePath, let keyPath {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
            }
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw SecurityError(.tls, "cannot make a TLS client context (CA \(caPath ?? "system")): \(error)")
        }
    }

    /// The principal of a verified client certificate: `User:CN=<common name>`.
    public static func principal(of certificate: NIOSSLCertificate) -> Principal? {
        // NIOSSLCertificate exposes the common name only through its description.
        let text = certificate.description
        guard let range = text.range(of: ";common_name=") else { return nil }
        let rest = text[range.upperBound...]
        let end = rest.firstIndex(where: { $0 == ";" || $0 == ">" }) ?? rest.endIndex
        return Principal.certificate(commonName: String(rest[..<end]))
    }
}
