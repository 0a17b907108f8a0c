import Foundation
import Testing
@testable import SpoolStorage

/// `broker-configs.meta`: settings per scope survive a reopen byte for byte (tabs, spaces,
/// non-ASCII), an empty set removes its scope, limits are checked, a damaged file is refused.
@Suite struct BrokerConfigStoreTests {
    @Test func settingsSurviveAReopenExactly() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try BrokerConfigStore(dataDirectory: dir.path)
        try store.replace("*", ["custom.key": "a b\tc\n%20 ☃ é"])
        try store.replace("3", ["sasl.kerberos.min.time.before.relogin": "58000", "x": ""])
        let reopened = try BrokerConfigStore(dataDirectory: dir.path)
        #expect(reopened.get("*") == ["custom.key": "a b\tc\n%20 ☃ é"])
        #expect(reopened.get("3") == ["sasl.kerberos.min.time.before.relogin": "58000", "x": ""])
        #expect(reopened.get("4").isEmpty)
        try reopened.replace("3", [:])
        #expect(try BrokerConfigStore(dataDirectory: dir.path).get("3").isEmpty)
    }

    @Test func limitsAndDamageAreRefused() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try BrokerConfigStore(dataDirectory: dir.path)
        #expect(throws: StorageError.self) { try store.replace("*", ["": "v"]) }
        #expect(throws: StorageError.self) { try store.replace("*", ["k": String(repeating: "v", count: BrokerConfigStore.maxFieldBytes + 1)]) }
        let many = Dictionary(uniqueKeysWithValues: (0...BrokerConfigStore.maxSettingsPerScope).map { ("k\($0)", "v") })
        #expect(throws: StorageError.self) { try store.replace("*", many) }
        #expect(store.get("*").isEmpty, "a refused change writes nothing")

        FileManager.default.createFile(atPath: dir.path + "/" + BrokerConfigStore.fileName, contents: Data("spool-broker-configs v1\nbroker\tk\tv\n".utf8))
        let error = #expect(throws: StorageError.self) { _ = try BrokerConfigStore(dataDirectory: dir.path) }
        #expect(error?.code == .corrupt)
    }
}
