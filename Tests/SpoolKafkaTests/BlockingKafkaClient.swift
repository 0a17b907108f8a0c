import SpoolKafka

/// The tests' name for the blocking client (`KafkaBlockingConnection`).
typealias BlockingKafkaClient = KafkaBlockingConnection
