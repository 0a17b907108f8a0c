import Foundation
import SpoolEtcd

/// JSON in and out of etcd values (control plane only: a few small records per change).
enum JSONValue {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [UInt8](try encoder.encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, from kv: EtcdKeyValue) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(kv.value))
        } catch {
            throw EtcdError(.invalidResponse, "\(kv.key) does not hold a \(T.self): \(error)")
        }
    }
}
