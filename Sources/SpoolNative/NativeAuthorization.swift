import SpoolBroker
import SpoolProtocol
import SwiftProtobuf

/// The authorization step of the native protocol: what each call needs (SECURITY.md's
/// table, mapped onto the native calls) and the check through `Broker.authorize`, so both
/// listeners share one decision, one log line and one counter per refusal. A refused call
/// answers PERMISSION_DENIED naming the operation and resource.
///
/// The native protocol does not authenticate yet: every connection is
/// `User:ANONYMOUS` (`ConnectionHandler.identity`) until its handshake learns to set
/// another principal. With the authorizer off nothing is decoded or looked up.
enum NativeAuthorization {
    /// One permission a call needs.
    struct Need {
        var operation: AclOperation
        var type: AclResourceType
        var name: String
        /// Also satisfied by `operation` on some resource of this type (InitProducerId: WRITE on any topic).
        var orAny: AclResourceType?
    }

    /// Throws PERMISSION_DENIED when `who` may not make call `method`.
    static func check(_ method: SpoolMethod, _ frame: Frame, _ who: AccessIdentity, broker: Broker) throws {
        guard broker.authorizationEnabled else { return }
        let api = "native.\(method)"
        for need in try needs(method, frame) {
            if broker.authorize(who, need.operation, need.type, need.name, api: api, log: need.orAny == nil) { continue }
            if let any = need.orAny, broker.authorizeAny(who, .write, any, api: api) { continue }
            throw SpoolStatusError(.permissionDenied, "\(who.principal) may not \(need.operation) \(need.type) \(need.name)")
        }
    }

    /// The permissions call `method` needs, read from its request (decoded again: only with the authorizer on).
    static func needs(_ method: SpoolMethod, _ frame: Frame) throws -> [Need] {
        func topic(_ op: AclOperation, _ name: String) -> Need { Need(operation: op, type: .topic, name: name) }
        func group(_ op: AclOperation, _ name: String) -> Need { Need(operation: op, type: .group, name: name) }
        func txn(_ name: String) -> Need { Need(operation: .write, type: .transactionalId, name: name) }
        func cluster(_ op: AclOperation) -> Need { Need(operation: op, type: .cluster, name: AclResourceType.clusterName) }
        func decode<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> M { try ProtoCodec.decode(type, from: frame.message) }
        switch method {
        case .handshake, .authenticate: return []
        case .createTopic: return [topic(.create, try decode(Spool_V1_CreateTopicRequest.self).name)]
        case .deleteTopic: return [topic(.delete, try decode(Spool_V1_DeleteTopicRequest.self).name)]
        case .listTopics, .listGroups: return [cluster(.describe)]
        case .metadata:
            let topics = try decode(Spool_V1_MetadataRequest.self).topics
            return topics.isEmpty ? [cluster(.describe)] : Set(topics).sorted().map { topic(.describe, $0) }
        case .describeTopic: return [topic(.describe, try decode(Spool_V1_DescribeTopicRequest.self).name)]
        case .alterTopicConfig: return [topic(.alterConfigs, try decode(Spool_V1_AlterTopicConfigRequest.self).name)]
        case .createPartitions: return [topic(.alter, try decode(Spool_V1_CreatePartitionsRequest.self).name)]
        case .recoverTopic: return [topic(.alter, try decode(Spool_V1_RecoverTopicRequest.self).name)]
        case .listOffsets: return Set(try decode(Spool_V1_ListOffsetsRequest.self).partitions.map(\.topic)).sorted().map { topic(.describe, $0) }
        case .commitOffsets:
            let r = try decode(Spool_V1_CommitOffsetsRequest.self)
            return [group(.read, r.group)] + Set(r.offsets.map(\.topic)).sorted().map { topic(.read, $0) }
        case .fetchOffsets:
            let r = try decode(Spool_V1_FetchOffsetsRequest.self)
            return [group(.describe, r.group)] + r.topics.map { topic(.describe, $0) }
        case .joinGroup: return [group(.read, try decode(Spool_V1_JoinGroupRequest.self).group)]
        case .syncGroup: return [group(.read, try decode(Spool_V1_SyncGroupRequest.self).group)]
        case .heartbeat: return [group(.read, try decode(Spool_V1_HeartbeatRequest.self).group)]
        case .leaveGroup: return [group(.read, try decode(Spool_V1_LeaveGroupRequest.self).group)]
        case .findCoordinator: return [group(.describe, try decode(Spool_V1_FindCoordinatorRequest.self).group)]
        case .describeGroups: return try decode(Spool_V1_DescribeGroupsRequest.self).groups.map { group(.describe, $0) }
        case .initProducerId:
            let r = try decode(Spool_V1_InitProducerIdRequest.self)
            if !r.transactionalID.isEmpty { return [txn(r.transactionalID)] }
            return [Need(operation: .idempotentWrite, type: .cluster, name: AclResourceType.clusterName, orAny: .topic)]
        case .addPartitionsToTxn:
            let r = try decode(Spool_V1_AddPartitionsToTxnRequest.self)
            return [txn(r.transactionalID)] + Set(r.partitions.map(\.topic)).sorted().map { topic(.write, $0) }
        case .sendOffsetsToTxn:
            let r = try decode(Spool_V1_SendOffsetsToTxnRequest.self)
            return [txn(r.transactionalID), group(.read, r.group)] + Set(r.offsets.map(\.topic)).sorted().map { topic(.read, $0) }
        case .endTxn: return [txn(try decode(Spool_V1_EndTxnRequest.self).transactionalID)]
        case .produce: return [topic(.write, try decode(Spool_V1_ProduceRequest.self).topic)]
        case .produceRecords: return [topic(.write, try decode(Spool_V1_ProduceRecordsRequest.self).topic)]
        case .fetch: return Set(try decode(Spool_V1_FetchRequest.self).partitions.map(\.topic)).sorted().map { topic(.read, $0) }
        case .subscribe: return [topic(.read, try decode(Spool_V1_SubscribeRequest.self).topic)]
        }
    }
}
