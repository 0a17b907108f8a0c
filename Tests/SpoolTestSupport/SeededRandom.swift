import Foundation

/// A small, fast, seeded random number generator (SplitMix64): the same seed gives the
/// same sequence on every machine, so a random test prints its seed and a failing seed
/// reproduces exactly. Shared by every test target.
///
/// A random test takes its generator from ``init(test:)``: it prints the seed with the
/// command that replays it, and `SPOOL_TEST_SEED=<seed>` replays that seed.
///
/// ```swift
/// var rng = SeededRandom(test: "randomGarbageNeverCrashes")
/// // prints: randomGarbageNeverCrashes seed 1234 (replay: SPOOL_TEST_SEED=1234 swift test --filter randomGarbageNeverCrashes)
/// #expect(ok, "seed \(rng.seed)")
/// ```
public struct SeededRandom: RandomNumberGenerator {
    /// The seed this generator started from (print it with a failure).
    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    /// The generator of the random test `test`: seeded from ``testSeed(_:)``.
    public init(test: String) {
        self.init(seed: Self.testSeed(test))
    }

    /// The environment variable that replays a printed seed.
    public static let seedVariable = "SPOOL_TEST_SEED"

    /// The seed of the random test `test`: `$SPOOL_TEST_SEED` when set (to replay a
    /// failure), else a fresh one. Printed with the command line that replays it.
    public static func testSeed(_ test: String) -> UInt64 {
        let given = ProcessInfo.processInfo.environment[seedVariable].flatMap { UInt64($0) }
        let seed = given ?? UInt64.random(in: 0...UInt64.max)
        print("\(test) seed \(seed)\(given != nil ? " (from \(seedVariable))" : "") (replay: \(seedVariable)=\(seed) swift test --filter \(test))")
        return seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
