import NIOCore
import SpoolBroker
import SpoolRecords

// Consumer groups: the core's GroupCoordinator, which the native listener shares.
extension KafkaAPIs {
    func joinGroup(_ request: JoinGroupRequest, _ call: KafkaCall) -> EventLoopFuture<JoinGroupResponse> {
        guard may(call, .read, group: request.groupId) else {
            return call.eventLoop.makeSucceededFuture(JoinGroupResponse(
                errorCode: Self.groupDenied, generationId: -1, protocolName: nil, leader: "", memberId: request.memberId))
        }
        let join = GroupCoordinator.JoinRequest(
            groupId: request.groupId, memberId: request.memberId, groupInstanceId: request.groupInstanceId,
            clientId: call.header.clientId ?? "", clientHost: call.clientHost,
            sessionTimeoutMillis: request.sessionTimeoutMs,
            // v0 has no rebalance timeout: it is the session timeout.
            rebalanceTimeoutMillis: request.rebalanceTimeoutMs >= 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
            protocolType: request.protocolType,
            protocols: request.protocols.map { .init(name: $0.name, metadata: Array($0.metadata.readableBytesView)) },
            // v4+: a new member first gets MEMBER_ID_REQUIRED with its id, then rejoins with it.
            requireKnownMemberId: call.version >= 4)
        let promise = call.eventLoop.makePromise(of: JoinGroupResponse.self)
        broker.groups.join(join) { result in
            switch result {
            case .success(let joined):
                promise.succeed(JoinGroupResponse(
                    errorCode: 0, generationId: joined.generationId, protocolType: joined.protocolType,
                    protocolName: joined.protocolName, leader: joined.leaderId, memberId: joined.memberId,
                    members: joined.members.map {
                        .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, metadata: ByteBuffer(bytes: $0.metadata))
                    }))
            case .failure(let error):
                promise.succeed(JoinGroupResponse(
                    errorCode: KafkaErrorCode(error.code).rawValue, generationId: -1, protocolName: nil, leader: "",
                    memberId: error.memberId ?? request.memberId))
            }
        }
        return promise.futureResult
    }

    func syncGroup(_ request: SyncGroupRequest, _ call: KafkaCall) -> EventLoopFuture<SyncGroupResponse> {
        guard may(call, .read, group: request.groupId) else {
            return call.eventLoop.makeSucceededFuture(SyncGroupResponse(errorCode: Self.groupDenied))
        }
        var assignments: [String: [UInt8]] = [:]
        for a in request.assignments { assignments[a.memberId] = Array(a.assignment.readableBytesView) }
        let sync = GroupCoordinator.SyncRequest(
            groupId: request.groupId, generationId: request.generationId, memberId: request.memberId,
            groupInstanceId: request.groupInstanceId, protocolType: request.protocolType, protocolName: request.protocolName,
            assignments: assignments)
        let promise = call.eventLoop.makePromise(of: SyncGroupResponse.self)
        broker.groups.sync(sync) { result in
            switch result {
            case .success(let synced):
                promise.succeed(SyncGroupResponse(
                    errorCode: 0, protocolType: synced.protocolType, protocolName: synced.protocolName,
                    assignment: ByteBuffer(bytes: synced.assignment)))
            case .failure(let error):
                promise.succeed(SyncGroupResponse(errorCode: KafkaErrorCode(error.code).rawValue))
            }
        }
        return promise.futureResult
    }

    func heartbeat(_ request: HeartbeatRequest, _ call: KafkaCall) -> HeartbeatResponse {
        guard may(call, .read, group: request.groupId) else { return HeartbeatResponse(errorCode: Self.groupDenied) }
        do {
            try broker.groups.heartbeat(
                groupId: request.groupId, memberId: request.memberId, groupInstanceId: request.groupInstanceId,
                generationId: request.generationId)
            return HeartbeatResponse(errorCode: 0)
        } catch {
            return HeartbeatResponse(errorCode: KafkaErrorCode(error.code).rawValue)
        }
    }

    func leaveGroup(_ request: LeaveGroupRequest, _ call: KafkaCall) -> LeaveGroupResponse {
        // v0-2 name one member; v3+ a batch.
        let members = call.version >= 3
            ? request.members.map { GroupCoordinator.MemberIdentity(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId) }
            : [GroupCoordinator.MemberIdentity(memberId: request.memberId)]
        guard may(call, .read, group: request.groupId) else { return LeaveGroupResponse(errorCode: Self.groupDenied) }
        do {
            let results = try broker.groups.leave(groupId: request.groupId, members: members)
            let errorCode = call.version < 3 ? results.first?.error.map { KafkaErrorCode($0).rawValue } ?? 0 : 0
            return LeaveGroupResponse(errorCode: errorCode, members: results.map {
                .init(memberId: $0.member.memberId, groupInstanceId: $0.member.groupInstanceId,
                      errorCode: $0.error.map { KafkaErrorCode($0).rawValue } ?? 0)
            })
        } catch {
            return LeaveGroupResponse(errorCode: KafkaErrorCode(error.code).rawValue)
        }
    }

    func offsetCommit(_ request: OffsetCommitRequest, _ call: KafkaCall) -> EventLoopFuture<OffsetCommitResponse> {
        // READ on the group (else GROUP_AUTHORIZATION_FAILED everywhere) and on each topic
        // (else TOPIC_AUTHORIZATION_FAILED for its partitions, the others committed).
        func answer(_ code: (String) -> Int16?) -> OffsetCommitResponse {
            OffsetCommitResponse(topics: request.topics.map { topic in
                .init(name: topic.name, partitions: topic.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: code(topic.name) ?? 0) })
            })
        }
        guard may(call, .read, group: request.groupId) else {
            return call.eventLoop.makeSucceededFuture(answer { _ in Self.groupDenied })
        }
        let deniedTopics = Set(request.topics.map(\.name).filter { !may(call, .read, topic: $0) })
        var offsets: [TopicPartition: GroupCoordinator.OffsetAndMetadata] = [:]
        for topic in request.topics where !deniedTopics.contains(topic.name) {
            for p in topic.partitions {
                offsets[TopicPartition(topic.name, p.partitionIndex)] = .init(offset: p.committedOffset, metadata: p.committedMetadata ?? "")
            }
        }
        let commit = GroupCoordinator.CommitRequest(
            groupId: request.groupId, generationId: request.generationId, memberId: request.memberId,
            groupInstanceId: request.groupInstanceId, offsets: offsets)
        let promise = call.eventLoop.makePromise(of: OffsetCommitResponse.self)
        broker.groups.commit(commit) { result in
            func code(_ tp: TopicPartition) -> Int16 {
                if deniedTopics.contains(tp.topic) { return Self.topicDenied }
                return switch result {
                case .success(let refused): refused[tp].map { KafkaErrorCode($0).rawValue } ?? 0
                case .failure(let error): KafkaErrorCode(error.code).rawValue
                }
            }
            promise.succeed(OffsetCommitResponse(topics: request.topics.map { topic in
                .init(name: topic.name, partitions: topic.partitions.map {
                    .init(partitionIndex: $0.partitionIndex, errorCode: code(TopicPartition(topic.name, $0.partitionIndex)))
                })
            }))
        }
        return promise.futureResult
    }

    func offsetFetch(_ request: OffsetFetchRequest, _ call: KafkaCall) -> OffsetFetchResponse {
        // DESCRIBE on the group, and on each topic: a named topic refused answers
        // TOPIC_AUTHORIZATION_FAILED per partition, one refused is left out of "every topic".
        func refused(_ code: Int16, _ names: Set<String>? = nil) -> [OffsetFetchResponse.Topic] {
            (request.topics ?? []).filter { names?.contains($0.name) ?? true }.map { t in
                .init(name: t.name, partitions: t.partitionIndexes.map {
                    .init(partitionIndex: $0, committedOffset: -1, metadata: "", errorCode: code)
                })
            }
        }
        guard may(call, .describe, group: request.groupId) else {
            return OffsetFetchResponse(topics: refused(Self.groupDenied), errorCode: Self.groupDenied)
        }
        let deniedTopics = Set((request.topics ?? []).map(\.name).filter { !may(call, .describe, topic: $0) })
        let partitions = request.topics.map { topics in
            topics.filter { !deniedTopics.contains($0.name) }.flatMap { t in t.partitionIndexes.map { TopicPartition(t.name, $0) } }
        }
        do {
            let fetched = try broker.groups.fetchOffsets(groupId: request.groupId, partitions: partitions)
            var topics: [OffsetFetchResponse.Topic] = refused(Self.topicDenied, deniedTopics)
            for f in fetched where request.topics != nil || may(call, .describe, topic: f.partition.topic, log: false) {
                let entry = OffsetFetchResponse.Topic.Partition(
                    partitionIndex: f.partition.partition, committedOffset: f.offset, committedLeaderEpoch: -1,
                    metadata: f.metadata, errorCode: 0)
                if let i = topics.firstIndex(where: { $0.name == f.partition.topic }) {
                    topics[i].partitions.append(entry)
                } else {
                    topics.append(.init(name: f.partition.topic, partitions: [entry]))
                }
            }
            return OffsetFetchResponse(topics: topics, errorCode: 0)
        } catch {
            let code = KafkaErrorCode(error.code).rawValue
            // v0-1 carry errors per partition only.
            return OffsetFetchResponse(
                topics: (request.topics ?? []).map { t in
                    .init(name: t.name, partitions: t.partitionIndexes.map {
                        .init(partitionIndex: $0, committedOffset: -1, metadata: "", errorCode: code)
                    })
                },
                errorCode: code)
        }
    }

    func listGroups(_ request: ListGroupsRequest, _ call: KafkaCall) -> ListGroupsResponse {
        let states = request.statesFilter.isEmpty ? nil : Set(request.statesFilter.compactMap { GroupState(rawValue: $0) })
        do {
            // DESCRIBE on the cluster lists every group; else those the principal may DESCRIBE.
            let everyGroup = mayOnCluster(call, .describe, log: false)
            let groups = try broker.groups.listGroups(states: states).filter { everyGroup || may(call, .describe, group: $0.groupId, log: false) }
            return ListGroupsResponse(errorCode: 0, groups: groups.map {
                .init(groupId: $0.groupId, protocolType: $0.protocolType, groupState: $0.state.rawValue)
            })
        } catch {
            return ListGroupsResponse(errorCode: KafkaErrorCode(error.code).rawValue)
        }
    }

    func describeGroups(_ request: DescribeGroupsRequest, _ call: KafkaCall) -> DescribeGroupsResponse {
        DescribeGroupsResponse(groups: request.groups.map { groupId in
            guard may(call, .describe, group: groupId) else {
                return .init(errorCode: Self.groupDenied, groupId: groupId, groupState: "", protocolType: "", protocolData: "")
            }
            do {
                let d = try broker.groups.describeGroup(groupId)
                return .init(
                    errorCode: 0, groupId: groupId, groupState: d.state.rawValue, protocolType: d.protocolType,
                    protocolData: d.protocolName,
                    members: d.members.map {
                        .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, clientId: $0.clientId,
                              clientHost: $0.clientHost, memberMetadata: ByteBuffer(bytes: $0.metadata),
                              memberAssignment: ByteBuffer(bytes: $0.assignment))
                    })
            } catch let error as GroupCoordinatorError where error.code == .groupIdNotFound {
                // Kafka answers an unknown group as Dead, without an error.
                return .init(errorCode: 0, groupId: groupId, groupState: GroupState.dead.rawValue, protocolType: "", protocolData: "")
            } catch {
                return .init(errorCode: KafkaErrorCode(error).rawValue, groupId: groupId, groupState: "", protocolType: "", protocolData: "")
            }
        })
    }

    func deleteGroups(_ request: DeleteGroupsRequest, _ call: KafkaCall) -> EventLoopFuture<DeleteGroupsResponse> {
        // DELETE on each group; the refused ones answer GROUP_AUTHORIZATION_FAILED.
        let denied = request.groupsNames.filter { !may(call, .delete, group: $0) }
        let allowed = request.groupsNames.filter { !denied.contains($0) }
        let promise = call.eventLoop.makePromise(of: DeleteGroupsResponse.self)
        guard !allowed.isEmpty else {
            promise.succeed(DeleteGroupsResponse(results: denied.map { .init(groupId: $0, errorCode: Self.groupDenied) }))
            return promise.futureResult
        }
        broker.groups.deleteGroups(allowed) { results in
            promise.succeed(DeleteGroupsResponse(results: denied.map { .init(groupId: $0, errorCode: Self.groupDenied) } + results.map {
                .init(groupId: $0.groupId, errorCode: $0.error.map { KafkaErrorCode($0).rawValue } ?? 0)
            }))
        }
        return promise.futureResult
    }

    func initProducerId(_ request: InitProducerIdRequest, _ call: KafkaCall) -> EventLoopFuture<InitProducerIdResponse> {
        if let transactionalId = request.transactionalId, !transactionalId.isEmpty {
            guard may(call, .write, transactionalId: transactionalId) else {
                return call.eventLoop.makeSucceededFuture(InitProducerIdResponse(errorCode: Self.transactionalIdDenied, producerId: -1, producerEpoch: -1))
            }
            return transactionalInitProducerId(request, transactionalId: transactionalId, call)
        }
        // An idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic (KIP-679).
        guard mayOnCluster(call, .idempotentWrite, log: false) || broker.authorizeAny(call.identity, .write, .topic, api: call.api.name) else {
            return call.eventLoop.makeSucceededFuture(InitProducerIdResponse(errorCode: Self.clusterDenied, producerId: -1, producerEpoch: -1))
        }
        let broker = broker
        return call.eventLoop.makeFutureWithTask {
            do {
                let assigned = try await broker.initProducerId(producerId: request.producerId, producerEpoch: request.producerEpoch)
                return InitProducerIdResponse(errorCode: 0, producerId: assigned.producerId, producerEpoch: assigned.producerEpoch)
            } catch {
                return InitProducerIdResponse(errorCode: KafkaErrorCode(error).rawValue, producerId: -1, producerEpoch: -1)
            }
        }
    }
}
