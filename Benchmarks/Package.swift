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
    ]
)
