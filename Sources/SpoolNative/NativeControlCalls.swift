import SpoolBroker
import SpoolProtocol
import SpoolRecords
import SwiftProtobuf

/// The native protocol's control-plane calls — handshake, topics, offsets, groups,
/// producer ids, transactions: decode the request, call the broker core, build the answer. They need
/// no connection state, so they live apart from `ConnectionHandler`, which routes the
/// data-plane calls (produce, fetch, subscribe) itself and hands these over.
struct NativeControlCalls {
    /// What a control call produced.
    enum Outcome {
        /// The answer, ready now.
        case now(any SwiftProtobuf.Message)
        /// Work on the broker's I/O pool or a coordinator wait; answered when it completes.
        case later(@Sendable () async throws -> any SwiftProtobuf.Message & Sendable)
    }

    let broker: Broker

    /// The outcome of control call `method`, or nil when `method` is a data-plane call.
    func handle(_ method: SpoolMethod, _ frame: Frame, clientHost: String, localAddress: String = "") throws -> Outcome? {
        switch method {
        case .metadata:
            let request = try ProtoCodec.decode(Spool_V1_MetadataRequest.self, from: frame.message)
            return .now(NativeMetadata.answer(request, broker: broker, localAddress: localAddress))
        case .findCoordinator:
            let request = try ProtoCodec.decode(Spool_V1_FindCoordinatorRequest.self, from: frame.message)
            return .now(NativeGroupCalls.findCoordinator(request, broker: broker, localAddress: localAddress))
        case .handshake:
            return .now(try handshake(ProtoCodec.decode(Spool_V1_HandshakeRequest.self, from: frame.message)))
        case .createTopic:
            let request = try ProtoCodec.decode(Spool_V1_CreateTopicRequest.self, from: frame.message)
            var configs: [String: String] = [:]
            for c in request.configs { configs[c.key] = c.value }
            return .later { [broker, configs] in
                var response = Spool_V1_CreateTopicResponse()
                response.topic = NativeMessages.topic(
                    try await broker.createTopic(request.name, partitions: request.partitions == 0 ? nil : request.partitions,
                                                 replicationFactor: request.replicationFactor == 0 ? nil : Int(request.replicationFactor),
                                                 configs: configs))
                return response
            }
        case .deleteTopic:
            let request = try ProtoCodec.decode(Spool_V1_DeleteTopicRequest.self, from: frame.message)
            return .later { [broker] in
                try await broker.deleteTopic(request.name)
                return Spool_V1_DeleteTopicResponse()
            }
        case .listTopics:
            var response = Spool_V1_ListTopicsResponse()
            response.topics = broker.listTopics().map { t in
                var s = Spool_V1_TopicSummary()
                s.name = t.name
                s.partitions = t.partitions
                return s
            }
            return .now(response)
        case .describeTopic:
            var response = Spool_V1_DescribeTopicResponse()
            response.topic = NativeMessages.topic(try broker.describeTopic(ProtoCodec.decode(Spool_V1_DescribeTopicRequest.self, from: frame.message).name))
            return .now(response)
        case .alterTopicConfig:
            let request = try ProtoCodec.decode(Spool_V1_AlterTopicConfigRequest.self, from: frame.message)
            var set: [String: String] = [:]
            for c in request.set { set[c.key] = c.value }
            return .later { [broker, set] in
                var response = Spool_V1_AlterTopicConfigResponse()
                response.topic = NativeMessages.topic(try await broker.alterTopic(request.name, set: set))
                return response
            }
        case .createPartitions:
            let request = try ProtoCodec.decode(Spool_V1_CreatePartitionsRequest.self, from: frame.message)
            return .later { [broker] in
                try await broker.addPartitions(topic: request.name, totalCount: request.partitions)
                var response = Spool_V1_CreatePartitionsResponse()
                response.topic = NativeMessages.topic(try broker.describeTopic(request.name))
                return response
            }
        case .recoverTopic:
            let request = try ProtoCodec.decode(Spool_V1_RecoverTopicRequest.self, from: frame.message)
            return .later { [broker] in
                let (recovered, topic) = try await broker.recoverTopic(request.name)
                var response = Spool_V1_RecoverTopicResponse()
                response.recovered = recovered
                response.topic = NativeMessages.topic(topic)
                return response
            }
        case .listOffsets:
            return .now(listOffsets(try ProtoCodec.decode(Spool_V1_ListOffsetsRequest.self, from: frame.message)))
        case .commitOffsets:
            let request = try ProtoCodec.decode(Spool_V1_CommitOffsetsRequest.self, from: frame.message)
            if request.hasGenerationID {
                return .later { [broker] in try await NativeGroupCalls.memberCommit(request, broker: broker) }
            }
            var offsets: [TopicPartition: (offset: Int64, metadata: String)] = [:]
            for o in request.offsets { offsets[TopicPartition(o.topic, o.partition)] = (o.offset, o.metadata) }
            return .later { [broker, offsets] in
                let refused = try await broker.commitOffsets(group: request.group, offsets)
                if let (tp, code) = refused.sorted(by: { $0.key < $1.key }).first {
                    throw GroupCoordinatorError(code, "offset for \(tp) refused: \(code.rawValue)")
                }
                return Spool_V1_CommitOffsetsResponse()
            }
        case .fetchOffsets:
            let request = try ProtoCodec.decode(Spool_V1_FetchOffsetsRequest.self, from: frame.message)
            var response = Spool_V1_FetchOffsetsResponse()
            response.offsets = try broker.committedOffsets(group: request.group, topics: Set(request.topics)).map { c in
                var o = Spool_V1_GroupOffset()
                o.topic = c.partition.topic
                o.partition = c.partition.partition
                o.offset = c.offset
                o.metadata = c.metadata
                o.commitTimestamp = c.commitTimestamp
                return o
            }
            return .now(response)
        case .listGroups:
            var response = Spool_V1_ListGroupsResponse()
            response.groups = try broker.listGroups()
            return .now(response)
        // Group membership and producer ids (NativeGroupCalls.swift).
        case .joinGroup:
            let request = try ProtoCodec.decode(Spool_V1_JoinGroupRequest.self, from: frame.message)
                        return .later { [broker] in await NativeGroupCalls.join(request, clientHost: clientHost, broker: broker) }
        case .syncGroup:
            let request = try ProtoCodec.decode(Spool_V1_SyncGroupRequest.self, from: frame.message)
            return .later { [broker] in await NativeGroupCalls.sync(request, broker: broker) }
        case .heartbeat:
            return .now(NativeGroupCalls.heartbeat(try ProtoCodec.decode(Spool_V1_HeartbeatRequest.self, from: frame.message), broker: broker))
        case .leaveGroup:
            return .now(NativeGroupCalls.leave(try ProtoCodec.decode(Spool_V1_LeaveGroupRequest.self, from: frame.message), broker: broker))
        case .describeGroups:
            return .now(NativeGroupCalls.describe(try ProtoCodec.decode(Spool_V1_DescribeGroupsRequest.self, from: frame.message), broker: broker))
        case .initProducerId:
            let request = try ProtoCodec.decode(Spool_V1_InitProducerIdRequest.self, from: frame.message)
            if !request.transactionalID.isEmpty {
                return .later { [broker] in await NativeTransactionCalls.initProducerId(request, broker: broker) }
            }
            return .later { [broker] in try await NativeGroupCalls.initProducerId(request, broker: broker) }
        // Transactions (NativeTransactionCalls.swift).
        case .addPartitionsToTxn:
            let request = try ProtoCodec.decode(Spool_V1_AddPartitionsToTxnRequest.self, from: frame.message)
            return .later { [broker] in NativeTransactionCalls.addPartitions(request, broker: broker) }
        case .sendOffsetsToTxn:
            let request = try ProtoCodec.decode(Spool_V1_SendOffsetsToTxnRequest.self, from: frame.message)
            return .later { [broker] in NativeTransactionCalls.sendOffsets(request, broker: broker) }
        case .endTxn:
            let request = try ProtoCodec.decode(Spool_V1_EndTxnRequest.self, from: frame.message)
            return .later { [broker] in await NativeTransactionCalls.endTxn(request, broker: broker) }
        case .produce, .produceRecords, .fetch, .subscribe, .authenticate:
            return nil
        }
    }

