/// Kafka's topic-name rules: 1 to 249 characters of ASCII letters, digits, `.`,
/// `_` and `-`, and not `.` or `..`.
public enum TopicName {
    public static let maxLength = 249

    public static func validate(_ name: String) throws {
        guard !name.isEmpty else { throw StorageError(.invalidTopicName, "topic name is empty") }
        guard name.utf8.count <= maxLength else {
            throw StorageError(.invalidTopicName, "topic name is \(name.utf8.count) characters; the limit is \(maxLength)")
        }
        guard name != "." && name != ".." else {
            throw StorageError(.invalidTopicName, "topic name cannot be '.' or '..'")
        }
        for byte in name.utf8 {
            let ok = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
            guard ok else {
                throw StorageError(.invalidTopicName, "topic name '\(name)' has an illegal character; use ASCII letters, digits, '.', '_' and '-'")
            }
        }
    }
}
