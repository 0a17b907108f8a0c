import NIOCore
import SpoolBroker

// CreateAcls, DescribeAcls and DeleteAcls: Kafka's ACL administration over the core's
// ACL store (checked once `authorizer.enabled` is on).
extension KafkaAPIs {
    /// A filter from its wire fields; nil with a reason when a code is unknown.
    static func aclFilter(type: Int8, name: String?, pattern: Int8, principal: String?, host: String?,
                          operation: Int8, permission: Int8) -> (filter: AclBindingFilter?, error: String?) {
        guard let t = AclResourceType(rawValue: type) else { return (nil, "unknown resource type \(type)") }
        guard let p = AclPatternType(rawValue: pattern) else { return (nil, "unknown pattern type \(pattern)") }
        guard let o = AclOperation(rawValue: operation) else { return (nil, "unknown operation \(operation)") }
        guard let m = AclPermission(rawValue: permission) else { return (nil, "unknown permission type \(permission)") }
        return (AclBindingFilter(resourceType: t, resourceName: name, patternType: p, principal: principal, host: host, operation: o, permission: m), nil)
    }

    func createAcls(_ request: CreateAclsRequest, _ call: KafkaCall) -> EventLoopFuture<CreateAclsResponse> {
        let broker = self.broker
        guard mayOnCluster(call, .alter) else {
            return call.eventLoop.makeSucceededFuture(CreateAclsResponse(results: request.creations.map { _ in
                .init(errorCode: Self.clusterDenied, errorMessage: "not authorized to alter ACLs")
            }))
        }
        return call.eventLoop.makeFutureWithTask {
            var results: [CreateAclsResponse.Result] = []
            var valid: [AclBinding] = []
            for c in request.creations {
                guard let type = AclResourceType(rawValue: c.resourceType), let pattern = AclPatternType(rawValue: c.resourcePatternType),
                      let operation = AclOperation(rawValue: c.operation), let permission = AclPermission(rawValue: c.permissionType) else {
                    results.append(.init(errorCode: KafkaErrorCode.invalidRequest.rawValue, errorMessage: "an unknown resource type, pattern type, operation or permission code"))
                    continue
                }
                let acl = AclBinding(resourceType: type, resourceName: c.resourceName, patternType: pattern, principal: c.principal,
                                     host: c.host, operation: operation, permission: permission)
                if let reason = acl.invalidReason {
                    results.append(.init(errorCode: KafkaErrorCode.invalidRequest.rawValue, errorMessage: reason))
                } else {
                    valid.append(acl)
                    results.append(.init(errorCode: 0, errorMessage: nil))
                }
            }
            do {
                try await broker.createAcls(valid)
            } catch {
                let code = KafkaErrorCode(error).rawValue
                results = results.map { $0.errorCode == 0 ? .init(errorCode: code, errorMessage: "\(error)") : $0 }
            }
            return CreateAclsResponse(results: results)
        }
    }

    func describeAcls(_ r: DescribeAclsRequest, _ call: KafkaCall) -> DescribeAclsResponse {
        guard mayOnCluster(call, .describe) else {
            return DescribeAclsResponse(errorCode: Self.clusterDenied, errorMessage: "not authorized to describe ACLs", resources: [])
        }
        let parsed = Self.aclFilter(type: r.resourceTypeFilter, name: r.resourceNameFilter, pattern: r.patternTypeFilter,
                                    principal: r.principalFilter, host: r.hostFilter, operation: r.operation, permission: r.permissionType)
        guard let filter = parsed.filter else {
            return DescribeAclsResponse(errorCode: KafkaErrorCode.invalidRequest.rawValue, errorMessage: parsed.error, resources: [])
        }
        var resources: [DescribeAclsResponse.Resource] = []
        for acl in broker.describeAcls(filter) {
            let entry = DescribeAclsResponse.Resource.Acl(principal: acl.principal, host: acl.host, operation: acl.operation.rawValue,
                                                          permissionType: acl.permission.rawValue)
            if let i = resources.firstIndex(where: { $0.resourceType == acl.resourceType.rawValue && $0.resourceName == acl.resourceName && $0.patternType == acl.patternType.rawValue }) {
                resources[i].acls.append(entry)
            } else {
                resources.append(.init(resourceType: acl.resourceType.rawValue, resourceName: acl.resourceName,
                                       patternType: acl.patternType.rawValue, acls: [entry]))
            }
        }
        return DescribeAclsResponse(errorCode: 0, errorMessage: nil, resources: resources)
    }

    func deleteAcls(_ request: DeleteAclsRequest, _ call: KafkaCall) -> EventLoopFuture<DeleteAclsResponse> {
        let broker = self.broker
        guard mayOnCluster(call, .alter) else {
            return call.eventLoop.makeSucceededFuture(DeleteAclsResponse(filterResults: request.filters.map { _ in
                .init(errorCode: Self.clusterDenied, errorMessage: "not authorized to alter ACLs", matchingAcls: [])
            }))
        }
        return call.eventLoop.makeFutureWithTask {
            let parsed = request.filters.map {
                Self.aclFilter(type: $0.resourceTypeFilter, name: $0.resourceNameFilter, pattern: $0.patternTypeFilter,
                               principal: $0.principalFilter, host: $0.hostFilter, operation: $0.operation, permission: $0.permissionType)
            }
            let removed: [[AclBinding]]
            do {
                removed = try await broker.deleteAcls(parsed.compactMap(\.filter))
            } catch {
                return DeleteAclsResponse(filterResults: parsed.map { _ in
                    .init(errorCode: KafkaErrorCode(error).rawValue, errorMessage: "\(error)", matchingAcls: [])
                })
            }
            var lists = removed.makeIterator()
            return DeleteAclsResponse(filterResults: parsed.map { p in
                guard p.filter != nil, let acls = lists.next() else {
                    return .init(errorCode: KafkaErrorCode.invalidRequest.rawValue, errorMessage: p.error, matchingAcls: [])
                }
                return .init(errorCode: 0, errorMessage: nil, matchingAcls: acls.map { acl in
                    .init(errorCode: 0, errorMessage: nil, resourceType: acl.resourceType.rawValue, resourceName: acl.resourceName,
                          patternType: acl.patternType.rawValue, principal: acl.principal, host: acl.host,
                          operation: acl.operation.rawValue, permissionType: acl.permission.rawValue)
                })
            })
        }
    }
}
