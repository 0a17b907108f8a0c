import Foundation
import SpoolStorage

/// The transaction coordinator's durable state: one JSON snapshot of every
/// transactional id (`transactions.json` in the data directory), replaced atomically
/// (written, fsynced, renamed) at every state change, read back at start.
struct TransactionStore: Sendable {
    static let fileName = "transactions.json"
    let path: String
    let io: FileIO

    init(dataDirectory: String, io: FileIO) {
        path = dataDirectory + "/" + Self.fileName
        self.io = io
    }

    func load() throws -> [String: TransactionMetadata] {
        guard let bytes = try Directory.readFile(path, io: io) else { return [:] }
        let list = try JSONDecoder().decode([TransactionMetadata].self, from: Data(bytes))
        return Dictionary(list.map { ($0.transactionalId, $0) }, uniquingKeysWith: { _, b in b })
    }

    func save(_ all: [String: TransactionMetadata]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(all.values.sorted { $0.transactionalId < $1.transactionalId })
        try Directory.writeAtomically(Array(data), to: path, io: io)
    }
}
