// swift-tools-version: 6.1
// Spool's micro-benchmarks (package-benchmark), kept as their own package so the
// main build and CI never compile the benchmark machinery.
// Run: cd Benchmarks && swift package --disable-sandbox benchmark

import PackageDescription

let package = Package(
    name: "SpoolBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "spool", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "RecordsBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SpoolRecords", package: "spool"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/RecordsBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "StorageBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SpoolRecords", package: "spool"),
                .product(name: "SpoolStorage", package: "spool"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/StorageBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "BrokerBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SpoolBroker", package: "spool"),
                .product(name: "SpoolRecords", package: "spool"),
                .product(name: "SpoolStorage", package: "spool"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // Named here too: without it SwiftPM 6.3 compiled SpoolBroker before swift-log's module.
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/BrokerBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
