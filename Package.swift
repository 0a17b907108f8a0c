// swift-tools-version: 6.1
// Spool: a compressed, networked, partitioned commit log (see README.md and docs/).

import PackageDescription

let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")

let package = Package(
    name: "spool",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "SpoolRecords", targets: ["SpoolRecords"]),
        .library(name: "SpoolStorage", targets: ["SpoolStorage"]),
        .library(name: "SpoolProtocol", targets: ["SpoolProtocol"]),
        .library(name: "SpoolBroker", targets: ["SpoolBroker"]),
        // The client: `import SpoolClient` (README, "Using the client library").
        .library(name: "SpoolClient", targets: ["SpoolClient"]),
        .executable(name: "spool", targets: ["spool"]),
        .executable(name: "spool-perf", targets: ["spool-perf"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // No traits: swift-protobuf's two default traits become -D flags whose order SwiftPM
        // does not keep stable between runs, and a new order recompiles SwiftProtobuf (30-50 s of
        // every `swift run -c release`). Spool uses neither trait's API.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // No traits: the admin listener needs neither swift-configuration nor full Foundation.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // TLS on the listeners and the client (docs/DESIGN.md, "Security").
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // SCRAM: HMAC, SHA-256/512, PBKDF2 (CryptoExtras).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // Native pieces: CRC-32C (hardware + fallback), and the system compression libraries
        // (zlib, liblz4, libsnappy, libzstd).
        .target(name: "CSpoolNative"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        // Kafka v2 record batches: build, validate, read; codecs.
        .target(name: "SpoolRecords", dependencies: ["CSpoolNative", "CZlib", "CLZ4", "CSnappy", "CZstd", nioCore]),

        // Segmented, indexed partition logs; recovery, retention, topic and offset stores.
        .target(name: "SpoolStorage", dependencies: ["SpoolRecords", "CSpoolNative", nioCore]),

        // The wire protocol: generated messages (proto/), frame codec, status codes.
        .target(
            name: "SpoolProtocol",
            dependencies: [nioCore, .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),

        // The Kafka wire protocol: message codecs generated from proto/kafka/ (tools/generate-kafka.py),
        // request framing, and the Kafka listener.
        .target(
            name: "SpoolKafka",
            dependencies: [
                "SpoolBroker", "SpoolTransport", "SpoolRecords", "SpoolSecurity", nioCore,
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),

        // The broker core, independent of any wire protocol: topics, produce path, fetch
        // planning and long polls, accumulator, offsets, the I/O pool.
        .target(
            name: "SpoolBroker",
            dependencies: [
                "SpoolStorage", "SpoolRecords", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Authentication: SCRAM and PLAIN, the credential store, principals, TLS settings.
        .target(
            name: "SpoolSecurity",
            dependencies: [
                nioCore,
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),

        // What both protocol listeners share at the connection level (NIO): the frame
        // completion deadline, the outbound ledger and read pausing, span writing.
        .target(name: "SpoolTransport", dependencies: ["SpoolBroker", nioCore]),

        // The native listener (proto/, FRAMING.md): connection handler, call dispatch, frame writing.
        .target(
            name: "SpoolNative",
            dependencies: [
                "SpoolBroker", "SpoolTransport", "SpoolProtocol", "SpoolRecords", "SpoolSecurity", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The follower fetcher: Kafka Fetch v12 from each partition's leader (cluster mode), over TLS and SASL when configured.
        .target(
            name: "SpoolReplication",
            dependencies: [
                "SpoolBroker", "SpoolKafka", "SpoolRecords", "SpoolSecurity", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // A whole broker process: the core and its listeners, started and stopped in order.
        .target(
            name: "SpoolServer",
            dependencies: [
                "SpoolBroker", "SpoolNative", "SpoolKafka", "SpoolSecurity", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
        ),

        // The admin HTTP listener: /metrics (Prometheus), /health, /ready, the JSON API under /v1/, the web console.
        .target(
            name: "SpoolAdminHTTP",
            dependencies: [
                "SpoolBroker", "SpoolRecords", "SpoolSecurity", nioCore,
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Console")]
        ),

        // An etcd v3 client over etcd's JSON gateway (HTTP/1.1 on NIO), independent of the broker.
        .target(
            name: "SpoolEtcd",
            dependencies: [
                nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),

        // The cluster's coordination primitives on etcd: broker registration under a lease,
        // controller election, partition-state compare-and-swap, the key layout.
        .target(
            name: "SpoolCoordination",
            dependencies: ["SpoolEtcd", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]
        ),

        // A broker's cluster membership: registration, controller campaign, their logs and metrics.
        .target(
            name: "SpoolCluster",
            dependencies: [
                "SpoolCoordination", "SpoolEtcd", "SpoolBroker", "SpoolRecords", "SpoolSecurity",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The client library: connection, Producer, Consumer, Admin.
        .target(
            name: "SpoolClient",
            dependencies: [
                "SpoolProtocol", "SpoolRecords", "SpoolSecurity", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),

        // The command line.
        .executableTarget(
            name: "spool",
            dependencies: [
                "SpoolRecords",
                "SpoolStorage",
                "SpoolBroker",
                "SpoolServer",
                "SpoolNative",
                "SpoolKafka",
                "SpoolClient",
                "SpoolProtocol",
                "SpoolAdminHTTP",
                "SpoolCluster",
                "SpoolCoordination",
                "SpoolEtcd",
                "SpoolSecurity",
                "SpoolReplication",
                nioCore,
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        // Load generation (kafka-producer-perf-test style), through the client's public API only.
        .executableTarget(
            name: "spool-perf",
            dependencies: [
                // Load generation goes through the client's public API only; SpoolRecords is
                // for `spool-perf codecs`, which measures the codecs and the door check directly.
                "SpoolClient", "SpoolRecords", nioCore,
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "tools/spool-perf"
        ),

        .testTarget(
            name: "SpoolRecordsTests",
            dependencies: [
                "SpoolTestSupport","SpoolRecords", "CSpoolNative", nioCore],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "SpoolProtocolTests",
            dependencies: [
                "SpoolTestSupport",
                "SpoolProtocol", nioCore,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SpoolBrokerTests",
            dependencies: [
                "SpoolTestSupport",
                "SpoolBroker", "SpoolRecords", "SpoolStorage", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SpoolNativeTests",
            dependencies: [
                "SpoolTestSupport",
                "SpoolNative", "SpoolTransport", "SpoolBroker", "SpoolProtocol", "SpoolRecords", "SpoolStorage", nioCore,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(
            name: "SpoolServerTests",
            dependencies: [
                "SpoolTestSupport",
                "SpoolServer", "SpoolBroker", "SpoolClient", "SpoolProtocol", "SpoolRecords", "SpoolStorage", nioCore,
                "SpoolNative", "SpoolSecurity",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "SpoolKafkaTests",
            dependencies: [
                "SpoolTestSupport",
                "SpoolKafka", "SpoolTransport", "SpoolBroker", "SpoolRecords", "SpoolStorage", "SpoolSecurity", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Starts and drives `spool broker` processes for the end-to-end tests.
        .target(name: "SpoolTestSupport", path: "Tests/SpoolTestSupport"),
        .testTarget(name: "SpoolCLITests", dependencies: ["SpoolTestSupport", "SpoolKafka", "SpoolSecurity", "SpoolRecords", nioCore]),
        .testTarget(
            name: "SpoolClientTests",
            dependencies: [
                "SpoolClient", "SpoolProtocol", "SpoolRecords", "SpoolTestSupport", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SpoolAdminHTTPTests",
            dependencies: [
                "SpoolTestSupport",
                "SpoolAdminHTTP", "SpoolBroker", "SpoolStorage", "SpoolRecords", "SpoolSecurity", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SpoolTransportTests",
            dependencies: [
                "SpoolTransport", "SpoolBroker", nioCore,
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SpoolEtcdTests",
            dependencies: ["SpoolEtcd", "SpoolCoordination", "SpoolTestSupport"]
        ),
        .testTarget(
            name: "SpoolSecurityTests",
            dependencies: ["SpoolSecurity", "SpoolTestSupport"]
        ),
        .testTarget(
            name: "SpoolReplicationTests",
            dependencies: [
                "SpoolTestSupport", "SpoolReplication", "SpoolBroker", "SpoolKafka", "SpoolStorage", "SpoolRecords", nioCore,
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SpoolStorageTests",
            dependencies: [
                "SpoolTestSupport","SpoolStorage", "SpoolRecords", nioCore]
        ),
    ]
)
