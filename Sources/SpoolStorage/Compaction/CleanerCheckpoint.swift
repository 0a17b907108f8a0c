/// What the log cleaner remembers of one partition (`cleaner-checkpoint` in its directory):
/// when each clean ran and how far it reached, and how far tombstones have been purged.
///
/// A tombstone is first cleaned by the clean whose range reaches past it; it is removed by
/// the first clean at least `delete.retention.ms` later. Lines: `clean <millis> <through>`
/// (oldest first) and `purged <offset>`. Replaced atomically after a clean; a lost or stale
/// file only keeps tombstones longer (and makes the next clean re-read what it had cleaned).
struct CleanerCheckpoint: Hashable, Sendable {
    static let fileName = "cleaner-checkpoint"
    /// Clean records kept: enough to know every horizon of a week of hourly cleans.
    static let historyLimit = 256

    struct Clean: Hashable, Sendable {
        var atMillis: Int64
        var through: Int64
    }

    var cleans: [Clean] = []
    /// Tombstones below this offset were removed (as far as the cleans that did it reached).
    var purgedThrough: Int64 = 0

    /// Everything below it was cleaned at least once (the start of the dirty section).
    var cleanedThrough: Int64 { cleans.last?.through ?? 0 }

    /// Tombstones below the returned offset were first cleaned at least `retention` ago.
    func horizon(now: Int64, retention: Int64) -> Int64 {
        cleans.filter { now - $0.atMillis >= retention }.map(\.through).max() ?? 0
    }

    /// A clean is due to purge tombstones whose retention ran out.
    func purgeDue(now: Int64, retention: Int64) -> Bool {
        horizon(now: now, retention: retention) > purgedThrough
    }

    mutating func record(_ clean: Clean, purgedThrough purged: Int64, retention: Int64) {
        cleans.append(clean)
        purgedThrough = max(purgedThrough, purged)
        // Cleans whose horizon is passed by a newer passed one no longer matter.
        let passed = cleans.lastIndex { clean.atMillis - $0.atMillis >= retention }
        if let passed, passed > 0 { cleans.removeFirst(passed) }
        if cleans.count > Self.historyLimit { cleans.removeFirst(cleans.count - Self.historyLimit) }
    }

    static func read(_ directory: String, io: FileIO) -> CleanerCheckpoint {
        guard let bytes = try? Directory.readFile(directory + "/" + fileName, io: io),
              let text = String(validating: bytes, as: UTF8.self) else { return CleanerCheckpoint() }
        var checkpoint = CleanerCheckpoint()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 3, parts[0] == "clean", let at = Int64(parts[1]), let through = Int64(parts[2]) {
                checkpoint.cleans.append(Clean(atMillis: at, through: through))
            } else if parts.count == 2, parts[0] == "purged", let purged = Int64(parts[1]) {
                checkpoint.purgedThrough = purged
            } else {
                return CleanerCheckpoint() // torn or foreign: start over (safe, see the type's doc)
            }
        }
        return checkpoint
    }

    func write(_ directory: String, io: FileIO) throws {
        var text = cleans.map { "clean \($0.atMillis) \($0.through)\n" }.joined()
        text += "purged \(purgedThrough)\n"
        try Directory.writeAtomically(Array(text.utf8), to: directory + "/" + Self.fileName, io: io)
    }
}
