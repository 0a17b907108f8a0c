import SpoolBroker
import SpoolProtocol
import SpoolRecords

/// The native protocol's group calls (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
/// DescribeGroups, member commits) and InitProducerId, over the broker core's
/// group coordinator and producer state. A coordinator refusal is part of the
/// answer (`GroupError`), as in Kafka's protocol: it tells the member what to do next.
enum NativeGroupCalls {
    /// FindCoordinator (method 27): the broker that coordinates the group, with its native
    /// address. A single broker coordinates every group and answers itself with
    /// `localAddress`, the listener's address the call came in on.
    static func findCoordinator(_ r: Spool_V1_FindCoordinatorRequest, broker: Broker, localAddress: String) -> Spool_V1_FindCoordinatorResponse {
        var response = Spool_V1_FindCoordinatorResponse()
        response.nodeID = -1
        func refuse(_ error: Spool_V1_GroupError, _ message: String) -> Spool_V1_FindCoordinatorResponse {
            response.error = error
            response.message = message
            return response
        }
        guard !r.group.isEmpty else { return refuse(.invalidGroupID, "the group id is empty") }
        guard let cluster = broker.clusterAdministration, broker.groupOwnership != nil else {
            response.nodeID = broker.config.nodeId ?? 0
            response.address = localAddress
            return response
        }
        switch broker.groupCoordinatorNode(for: r.group) {
        case .failure(let error):
            return refuse(groupError(error.code), error.message)
        case .success(let node):
            guard let address = cluster.metadataView().brokers.first(where: { $0.nodeId == node })?.nativeAddress, !address.isEmpty else {
                return refuse(.coordinatorNotAvailable, "the coordinator of group \(r.group), broker \(node), is not live or registered no native listener")
            }
            response.nodeID = node
            response.address = address
            return response
        }
    }

    static func join(_ r: Spool_V1_JoinGroupRequest, clientHost: String, broker: Broker) async -> Spool_V1_JoinGroupResponse {
        let request = GroupCoordinator.JoinRequest(
            groupId: r.group, memberId: r.memberID, groupInstanceId: r.groupInstanceID.isEmpty ? nil : r.groupInstanceID,
            clientId: r.clientID, clientHost: clientHost,
            sessionTimeoutMillis: Int32(clamping: r.sessionTimeoutMs), rebalanceTimeoutMillis: Int32(clamping: r.rebalanceTimeoutMs),
            protocolType: r.protocolType, protocols: r.protocols.map { .init(name: $0.name, metadata: Array($0.metadata)) },
            requireKnownMemberId: true)
        var response = Spool_V1_JoinGroupResponse()
        do {
            let joined = try await broker.groups.join(request)
            response.generationID = joined.generationId
            response.protocolType = joined.protocolType ?? ""
            response.protocolName = joined.protocolName ?? ""
            response.leaderID = joined.leaderId
            response.memberID = joined.memberId
            response.members = joined.members.map { m in
                var j = Spool_V1_JoinedMember()
                j.memberID = m.memberId
                j.groupInstanceID = m.groupInstanceId ?? ""
                j.metadata = .init(m.metadata)
                return j
            }
        } catch {
            response.error = groupError(error.code)
            response.message = error.message
            response.memberID = error.memberId ?? ""
            response.generationID = -1
        }
        return response
    }

    static func sync(_ r: Spool_V1_SyncGroupRequest, broker: Broker) async -> Spool_V1_SyncGroupResponse {
        var assignments: [String: [UInt8]] = [:]
        for a in r.assignments { assignments[a.memberID] = Array(a.assignment) }
        let request = GroupCoordinator.SyncRequest(
            groupId: r.group, generationId: r.generationID, memberId: r.memberID,
            groupInstanceId: r.groupInstanceID.isEmpty ? nil : r.groupInstanceID, assignments: assignments)
        var response = Spool_V1_SyncGroupResponse()
        do {
            let synced = try await broker.groups.sync(request)
            response.protocolType = synced.protocolType ?? ""
            response.protocolName = synced.protocolName ?? ""
            response.assignment = .init(synced.assignment)
        } catch {
            response.error = groupError(error.code)
            response.message = error.message
        }
        return response
    }

    static func heartbeat(_ r: Spool_V1_HeartbeatRequest, broker: Broker) -> Spool_V1_HeartbeatResponse {
        var response = Spool_V1_HeartbeatResponse()
        do {
            try broker.groups.heartbeat(groupId: r.group, memberId: r.memberID,
                                        groupInstanceId: r.groupInstanceID.isEmpty ? nil : r.groupInstanceID, generationId: r.generationID)
        } catch {
            response.error = groupError(error.code)
            response.message = error.message
        }
        return response
    }

