import Foundation

// The JSON shapes of etcd 3.4's gRPC gateway (`/v3/...`): proto3 JSON, so bytes are base64,
// int64 are strings, enums are names, and fields at their default value are left out
// (a PUT watch event has no `type`, a failed txn no `succeeded`). Internal: the public API is
// in EtcdClient and the Etcd* value types.

enum GW {
    static func b64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
    static func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
    static func bytes(_ b64: String?) -> [UInt8] {
        guard let b64, !b64.isEmpty, let data = Data(base64Encoded: b64) else { return [] }
        return [UInt8](data)
    }
    static func int(_ text: String?) -> Int64 { text.flatMap { Int64($0) } ?? 0 }

    struct Header: Decodable { var revision: String? }

    struct KeyValue: Decodable {
        var key: String?
        var create_revision: String?
        var mod_revision: String?
        var version: String?
        var value: String?
        var lease: String?

        var model: EtcdKeyValue {
            EtcdKeyValue(
                keyBytes: GW.bytes(key), value: GW.bytes(value), createRevision: GW.int(create_revision),
                modRevision: GW.int(mod_revision), version: GW.int(version), lease: GW.int(lease))
        }
    }

    struct RangeRequest: Encodable {
        var key: String
        var range_end: String?
        var limit: String?
        var revision: String?
        var serializable: Bool?
        var keys_only: Bool?
        var count_only: Bool?
    }

    struct RangeResponse: Decodable {
        var header: Header?
        var kvs: [KeyValue]?
        var more: Bool?
        var count: String?

        var model: EtcdRangeResult {
            EtcdRangeResult(
                kvs: (kvs ?? []).map(\.model), count: GW.int(count), more: more ?? false,
                revision: GW.int(header?.revision))
        }
    }

    struct PutRequest: Encodable {
        var key: String
        var value: String
        var lease: String?
        var prev_kv: Bool?
        var ignore_lease: Bool?
    }

    struct PutResponse: Decodable {
        var header: Header?
        var prev_kv: KeyValue?
        var model: EtcdPutResult { EtcdPutResult(revision: GW.int(header?.revision), previous: prev_kv?.model) }
    }

    struct DeleteRangeRequest: Encodable {
        var key: String
        var range_end: String?
        var prev_kv: Bool?
    }

    struct DeleteRangeResponse: Decodable {
        var header: Header?
        var deleted: String?
        var prev_kvs: [KeyValue]?
        var model: EtcdDeleteResult {
            EtcdDeleteResult(
                revision: GW.int(header?.revision), deleted: GW.int(deleted), previous: (prev_kvs ?? []).map(\.model))
        }
    }

    struct Compare: Encodable {
        var key: String
        var range_end: String?
        var target: String
        var result: String
        var version: String?
        var create_revision: String?
        var mod_revision: String?
        var value: String?
        var lease: String?
    }

    struct RequestOp: Encodable {
        var request_range: RangeRequest?
        var request_put: PutRequest?
        var request_delete_range: DeleteRangeRequest?
    }

    struct TxnRequest: Encodable {
        var compare: [Compare]
        var success: [RequestOp]
        var failure: [RequestOp]
    }

    struct ResponseOp: Decodable {
        var response_range: RangeResponse?
        var response_put: PutResponse?
        var response_delete_range: DeleteRangeResponse?
    }

    struct TxnResponse: Decodable {
        var header: Header?
        var succeeded: Bool?
        var responses: [ResponseOp]?
    }

    struct LeaseGrantRequest: Encodable {
        var TTL: String
        var ID: String
    }

    struct LeaseGrantResponse: Decodable {
        var header: Header?
        var ID: String?
        var TTL: String?
        var error: String?
    }

    struct LeaseIDRequest: Encodable { var ID: String }

    struct LeaseKeepAliveResponse: Decodable {
        var header: Header?
        var ID: String?
        var TTL: String?
    }

    struct LeaseRevokeResponse: Decodable { var header: Header? }

    /// One line of a streamed answer: `{"result": ...}` or `{"error": ...}`.
    struct StreamLine<Result: Decodable>: Decodable {
        var result: Result?
        var error: StreamError?
    }

    struct StreamError: Decodable {
        var grpc_code: Int?
        var http_code: Int?
        var message: String?
    }

    /// A unary call's error body.
    struct UnaryError: Decodable {
        var error: String?
        var message: String?
        var code: Int?
    }

    struct WatchCreateRequest: Encodable {
        var key: String
        var range_end: String?
        var start_revision: String?
        var progress_notify: Bool?
        var prev_kv: Bool?
    }

    struct WatchRequest: Encodable { var create_request: WatchCreateRequest }

    struct Event: Decodable {
        var type: String?
        var kv: KeyValue?
        var prev_kv: KeyValue?
    }

    struct WatchResponse: Decodable {
        var header: Header?
        var watch_id: String?
        var created: Bool?
        var canceled: Bool?
        var compact_revision: String?
        var cancel_reason: String?
        var events: [Event]?
    }
}
