import NIOCore
import SpoolBroker
import Testing
@testable import SpoolKafka

/// CreateAcls / DescribeAcls / DeleteAcls on the wire (v1 and the flexible v2 layout).
@Suite(.serialized) struct AclAPITests {
    @Test func aclsAreCreatedDescribedAndDeleted() async throws {
        let h = try await KafkaHarness()
        let create = CreateAclsRequest(creations: [
            .init(resourceType: 2, resourceName: "orders", resourcePatternType: 3, principal: "User:alice", host: "*", operation: 3, permissionType: 3),
            .init(resourceType: 2, resourceName: "raw.", resourcePatternType: 4, principal: "User:etl", host: "*", operation: 4, permissionType: 3),
            .init(resourceType: 2, resourceName: "bad", resourcePatternType: 1, principal: "User:x", host: "*", operation: 3, permissionType: 3),
            .init(resourceType: 2, resourceName: "bad", resourcePatternType: 3, principal: "nobody", host: "*", operation: 3, permissionType: 3),
        ])
        try await h.send(.createAcls, version: 1, correlationId: 1, create)
        var (_, body) = try await h.receive(flexibleHeader: false)
        let created = try CreateAclsResponse(from: &body, version: 1)
        let invalid = KafkaErrorCode.invalidRequest.rawValue
        #expect(created.results.map(\.errorCode) == [0, 0, invalid, invalid])

        // MATCH for the topic raw.clicks: the prefixed ACL applies, the literal one does not.
        let describe = DescribeAclsRequest(resourceTypeFilter: 2, resourceNameFilter: "raw.clicks", patternTypeFilter: 2,
                                           principalFilter: nil, hostFilter: nil, operation: 1, permissionType: 1)
        try await h.send(.describeAcls, version: 2, correlationId: 2, describe)
        (_, body) = try await h.receive(flexibleHeader: true)
        let described = try DescribeAclsResponse(from: &body, version: 2)
        #expect(described.errorCode == 0)
        #expect(described.resources.map { "\($0.resourceName)/\($0.patternType)/\($0.acls.map(\.principal))" } == ["raw./4/[\"User:etl\"]"])

        let delete = DeleteAclsRequest(filters: [
            .init(resourceTypeFilter: 1, resourceNameFilter: nil, patternTypeFilter: 1, principalFilter: "User:alice", hostFilter: nil, operation: 1, permissionType: 1),
            .init(resourceTypeFilter: 9, resourceNameFilter: nil, patternTypeFilter: 1, principalFilter: nil, hostFilter: nil, operation: 1, permissionType: 1),
        ])
        try await h.send(.deleteAcls, version: 1, correlationId: 3, delete)
        (_, body) = try await h.receive(flexibleHeader: false)
        let deleted = try DeleteAclsResponse(from: &body, version: 1)
        #expect(deleted.filterResults.map(\.errorCode) == [0, invalid])
        #expect(deleted.filterResults.first?.matchingAcls.map(\.resourceName) == ["orders"])
        #expect(h.broker.describeAcls(AclBindingFilter()).map(\.principal) == ["User:etl"])
        try await h.stop()
    }
}
