/// What a partition remembers of one idempotent producer: its epoch, the first
/// sequence of this epoch it has seen since it knew the producer, and its last few
/// runs of appended records (sequence ranges and offsets), newest last.
///
/// A run is one or more of the producer's batches appended back to back: their
/// sequences follow one another and so do their offsets, so any record's offset in a
/// run follows from its sequence. A Spool client sends several batches of a
/// partition in one request and, after a failure, retries them one by one: the
/// retry of any of them is found in the run of its request.
struct ProducerEntry: Hashable {
    /// Records appended with sequences `firstSequence...lastSequence` (wrapping after
    /// `Int32.max`) at offsets `baseOffset...baseOffset + lastOffsetDelta`.
    struct Run: Hashable {
        var firstSequence: Int32
        var lastSequence: Int32
        var baseOffset: Int64
        var lastOffsetDelta: Int32

        /// The offsets of the records with sequences `first...last`, when the run holds all of them.
        func offsets(first: Int32, last: Int32) -> (base: Int64, last: Int64)? {
            let span = ProducerEntry.distance(from: firstSequence, to: lastSequence)
            let start = ProducerEntry.distance(from: firstSequence, to: first)
            let end = ProducerEntry.distance(from: firstSequence, to: last)
            guard start <= end, end <= span else { return nil }
            return (baseOffset + start, baseOffset + end)
        }
    }

    /// Longest run, in records: far below the 2^31 sequences, so that a distance
    /// between two sequences of one run is never ambiguous.
    static let runRecordsMax: Int64 = 1 << 30

    var epoch: Int16
    /// Every sequence of this epoch from here to the last one was appended: the producer
    /// was first seen (or its epoch began) here, and sequences run without gaps after it.
    var knownFromSequence: Int32
    var runs: [Run] = []
    /// Newest batch timestamp (the producer's clock, as Kafka uses), for expiry.
    var lastTimestamp: Int64

    var lastSequence: Int32? { runs.last?.lastSequence }

    /// The offsets of the records with sequences `first...last` when one remembered run holds them all.
    func duplicate(firstSequence first: Int32, lastSequence last: Int32) -> (base: Int64, last: Int64)? {
        for run in runs.reversed() {
            if let offsets = run.offsets(first: first, last: last) { return offsets }
        }
        return nil
    }

    /// Whether every sequence in `first...last` was appended in this epoch (it lies
    /// between `knownFromSequence` and the last sequence), remembered or not.
    func wasAppended(firstSequence first: Int32, lastSequence last: Int32) -> Bool {
        guard let newest = lastSequence else { return false }
        let known = Self.distance(from: knownFromSequence, to: newest)
        let start = Self.distance(from: knownFromSequence, to: first)
        let end = Self.distance(from: knownFromSequence, to: last)
        return start <= end && end <= known
    }

    /// Adds a batch; a newer epoch forgets the older epoch's runs. A batch that directly
    /// follows the newest run (in sequence and in offset) extends it.
    mutating func record(epoch: Int16, firstSequence: Int32, lastSequence: Int32, baseOffset: Int64, lastOffsetDelta: Int32,
                         timestamp: Int64, keep: Int) {
        if epoch != self.epoch {
            self.epoch = epoch
            runs.removeAll()
            knownFromSequence = firstSequence
        } else if let newest = runs.last, !Self.follows(firstSequence, after: newest.lastSequence) {
            // A gap accepted anyway (the producer was unknown): nothing before it is vouched for.
            knownFromSequence = firstSequence
        }
        if var newest = runs.last, Self.follows(firstSequence, after: newest.lastSequence),
           baseOffset == newest.baseOffset + Int64(newest.lastOffsetDelta) + 1,
           Int64(newest.lastOffsetDelta) + Int64(lastOffsetDelta) + 2 <= Self.runRecordsMax {
            newest.lastSequence = lastSequence
            newest.lastOffsetDelta += lastOffsetDelta + 1
            runs[runs.count - 1] = newest
        } else {
            runs.append(Run(firstSequence: firstSequence, lastSequence: lastSequence, baseOffset: baseOffset, lastOffsetDelta: lastOffsetDelta))
            if runs.count > keep { runs.removeFirst(runs.count - keep) }
        }
        lastTimestamp = max(lastTimestamp, timestamp)
    }

    /// The sequence of the last record of a batch: wraps to 0 after `Int32.max`, as Kafka's does.
    static func lastSequence(base: Int32, lastOffsetDelta: Int32) -> Int32 {
        base > Int32.max - lastOffsetDelta ? lastOffsetDelta - (Int32.max - base) - 1 : base + lastOffsetDelta
    }

    /// Whether `next` directly follows `last`.
    static func follows(_ next: Int32, after last: Int32) -> Bool {
        last == Int32.max ? next == 0 : next == last + 1
    }

    /// How many sequences `to` is after `from`, counting around the wrap (0..<2^31).
    static func distance(from: Int32, to: Int32) -> Int64 {
        (Int64(to) - Int64(from) + (Int64(Int32.max) + 1)) % (Int64(Int32.max) + 1)
    }
}
