import NIOCore
import SpoolSecurity

// DescribeUserScramCredentials and AlterUserScramCredentials, over the credential store.
extension KafkaAPIs {
    func describeUserScramCredentials(_ request: DescribeUserScramCredentialsRequest, _ call: KafkaCall) -> DescribeUserScramCredentialsResponse {
        guard mayOnCluster(call, .describe) else {
            return .init(errorCode: Self.clusterDenied, errorMessage: "not authorized to describe SCRAM credentials")
        }
        guard let store = config.credentials else {
            return .init(errorCode: KafkaErrorCode.securityDisabled.rawValue, errorMessage: "no credential store")
        }
        let all = store.users()
        func info(_ credentials: [ScramCredential]) -> [DescribeUserScramCredentialsResponse.Result.CredentialInfo] {
            credentials.map { .init(mechanism: $0.mechanism.kafkaType, iterations: Int32($0.iterations)) }
        }
        guard let users = request.users, !users.isEmpty else {
            return .init(results: all.map { .init(user: $0.user, errorCode: 0, credentialInfos: info($0.credentials)) })
        }
        var seen = Set<String>()
        return .init(results: users.map { entry in
            guard seen.insert(entry.name).inserted else {
                return .init(user: entry.name, errorCode: KafkaErrorCode.duplicateResource.rawValue, errorMessage: "user named twice")
            }
            guard let found = all.first(where: { $0.user == entry.name }) else {
                return .init(user: entry.name, errorCode: KafkaErrorCode.resourceNotFound.rawValue,
                             errorMessage: "Attempt to describe a user credential that does not exist")
            }
            return .init(user: entry.name, errorCode: 0, credentialInfos: info(found.credentials))
        })
    }

    /// In cluster mode the store is replicated: each change goes to the cluster's metadata.
    func alterUserScramCredentials(_ request: AlterUserScramCredentialsRequest, _ call: KafkaCall) -> EventLoopFuture<AlterUserScramCredentialsResponse> {
        guard mayOnCluster(call, .alter) else {
            return call.eventLoop.makeSucceededFuture(.init(results: (request.deletions.map(\.name) + request.upsertions.map(\.name)).map {
                .init(user: $0, errorCode: Self.clusterDenied, errorMessage: "not authorized to alter SCRAM credentials")
            }))
        }
        guard let store = config.credentials else {
            return call.eventLoop.makeSucceededFuture(.init(results: (request.deletions.map(\.name) + request.upsertions.map(\.name)).map {
                .init(user: $0, errorCode: KafkaErrorCode.securityDisabled.rawValue, errorMessage: "no credential store")
            }))
        }
        return call.eventLoop.makeFutureWithTask { await Self.alter(request, store) }
    }

    private static func alter(_ request: AlterUserScramCredentialsRequest, _ store: CredentialStore) async -> AlterUserScramCredentialsResponse {
        var results: [String: (KafkaErrorCode, String?)] = [:]
        var order: [String] = []
        func note(_ user: String, _ code: KafkaErrorCode, _ message: String? = nil) {
            if results[user] == nil { order.append(user) }
            // The first error of a user stands.
            if results[user] == nil || results[user]!.0 == .none { results[user] = (code, message) }
        }
        for deletion in request.deletions {
            guard let mechanism = ScramMechanism(kafkaType: deletion.mechanism) else {
                note(deletion.name, .unsupportedSaslMechanism, "Unknown SCRAM mechanism"); continue
            }
            do throws(SecurityError) {
                try await store.deleteAnywhere(user: deletion.name, mechanism: mechanism)
                note(deletion.name, .none)
            } catch {
                note(deletion.name, error.code == .unknownUser ? .resourceNotFound : .unacceptableCredential, error.message)
            }
        }
        for upsertion in request.upsertions {
            guard let mechanism = ScramMechanism(kafkaType: upsertion.mechanism) else {
                note(upsertion.name, .unsupportedSaslMechanism, "Unknown SCRAM mechanism"); continue
            }
            let iterations = Int(upsertion.iterations)
            let salt = Array(upsertion.salt.readableBytesView)
            let salted = Array(upsertion.saltedPassword.readableBytesView)
            guard (ScramMechanism.minIterations...ScramMechanism.maxIterations).contains(iterations) else {
                note(upsertion.name, .unacceptableCredential,
                     "iterations must be in \(ScramMechanism.minIterations)...\(ScramMechanism.maxIterations)"); continue
            }
            guard !salt.isEmpty, salted.count == mechanism.hashBytes else {
                note(upsertion.name, .unacceptableCredential, "empty salt or a salted password of the wrong length"); continue
            }
            do throws(SecurityError) {
                try await store.upsertAnywhere(user: upsertion.name, ScramCredential(mechanism: mechanism, salt: salt, iterations: iterations, saltedPassword: salted))
                note(upsertion.name, .none)
            } catch {
                note(upsertion.name, .unacceptableCredential, error.message)
            }
        }
        return .init(results: order.map { .init(user: $0, errorCode: results[$0]!.0.rawValue, errorMessage: results[$0]!.1) })
    }
}
