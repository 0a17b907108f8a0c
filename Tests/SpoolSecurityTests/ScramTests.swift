import Foundation
import Testing

@testable import SpoolSecurity

@Suite struct ScramTests {
    /// RFC 7677 §3: user "user", password "pencil", the exact messages of both sides.
    @Test func rfc7677Vector() throws {
        let salt = Array(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ==")!)
        let credential = try ScramCredential.derive(password: "pencil", mechanism: .sha256, iterations: 4096, salt: salt)
        var client = ScramClient(mechanism: .sha256, user: "user", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(String(decoding: client.clientFirst, as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        var server = ScramServer(mechanism: .sha256, serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0") { $0 == "user" ? credential : nil }
        let serverFirst = try server.receiveClientFirst(client.clientFirst)
        #expect(String(decoding: serverFirst, as: UTF8.self)
            == "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        let clientFinal = try client.receiveServerFirst(serverFirst)
        #expect(String(decoding: clientFinal, as: UTF8.self)
            == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        let (serverFinal, principal) = try server.receiveClientFinal(clientFinal)
        #expect(String(decoding: serverFinal, as: UTF8.self) == "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        #expect(principal.description == "User:user")
        try client.verifyServerFinal(serverFinal)
    }

    @Test(arguments: ScramMechanism.allCases)
    func roundTripAndWrongPassword(mechanism: ScramMechanism) throws {
        let credential = try ScramCredential.derive(password: "s3cret", mechanism: mechanism)
        #expect(credential.storedKey.count == mechanism.hashBytes && credential.salt.count == ScramCredential.saltBytes)
        #expect(credential.matches(password: "s3cret") && !credential.matches(password: "s3creT"))
        for (password, ok) in [("s3cret", true), ("wrong", false)] {
            var client = ScramClient(mechanism: mechanism, user: "a,b=c", password: password)
            var server = ScramServer(mechanism: mechanism) { $0 == "a,b=c" ? credential : nil }
            let first = try server.receiveClientFirst(client.clientFirst)
            let final = try client.receiveServerFirst(first)
            if ok {
                let (answer, principal) = try server.receiveClientFinal(final)
                try client.verifyServerFinal(answer)
                #expect(principal.name == "a,b=c", "=2C and =3D decode")
            } else {
                #expect(throws: SecurityError.self) { _ = try server.receiveClientFinal(final) }
                do { _ = try server.receiveClientFinal(final) } catch { #expect(error.code == .malformed, "a second final is out of order") }
            }
        }
    }

    @Test func refusesMalformedAndUnknown() throws {
        let credential = try ScramCredential.derive(password: "p", mechanism: .sha256)
        let lookup: @Sendable (String) -> ScramCredential? = { $0 == "u" ? credential : nil }
        let malformed = ["", "y,,n=u,r=x", "p=tls-unique,,n=u,r=x", "n,,r=x,n=u", "n,,n=u", "n,,n=u,r=", "n,,m=ext,n=u,r=x",
                         "n,,n=u=ZZ,r=x", String(repeating: "a", count: 5000), "n,a=other,n=u,r=abc"]
        for message in malformed {
            var server = ScramServer(mechanism: .sha256, lookup: lookup)
            #expect(throws: SecurityError.self, "\(message.prefix(30))") { _ = try server.receiveClientFirst(Array(message.utf8)) }
        }
        var server = ScramServer(mechanism: .sha256, lookup: lookup)
        do { _ = try server.receiveClientFirst(Array("n,,n=nobody,r=abc".utf8)); Issue.record("unknown user accepted") }
        catch { #expect(error.code == .authenticationFailed) }
        // A wrong nonce, a wrong channel-binding value, a short proof.
        for final in ["c=biws,r=abcX,p=AAAA", "c=eSws,r=abc", "c=biws,r=abc", "c=biws,r=abcS,p=AAAA"] {
            var s = ScramServer(mechanism: .sha256, serverNonce: "S", lookup: lookup)
            _ = try s.receiveClientFirst(Array("n,,n=u,r=abc".utf8))
            #expect(throws: SecurityError.self, "\(final)") { _ = try s.receiveClientFinal(Array(final.utf8)) }
        }
        #expect(throws: SecurityError.self) { _ = try ScramCredential.derive(password: "p", mechanism: .sha512, iterations: 4095) }
    }

    /// librdkafka 2.0 sends `r=<client nonce><client nonce><server nonce>`; Kafka checks the suffix, so does Spool.
    @Test func acceptsLibrdkafkasRepeatedClientNonce() throws {
        let salt = Array(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ==")!)
        let credential = try ScramCredential.derive(password: "pencil", mechanism: .sha256, salt: salt)
        var server = ScramServer(mechanism: .sha256, serverNonce: "SN") { _ in credential }
        let serverFirst = String(decoding: try server.receiveClientFirst(Array("n,,n=user,r=CN".utf8)), as: UTF8.self)
        let withoutProof = "c=biws,r=CNCNSN"
        let mechanism = ScramMechanism.sha256
        let salted = mechanism.saltedPassword(Array("pencil".utf8), salt: salt, iterations: 4096)
        let clientKey = mechanism.hmac(key: salted, Array("Client Key".utf8))
        let authMessage = Array("n=user,r=CN,\(serverFirst),\(withoutProof)".utf8)
        let proof = xor(clientKey, mechanism.hmac(key: mechanism.hash(clientKey), authMessage))
        let (_, principal) = try server.receiveClientFinal(Array("\(withoutProof),p=\(Data(proof).base64EncodedString())".utf8))
        #expect(principal.name == "user")
    }

    @Test func plainChecksTheScramRecord() throws {
        let directory = NSTemporaryDirectory() + "spool-plain-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CredentialStore(directory: directory)
        try store.upsert(user: "alice", try .derive(password: "pw", mechanism: .sha512))
        func plain(_ text: String) -> Bool {
            var session = SaslServerSession(mechanism: "PLAIN", store: store)!
            if case .success(_, let who) = session.step(Array(text.utf8)) { return who.name == "alice" }
            return false
        }
        #expect(plain("\0alice\0pw") && plain("alice\0alice\0pw"))
        #expect(!plain("\0alice\0wrong") && !plain("\0bob\0pw") && !plain("bob\0alice\0pw") && !plain("\0alice\0") && !plain("alice"))
        #expect(SaslServerSession(mechanism: "GSSAPI", store: store) == nil)
    }
}

@Suite struct CredentialStoreTests {
    @Test func roundTripThroughTheFile() throws {
        let directory = NSTemporaryDirectory() + "spool-creds-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CredentialStore(directory: directory)
        #expect(store.users().isEmpty)
        // '#' is outside base64's alphabet: the salts and keys in the file cannot spell the password by chance.
        let password = "pw#1"
        let a256 = try ScramCredential.derive(password: password, mechanism: .sha256)
        let a512 = try ScramCredential.derive(password: password, mechanism: .sha512, iterations: 8192)
        try store.upsert(user: "alice", a256)
        try store.upsert(user: "alice", a512)
        try store.upsert(user: "bob", try .derive(password: "pw2", mechanism: .sha256))
        // Another store (another process: `spool user` beside the broker) sees the same.
        let other = try CredentialStore(directory: directory)
        #expect(other.credential(user: "alice", mechanism: .sha512) == a512)
        #expect(other.users().map(\.user) == ["alice", "bob"])
        // The file holds no password.
        let text = try String(contentsOfFile: directory + "/credentials.json", encoding: .utf8)
        #expect(!text.contains(password) && text.contains("storedKey") && text.contains("8192"))
        // A change by one is seen by the other (re-read on change).
        try other.delete(user: "bob")
        try other.delete(user: "alice", mechanism: .sha256)
        #expect(store.credential(user: "bob", mechanism: .sha256) == nil)
        #expect(store.credential(user: "alice", mechanism: .sha256) == nil && store.credential(user: "alice", mechanism: .sha512) == a512)
        do { try store.delete(user: "nobody"); Issue.record("deleted nobody") } catch { #expect(error.code == .unknownUser) }
        #expect(throws: SecurityError.self) { try store.upsert(user: "", a256) }
        #expect(!FileManager.default.fileExists(atPath: directory + "/credentials.json.tmp"))
    }
}
