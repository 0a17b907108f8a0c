import Foundation
import Testing

@testable import SpoolSecurity

/// The admin listener's password check and its verified-login cache, and bearer tokens.
@Suite struct PasswordVerifierTests {
    func store() throws -> CredentialStore {
        let directory = NSTemporaryDirectory() + "spool-verifier-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try CredentialStore(directory: directory)
        try store.upsert(user: "alice", try .derive(password: "alice-secret", mechanism: .sha256))
        return store
    }

    @Test func verifiesCachesAndForgets() throws {
        let store = try store()
        let verifier = PasswordVerifier(store: store)
        #expect(verifier.verify(user: "alice", password: "alice-secret") == .verified(cached: false))
        #expect(verifier.verify(user: "alice", password: "alice-secret") == .verified(cached: true))
        #expect(verifier.verify(user: "alice", password: "alice-secreT") == .wrongPassword)
        #expect(verifier.verify(user: "bob", password: "alice-secret") == .unknownUser)
        #expect(verifier.verify(user: "alice", password: "") == .unknownUser)
        #expect(verifier.cachedLogins == 1)
        // A new password (a new salt and stored key): the cached login no longer counts.
        try store.upsert(user: "alice", try .derive(password: "other-secret", mechanism: .sha256))
        #expect(verifier.verify(user: "alice", password: "alice-secret") == .wrongPassword)
        #expect(verifier.verify(user: "alice", password: "other-secret") == .verified(cached: false))
        try store.delete(user: "alice")
        #expect(verifier.verify(user: "alice", password: "other-secret") == .unknownUser)
    }

    @Test func entriesExpire() throws {
        let verifier = PasswordVerifier(store: try store(), lifetime: .milliseconds(50))
        #expect(verifier.verify(user: "alice", password: "alice-secret") == .verified(cached: false))
        Thread.sleep(forTimeInterval: 0.1)
        #expect(verifier.verify(user: "alice", password: "alice-secret") == .verified(cached: false))
    }

    @Test func bearerTokens() throws {
        let tokens = try BearerTokens(lines: "# comment\n\nprometheus   0123456789abcdef # scraper\nops\tfedcba9876543210fedc\n")
        #expect(tokens.count == 2)
        #expect(tokens.user(for: "0123456789abcdef") == "prometheus")
        #expect(tokens.user(for: "fedcba9876543210fedc") == "ops")
        #expect(tokens.user(for: "0123456789abcdeF") == nil)
        #expect(throws: SecurityError.self) { try BearerTokens(lines: "short 123") }
        #expect(throws: SecurityError.self) { try BearerTokens(lines: "a b c") }
    }
}