    static func leave(_ r: Spool_V1_LeaveGroupRequest, broker: Broker) -> Spool_V1_LeaveGroupResponse {
        var response = Spool_V1_LeaveGroupResponse()
        do {
            let members = r.members.map {
                GroupCoordinator.MemberIdentity(memberId: $0.memberID, groupInstanceId: $0.groupInstanceID.isEmpty ? nil : $0.groupInstanceID)
            }
            response.results = try broker.groups.leave(groupId: r.group, members: members).map { result in
                var m = Spool_V1_MemberLeaveResult()
                m.memberID = result.member.memberId
                m.groupInstanceID = result.member.groupInstanceId ?? ""
                m.error = result.error.map(groupError) ?? .none
                return m
            }
        } catch {
            response.error = groupError(error.code)
            response.message = error.message
        }
        return response
    }

    static func describe(_ r: Spool_V1_DescribeGroupsRequest, broker: Broker) -> Spool_V1_DescribeGroupsResponse {
        var response = Spool_V1_DescribeGroupsResponse()
        response.groups = r.groups.map { groupId in
            var d = Spool_V1_GroupDescription()
            d.group = groupId
            do throws(GroupCoordinatorError) {
                let g = try broker.groups.describeGroup(groupId)
                d.state = g.state.rawValue
                d.protocolType = g.protocolType
                d.protocolName = g.protocolName
                d.generationID = g.generationId
                d.leaderID = g.leaderId ?? ""
                d.members = g.members.map { m in
                    var md = Spool_V1_GroupMemberDescription()
                    md.memberID = m.memberId
                    md.groupInstanceID = m.groupInstanceId ?? ""
                    md.clientID = m.clientId
                    md.clientHost = m.clientHost
                    md.metadata = .init(m.metadata)
                    md.assignment = .init(m.assignment)
                    return md
                }
            } catch {
                d.error = groupError(error.code)
                d.message = error.message
                d.state = GroupState.dead.rawValue
            }
            return d
        }
        return response
    }

    /// CommitOffsets of a group member (the request names a generation): a coordinator
    /// refusal of the whole commit is answered in `error`; one partition's refusal is a
    /// STATUS, as for commits outside a generation.
    static func memberCommit(_ r: Spool_V1_CommitOffsetsRequest, broker: Broker) async throws -> Spool_V1_CommitOffsetsResponse {
        var offsets: [TopicPartition: GroupCoordinator.OffsetAndMetadata] = [:]
        for o in r.offsets { offsets[TopicPartition(o.topic, o.partition)] = .init(offset: o.offset, metadata: o.metadata) }
        let request = GroupCoordinator.CommitRequest(
            groupId: r.group, generationId: r.generationID, memberId: r.memberID,
            groupInstanceId: r.groupInstanceID.isEmpty ? nil : r.groupInstanceID, offsets: offsets)
        var response = Spool_V1_CommitOffsetsResponse()
        let refused: [TopicPartition: GroupCoordinatorError.Code]
        do {
            refused = try await broker.groups.commit(request)
        } catch {
            if error.code == .invalidGroupId { throw error }
            response.error = groupError(error.code)
            response.message = error.message
            return response
        }
        if let (tp, code) = refused.sorted(by: { $0.key < $1.key }).first {
            throw GroupCoordinatorError(code, "offset for \(tp) refused: \(code.rawValue)")
        }
        return response
    }

    static func initProducerId(_ r: Spool_V1_InitProducerIdRequest, broker: Broker) async throws -> Spool_V1_InitProducerIdResponse {
        let granted = try await broker.initProducerId(
            producerId: r.hasProducerID ? r.producerID : -1, producerEpoch: r.hasProducerEpoch ? Int16(clamping: r.producerEpoch) : -1)
        var response = Spool_V1_InitProducerIdResponse()
        response.producerID = granted.producerId
        response.producerEpoch = Int32(granted.producerEpoch)
        return response
    }

    static func groupError(_ code: GroupCoordinatorError.Code) -> Spool_V1_GroupError {
        switch code {
        case .unknownMemberId: .unknownMemberID
        case .illegalGeneration: .illegalGeneration
        case .rebalanceInProgress: .rebalanceInProgress
        case .memberIdRequired: .memberIDRequired
        case .inconsistentGroupProtocol: .inconsistentGroupProtocol
        case .fencedInstanceId: .fencedInstanceID
        case .invalidSessionTimeout: .invalidSessionTimeout
        case .nonEmptyGroup: .nonEmptyGroup
        case .groupIdNotFound: .groupIDNotFound
        case .invalidGroupId: .invalidGroupID
        case .coordinatorNotAvailable: .coordinatorNotAvailable
        case .unknownTopicOrPartition: .unknownTopicOrPartition
        case .offsetMetadataTooLarge: .offsetMetadataTooLarge
        case .invalidCommitOffset: .invalidCommitOffset
        case .groupMaxSizeReached: .groupMaxSizeReached
        case .storageFailed: .storageFailed
        case .groupSubscribedToTopic: .nonEmptyGroup
        case .notCoordinator: .notCoordinator
        case .coordinatorLoadInProgress: .coordinatorLoadInProgress
        }
    }
}
