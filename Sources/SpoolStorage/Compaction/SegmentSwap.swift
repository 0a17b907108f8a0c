#if canImport(Glibc)
import Glibc
#endif

/// The files of one clean and the rule that finishes or undoes a clean cut short.
///
/// A clean of the closed segments whose offsets are `base..<end` goes through three states
/// on disk, each a single directory change:
///
/// 1. `<base>.log.cleaned` is written and fsynced (the originals untouched), and the
///    marker `<base>.compacted` created (empty);
/// 2. the cleaned file is renamed to `<base>.<end>.swap` and the directory fsynced:
///    **the commit point**;
/// 3. the originals' files (`.log`, `.index`, `.timeindex`, `.txnindex`, and the markers of all but the
///    first, of every segment in `base..<end`) are removed, then the swap file is renamed to
///    `<base>.log` (the cleaned segment keeps the first original's name and base offset) and
///    the directory fsynced.
///
/// The marker says a segment was written by the cleaner: only such a segment may have
/// holes in its offsets (recovery treats a hole in any other as damage, or as data a power
/// loss dropped, and cuts the log there). A marker next to an uncleaned segment (a clean
/// cut before its commit) only weakens that check for a segment that was durable already.
///
/// At open (``completeInterrupted(in:io:)``), before the segments are listed: a `.cleaned`
/// file is removed (the clean never committed, the originals are whole); a `.swap` file
/// finishes step 3 (whatever of it had happened, the marker made again if it went); a marker
/// without its segment is removed. Directory changes reach the disk in order (a journaling
/// file system's rule, and `SimulatedDisk`'s), so no other state can appear.
enum SegmentSwap {
    static let cleanedSuffix = ".log.cleaned"
    static let swapSuffix = ".swap"
    static let markerSuffix = ".compacted"

    static func markerName(base: Int64) -> String { LogSegment.fileName(base, "compacted") }

    /// The base offset a `.compacted` marker is of, or nil if the name is not one.
    static func markerBase(of name: String) -> Int64? {
        name.hasSuffix(markerSuffix) ? Int64(name.dropLast(markerSuffix.count)) : nil
    }

    static func cleanedName(base: Int64) -> String { LogSegment.fileName(base, "log") + ".cleaned" }

    static func swapName(base: Int64, end: Int64) -> String {
        String(LogSegment.fileName(base, "log").dropLast(4)) + "." + LogSegment.fileName(end, "swap")
    }

    /// The `base..<end` a swap file name stands for, or nil if the name is not one.
    static func range(ofSwap name: String) -> Range<Int64>? {
        guard name.hasSuffix(swapSuffix) else { return nil }
        let parts = name.dropLast(swapSuffix.count).split(separator: ".")
        guard parts.count == 2, let base = Int64(parts[0]), let end = Int64(parts[1]), base < end else { return nil }
        return base..<end
    }

    /// The base offset of a segment file (`.log`, `.index`, `.timeindex`, `.txnindex`), or nil.
    static func segmentBase(of name: String) -> Int64? {
        for ext in [".log", ".index", ".timeindex", ".txnindex"] where name.hasSuffix(ext) {
            return Int64(name.dropLast(ext.count))
        }
        return nil
    }

    /// Finishes or undoes every clean a crash cut short in `directory` (see the type's doc).
    static func completeInterrupted(in directory: String, io: FileIO) throws {
        let names = try Directory.list(directory, io: io)
        var changed = false
        for name in names where name.hasSuffix(cleanedSuffix) {
            try Directory.removeFile(directory + "/" + name, io: io)
            changed = true
        }
        let swaps = names.compactMap { name in range(ofSwap: name).map { (name, $0) } }.sorted { $0.1.lowerBound < $1.1.lowerBound }
        var removed: Set<String> = []
        for (name, range) in swaps {
            for other in names {
                if let base = segmentBase(of: other), range.contains(base) {
                    try Directory.removeFile(directory + "/" + other, io: io)
                } else if let base = markerBase(of: other), range.contains(base), base != range.lowerBound {
                    try Directory.removeFile(directory + "/" + other, io: io)
                    removed.insert(other)
                }
            }
            let marker = directory + "/" + markerName(base: range.lowerBound)
            if !Directory.fileExists(marker, io: io) { try createEmpty(marker, io: io) }
            try Directory.rename(directory + "/" + name, directory + "/" + LogSegment.fileName(range.lowerBound, "log"), io: io)
            changed = true
        }
        // Markers whose segment went (retention, recovery) must not vouch for a later one.
        var logs = Set(names.filter { $0.hasSuffix(".log") })
        for (_, range) in swaps {
            logs.subtract((names.compactMap(segmentBase(of:)).filter { range.contains($0) }).map { LogSegment.fileName($0, "log") })
            logs.insert(LogSegment.fileName(range.lowerBound, "log"))
        }
        for name in names {
            guard let base = markerBase(of: name), !removed.contains(name), !logs.contains(LogSegment.fileName(base, "log")) else { continue }
            try Directory.removeFile(directory + "/" + name, io: io)
            changed = true
        }
        if changed { try Directory.sync(directory, io: io) }
    }

    /// Creates an empty file (a marker; made durable by the caller's directory fsync).
    static func createEmpty(_ path: String, io: FileIO) throws {
        let fd = try io.open(path, flags: O_WRONLY | O_CREAT, mode: 0o644)
        io.close(fd)
    }
}
