/// One partition's leader epochs (KIP-101): for every leader epoch that appended to the
/// log, the offset its first batch got. Kept in the partition directory as
/// `leader-epoch-checkpoint` (Kafka's text layout: a version line, a count line, then
/// `epoch startOffset` per line), rewritten atomically and fsynced on every change
/// (`Directory.writeAtomically`), so a crash leaves the old or the new list.
///
/// Entries are strictly increasing in both epoch and start offset. On open the list is
/// clamped to the log end (a crash between a log truncation and the file's rewrite leaves
/// entries past the end; they are dropped then). Not thread-safe: the owning
/// `PartitionLog` serialises access.
public struct LeaderEpochFile: Sendable {
    /// One epoch and the offset of its first batch.
    public struct Entry: Hashable, Sendable {
        public var epoch: Int32
        public var startOffset: Int64
    }

    /// Name of the file in a partition directory.
    public static let fileName = "leader-epoch-checkpoint"
    static let formatVersion = 0

    public private(set) var entries: [Entry]
    let path: String
    let io: FileIO

    /// Loads the file in `directory` (empty when absent or unreadable: the epochs are then
    /// learned again from the next appends), dropping entries at or past `logEnd` (as Kafka's
    /// `truncateFromEnd` at load: a new leader records its epoch again when it leads)
    /// (rewriting the file when any were dropped).
    init(directory: String, logEnd: Int64, io: FileIO) throws {
        path = directory + "/" + Self.fileName
        self.io = io
        entries = []
        if let bytes = try Directory.readFile(path, io: io), let text = String(validating: bytes, as: UTF8.self) {
            entries = Self.decode(text) ?? []
        }
        let kept = entries.filter { $0.startOffset < logEnd }
        if kept.count != entries.count {
            entries = kept
            try write()
        }
    }

    static func decode(_ text: String) -> [Entry]? {
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.count >= 2, Int(lines[0]) == formatVersion, let count = Int(lines[1]), lines.count == count + 2 else { return nil }
        var entries: [Entry] = []
        for line in lines.dropFirst(2) {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let epoch = Int32(fields[0]), let start = Int64(fields[1]), epoch >= 0, start >= 0 else { return nil }
            if let last = entries.last, epoch <= last.epoch || start < last.startOffset { return nil }
            entries.append(Entry(epoch: epoch, startOffset: start))
        }
        return entries
    }

    func encoded() -> [UInt8] {
        var text = "\(Self.formatVersion)\n\(entries.count)\n"
        for e in entries { text += "\(e.epoch) \(e.startOffset)\n" }
        return Array(text.utf8)
    }

    private func write() throws {
        try Directory.writeAtomically(encoded(), to: path, io: io)
    }

    /// The newest epoch, nil when none is known.
    public var latestEpoch: Int32? { entries.last?.epoch }

    /// The start offset of `epoch`, nil when it is not in the list.
    public func startOffset(of epoch: Int32) -> Int64? {
        entries.first { $0.epoch == epoch }?.startOffset
    }

    /// Records that `epoch` starts at `startOffset` (a new leader at election, or the first
    /// batch of a newer epoch). An epoch already known or older is ignored; an entry at
    /// the same start offset (an epoch that appended nothing) is replaced.
    mutating func assign(epoch: Int32, startOffset: Int64) throws {
        precondition(epoch >= 0, "leader epochs are never negative")
        if let last = entries.last, epoch <= last.epoch { return }
        while let last = entries.last, last.startOffset >= startOffset { entries.removeLast() }
        entries.append(Entry(epoch: epoch, startOffset: startOffset))
        try write()
    }

    /// OffsetForLeaderEpoch: the largest known epoch ≤ `epoch` and its end offset (the next
    /// epoch's start, or `logEnd` for the newest). (-1, -1) when `epoch` is older than every
    /// known one; (epoch, logEnd) when nothing is known (a log written before epochs were kept).
    public func endOffset(for epoch: Int32, logEnd: Int64) -> (epoch: Int32, endOffset: Int64) {
        guard let i = entries.lastIndex(where: { $0.epoch <= epoch }) else {
            return entries.isEmpty ? (epoch, logEnd) : (-1, -1)
        }
        let end = i + 1 < entries.count ? entries[i + 1].startOffset : logEnd
        return (entries[i].epoch, end)
    }

    /// Drops every entry starting at or after `offset` (the log is being cut there).
    mutating func truncate(from offset: Int64) throws {
        let kept = entries.filter { $0.startOffset < offset }
        guard kept.count != entries.count else { return }
        entries = kept
        try write()
    }
}