    func handshake(_ request: Spool_V1_HandshakeRequest) throws -> Spool_V1_HandshakeResponse {
        let minVersion = request.minVersion == 0 ? 1 : request.minVersion
        let maxVersion = request.maxVersion == 0 ? 1 : request.maxVersion
        let version = NativeListener.protocolVersion
        guard minVersion <= version && maxVersion >= version else {
            throw SpoolStatusError(.failedPrecondition, "client speaks protocol versions \(minVersion)...\(maxVersion); broker speaks \(version)")
        }
        var response = Spool_V1_HandshakeResponse()
        response.version = version
        response.brokerVersion = Broker.version
        response.maxFrameBytes = UInt32(broker.config.maxFrameBytes)
        response.maxInFlight = UInt32(broker.config.maxInFlightPerConnection)
        return response
    }

    func listOffsets(_ request: Spool_V1_ListOffsetsRequest) -> Spool_V1_ListOffsetsResponse {
        var response = Spool_V1_ListOffsetsResponse()
        for p in request.partitions {
            var r = Spool_V1_ListOffsetsResult()
            r.topic = p.topic
            r.partition = p.partition
            do {
                let spec: OffsetSpec
                switch p.spec {
                case .earliest: spec = .earliest
                case .latest: spec = .latest
                case .timestamp: spec = .timestamp(p.timestamp)
                case .UNRECOGNIZED(let n): throw SpoolStatusError(.invalidArgument, "unknown offset spec \(n)")
                }
                r.offset = try broker.listOffset(TopicPartition(p.topic, p.partition), spec).offset
            } catch {
                let status = StatusMapping.status(for: error)
                r.code = status.code
                r.message = status.message
            }
            response.results.append(r)
        }
        return response
    }
}
