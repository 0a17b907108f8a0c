import Foundation
@testable import SpoolBroker
import SpoolStorage
import Testing

/// Kafka's ACL evaluation: super users, DENY winning, implied DESCRIBE, literal `*` and
/// prefixed patterns, principals and hosts, no ACL found; filters; the stored file.
@Suite struct AuthorizerTests {
    static func acl(_ permission: AclPermission, _ principal: String, _ operation: AclOperation, _ name: String,
                    _ pattern: AclPatternType = .literal, type: AclResourceType = .topic, host: String = "*") -> AclBinding {
        AclBinding(resourceType: type, resourceName: name, patternType: pattern, principal: principal, host: host, operation: operation, permission: permission)
    }

    static func allowed(_ acls: [AclBinding], as principal: String = "User:alice", host: String = "10.0.0.1", _ operation: AclOperation,
                        _ name: String, type: AclResourceType = .topic, config: Authorizer.Config = .init(enabled: true, superUsers: ["User:admin"])) -> Bool {
        Authorizer.decide(principal: principal, host: host, operation, type, name, acls: Set(acls), config: config)
    }

    @Test func denyWinsAndAllowImpliesDescribe() {
        let acls = [Self.acl(.allow, "User:alice", .read, "orders"), Self.acl(.deny, "User:alice", .write, "orders")]
        #expect(Self.allowed(acls, .read, "orders"))
        #expect(Self.allowed(acls, .describe, "orders"), "READ implies DESCRIBE")
        #expect(!Self.allowed(acls, .write, "orders"), "no ALLOW for WRITE, and a DENY")
        #expect(!Self.allowed(acls + [Self.acl(.allow, "User:*", .all, "orders")], .write, "orders"), "DENY beats an ALLOW of ALL")
        #expect(Self.allowed(acls + [Self.acl(.allow, "User:*", .all, "orders")], as: "User:bob", .write, "orders"))
        #expect(!Self.allowed(acls, as: "User:bob", .read, "orders"), "ACLs exist for the topic, none for bob")
        #expect(Self.allowed(acls, as: "User:admin", .delete, "orders"), "a super user")
        #expect(!Self.allowed(acls, .describeConfigs, "orders"))
        #expect(Self.allowed([Self.acl(.allow, "User:alice", .alterConfigs, "orders")], .describeConfigs, "orders"), "ALTER_CONFIGS implies DESCRIBE_CONFIGS")
        #expect(Self.allowed([Self.acl(.allow, "User:alice", .read, "orders"), Self.acl(.deny, "User:alice", .read, "orders")], .describe, "orders"),
                "a DENY of READ denies READ only; the ALLOW of READ still implies DESCRIBE (Kafka's rule)")
        #expect(!Self.allowed([Self.acl(.allow, "User:alice", .read, "orders"), Self.acl(.deny, "User:alice", .read, "orders")], .read, "orders"))
    }

    @Test func patternsHostsAndNoAclFound() {
        let acls = [Self.acl(.allow, "User:alice", .write, "raw.", .prefixed), Self.acl(.allow, "User:alice", .read, "*"),
                    Self.acl(.allow, "User:bob", .read, "g", type: .group, host: "10.0.0.9")]
        #expect(Self.allowed(acls, .write, "raw.clicks"))
        #expect(!Self.allowed(acls, .write, "rawclicks"))
        #expect(Self.allowed(acls, .read, "anything"), "literal * covers every topic")
        #expect(!Self.allowed(acls, as: "User:bob", host: "10.0.0.1", .read, "g", type: .group), "bob's ACL is for another host")
        #expect(Self.allowed(acls, as: "User:bob", host: "10.0.0.9", .read, "g", type: .group))
        #expect(!Self.allowed(acls, .read, "other", type: .group), "no ACL covers the group: allow.everyone.if.no.acl.found is off")
        #expect(Self.allowed(acls, .read, "other", type: .group, config: .init(enabled: true, allowEveryoneIfNoAclFound: true)))
    }

    @Test func filtersMatchAsKafkasDo() {
        let literal = Self.acl(.allow, "User:alice", .read, "orders")
        let prefixed = Self.acl(.deny, "User:bob", .write, "ord", .prefixed)
        let star = Self.acl(.allow, "User:*", .describe, "*")
        let all = [literal, prefixed, star]
        #expect(all.filter(AclBindingFilter().matches).count == 3)
        #expect(all.filter(AclBindingFilter(resourceType: .topic, resourceName: "orders", patternType: .match).matches) == all, "MATCH: every ACL that applies to 'orders'")
        #expect(all.filter(AclBindingFilter(resourceName: "orders", patternType: .literal).matches) == [literal])
        #expect(all.filter(AclBindingFilter(patternType: .prefixed).matches) == [prefixed])
        #expect(all.filter(AclBindingFilter(principal: "User:bob").matches) == [prefixed])
        #expect(all.filter(AclBindingFilter(operation: .describe, permission: .allow).matches) == [star])
        #expect(literal.invalidReason == nil)
        #expect(AclBinding(resourceType: .topic, resourceName: "t", patternType: .match, principal: "User:a", operation: .read, permission: .allow).invalidReason != nil)
        #expect(AclBinding(resourceType: .topic, resourceName: "t", principal: "alice", operation: .read, permission: .allow).invalidReason != nil)
        #expect(AclBinding(resourceType: .cluster, resourceName: "c", principal: "User:a", operation: .alter, permission: .allow).invalidReason != nil)
    }

    @Test func storedAclsSurviveAReopen() throws {
        let directory = NSTemporaryDirectory() + "spool-acls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try AclStore(dataDirectory: directory)
        let odd = Self.acl(.allow, "User:we ird\tname%", .read, "topic with space")
        try store.add([odd, Self.acl(.deny, "User:x", .all, AclResourceType.clusterName, type: .cluster)])
        let removed = try store.remove([AclBindingFilter(resourceType: .cluster)])
        #expect(removed.map(\.count) == [1])
        #expect(try AclStore(dataDirectory: directory).all == [odd])
    }
    @Test func authorizeAnyLooksForSomeAllowOfTheType() throws {
        let directory = NSTemporaryDirectory() + "spool-acls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try AclStore(dataDirectory: directory)
        let authorizer = Authorizer(config: .init(enabled: true, superUsers: ["User:root"]), acls: store)
        #expect(!authorizer.authorizeAny(principal: "User:alice", host: "h", .write, .topic), "no ACL, the default is closed")
        #expect(authorizer.authorizeAny(principal: "User:root", host: "h", .write, .topic))
        try store.add([Self.acl(.allow, "User:alice", .write, "team.", .prefixed), Self.acl(.allow, "User:bob", .read, "x")])
        #expect(authorizer.authorizeAny(principal: "User:alice", host: "h", .write, .topic))
        #expect(!authorizer.authorizeAny(principal: "User:bob", host: "h", .write, .topic), "READ somewhere is not WRITE")
        try store.add([Self.acl(.deny, "User:alice", .write, "*")])
        #expect(!authorizer.authorizeAny(principal: "User:alice", host: "h", .write, .topic), "a DENY on every topic overrides")
    }

    /// The security log's limit: N lines a window, the rest counted and reported on the next line let through.
    @Test func rateLimitedLogCountsWhatItDrops() {
        let limit = RateLimitedLog(linesPerSecond: 3)
        let start: Int64 = 5_000_000_000
        #expect((0..<5).map { limit.admit(nowNanos: start + Int64($0)) } == [0, 0, 0, nil, nil])
        #expect(limit.suppressedTotal == 2)
        #expect(limit.admit(nowNanos: start + 1_000_000_000) == 2, "the next window's first line says 2 were dropped")
        #expect(limit.admit(nowNanos: start + 1_000_000_001) == 0)
    }
}
