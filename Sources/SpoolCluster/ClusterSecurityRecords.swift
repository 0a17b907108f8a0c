import Foundation
import SpoolBroker
import SpoolCoordination
import SpoolRecords
import SpoolSecurity

/// Conversions between the core's security types and the records etcd keeps (`security/...`).
enum ClusterSecurityRecords {
    static func record(user: String, _ credential: ScramCredential) -> CredentialRecord {
        CredentialRecord(user: user, mechanism: credential.mechanism.name, iterations: credential.iterations,
                         salt: Data(credential.salt).base64EncodedString(), storedKey: Data(credential.storedKey).base64EncodedString(),
                         serverKey: Data(credential.serverKey).base64EncodedString())
    }

    /// nil for a record that does not decode (an unknown mechanism, bad base64).
    static func credential(_ record: CredentialRecord) -> ScramCredential? {
        guard let mechanism = ScramMechanism(rawValue: record.mechanism), let salt = Data(base64Encoded: record.salt),
              let stored = Data(base64Encoded: record.storedKey), let server = Data(base64Encoded: record.serverKey) else { return nil }
        return ScramCredential(mechanism: mechanism, salt: Array(salt), iterations: record.iterations,
                               storedKey: Array(stored), serverKey: Array(server))
    }

    static func record(_ acl: AclBinding) -> AclRecord {
        AclRecord(resourceType: acl.resourceType.rawValue, patternType: acl.patternType.rawValue, resourceName: acl.resourceName,
                  principal: acl.principal, host: acl.host, operation: acl.operation.rawValue, permission: acl.permission.rawValue)
    }

    /// nil for a record that is not a valid ACL.
    static func acl(_ record: AclRecord) -> AclBinding? {
        guard let type = AclResourceType(rawValue: record.resourceType), let pattern = AclPatternType(rawValue: record.patternType),
              let operation = AclOperation(rawValue: record.operation), let permission = AclPermission(rawValue: record.permission) else { return nil }
        let acl = AclBinding(resourceType: type, resourceName: record.resourceName, patternType: pattern, principal: record.principal,
                             host: record.host, operation: operation, permission: permission)
        return acl.invalidReason == nil ? acl : nil
    }

    static func record(_ entity: QuotaEntity, _ values: QuotaValues) -> QuotaRecord {
        QuotaRecord(userPart: partText(entity.user), clientIdPart: partText(entity.clientId),
                    producerByteRate: values.producerByteRate, consumerByteRate: values.consumerByteRate)
    }

    static func quota(_ record: QuotaRecord) -> (QuotaEntity, QuotaValues)? {
        let entity = QuotaEntity(user: part(text: record.userPart), clientId: part(text: record.clientIdPart))
        guard entity.user != nil || entity.clientId != nil else { return nil }
        let values = QuotaValues(producerByteRate: record.producerByteRate, consumerByteRate: record.consumerByteRate)
        return values.isEmpty ? nil : (entity, values)
    }

    /// `-` (absent), `*` (the default) or `=name`.
    static func partText(_ part: QuotaEntity.Part?) -> String {
        switch part {
        case nil: return "-"
        case .defaultEntity: return "*"
        case .name(let name): return "=" + name
        }
    }

    /// The part `partText` made (nil for `-` or anything else).
    static func part(text: String) -> QuotaEntity.Part? {
        if text == "*" { return .defaultEntity }
        if text.hasPrefix("=") { return .name(String(text.dropFirst())) }
        return nil
    }
}
