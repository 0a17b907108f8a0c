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
        .executable(name: "spool", targets: ["spool"]),
        .executable(name: "spool-perf", targets: ["spool-perf"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // Native pieces: CRC-32C (hardware + fallback), and the system compression libraries.
        .target(name: "CSpoolNative"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),

        // Kafka v2 record batches: build, validate, read; codecs.
        .target(name: "SpoolRecords", dependencies: ["CSpoolNative", "CZlib", "CLZ4", nioCore]),

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
                "SpoolBroker", "SpoolStorage", "SpoolRecords", nioCore,
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
            ]
        ),

        // The native listener (proto/, FRAMING.md): connection handler, call dispatch, frame writing.
        .target(
            name: "SpoolNative",
            dependencies: [
                "SpoolBroker", "SpoolStorage", "SpoolProtocol", "SpoolRecords", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),

        // A whole broker process: the core and its listeners, started and stopped in order.
        .target(
            name: "SpoolServer",
            dependencies: [
                "SpoolBroker", "SpoolNative", "SpoolKafka", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            // Glue only, and Swift 6.3.1's optimizer crashes (DeadFunctionAndGlobalElimination)
            // on this module in release builds: compiled unoptimized.
            swiftSettings: [.unsafeFlags(["-Onone"])]
        ),

        // The client library: connection, Producer, Consumer, Admin.
        .target(
            name: "SpoolClient",
            dependencies: [
                "SpoolProtocol", "SpoolRecords", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
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
                "SpoolKafka",
                "SpoolClient",
                "SpoolProtocol",
                nioCore,
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Load generation (kafka-producer-perf-test style).
        .executableTarget(
            name: "spool-perf",
            dependencies: [
                "SpoolClient", "SpoolProtocol", "SpoolRecords", nioCore,
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "tools/spool-perf"
        ),

        .testTarget(
            name: "SpoolRecordsTests",
            dependencies: ["SpoolRecords", "CSpoolNative", nioCore],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "SpoolProtocolTests",
            dependencies: [
                "SpoolProtocol", nioCore,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SpoolBrokerTests",
            dependencies: [
                "SpoolBroker", "SpoolRecords", "SpoolStorage", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SpoolNativeTests",
            dependencies: [
                "SpoolNative", "SpoolBroker", "SpoolProtocol", "SpoolRecords", "SpoolStorage", nioCore,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(
            name: "SpoolServerTests",
            dependencies: [
                "SpoolServer", "SpoolBroker", "SpoolClient", "SpoolProtocol", "SpoolRecords", "SpoolStorage", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SpoolKafkaTests",
            dependencies: [
                "SpoolKafka", "SpoolBroker", "SpoolRecords", "SpoolStorage", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        // Starts and drives `spool broker` processes for the end-to-end tests.
        .target(name: "SpoolTestSupport", path: "Tests/SpoolTestSupport"),
        .testTarget(name: "SpoolCLITests", dependencies: ["SpoolTestSupport"]),
        .testTarget(
            name: "SpoolClientTests",
            dependencies: [
                "SpoolClient", "SpoolProtocol", "SpoolRecords", "SpoolTestSupport", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SpoolStorageTests",
            dependencies: ["SpoolStorage", "SpoolRecords", nioCore]
        ),
    ]
)
