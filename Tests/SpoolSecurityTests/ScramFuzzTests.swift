import Foundation
import SpoolTestSupport
import Testing

@testable import SpoolSecurity

/// The SCRAM server's parsers (client-first, client-final) fed malformed messages: random
/// bytes, and valid messages with bytes flipped, cut or repeated. Each must be refused with
/// a `SecurityError` (or, for a mutation that stays valid, accepted), never crash.
@Suite struct ScramFuzzTests {
    static let rounds = 3_000

    /// A random mutation of `message`.
    static func mutate(_ message: [UInt8], _ rng: inout SeededRandom) -> [UInt8] {
        var bytes = message
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: // random bytes
            return (0..<Int.random(in: 0..<96, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case 1: // flip some bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
        case 2: // cut
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
        case 3: // insert SCRAM's separators
            let inserted: [UInt8] = Array([",", "=", "=2C", "=3D", "=Z", ",p=", ",r=", "n,", "\u{0}"].randomElement(using: &rng)!.utf8)
            bytes.insert(contentsOf: inserted, at: Int.random(in: 0...bytes.count, using: &rng))
        case 4: // repeat
            bytes += bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))
        default: // invalid UTF-8
            bytes.insert(0xC3, at: Int.random(in: 0...bytes.count, using: &rng))
        }
        return bytes
    }

    @Test(arguments: ScramMechanism.allCases)
    func malformedClientMessagesNeverCrash(mechanism: ScramMechanism) throws {
        var rng = SeededRandom(test: "malformedClientMessagesNeverCrash-\(mechanism.name)")
        let credential = try ScramCredential.derive(password: "pencil", mechanism: mechanism)
        let lookup: @Sendable (String) -> ScramCredential? = { $0 == "user" ? credential : nil }
        // A valid exchange to mutate.
        var client = ScramClient(mechanism: mechanism, user: "user", password: "pencil", clientNonce: "fyko+d2lbbFgONRv9qkxdawL")
        var reference = ScramServer(mechanism: mechanism, serverNonce: "3rfcNHYJY1ZVvWVs7j", lookup: lookup)
        let clientFirst = client.clientFirst
        let clientFinal = try client.receiveServerFirst(try reference.receiveClientFirst(clientFirst))
        var refusedFirst = 0, refusedFinal = 0
        for _ in 0..<Self.rounds {
            var server = ScramServer(mechanism: mechanism, serverNonce: "3rfcNHYJY1ZVvWVs7j", lookup: lookup)
            let first = Bool.random(using: &rng) ? Self.mutate(clientFirst, &rng) : clientFirst
            do {
                _ = try server.receiveClientFirst(first)
            } catch {
                refusedFirst += 1
                // After a refusal the exchange is over: a client-final is out of order.
                #expect(throws: SecurityError.self, "seed \(rng.seed)") { _ = try server.receiveClientFinal(clientFinal) }
                continue
            }
            do {
                _ = try server.receiveClientFinal(Self.mutate(clientFinal, &rng))
            } catch {
                refusedFinal += 1
            }
        }
        #expect(refusedFirst > 0 && refusedFinal > 0, "seed \(rng.seed): the mutations reached both parsers")
        // The same through SaslServerSession, as both listeners run it: random tokens in any order.
        let directory = NSTemporaryDirectory() + "spool-fuzz-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CredentialStore(directory: directory)
        try store.upsert(user: "user", credential)
        for _ in 0..<Self.rounds / 10 {
            var session = SaslServerSession(mechanism: mechanism.name, store: store)!
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let token = Self.mutate(Bool.random(using: &rng) ? clientFirst : clientFinal, &rng)
                if case .failure = session.step(token) { break }
            }
        }
    }
}
