import SpoolRecords

/// Thrown inside a header walk to stop it early.
private struct StopWalk: Error {}

extension PartitionLog {
    /// `span` cut to its whole batches that end before `offset` (a read_committed read
    /// stops at the last stable offset), or nil when its first batch does not.
    public func span(_ span: FileSpan, endingBefore offset: Int64) throws -> FileSpan? {
        guard span.nextOffset > offset else { return span }
        guard span.firstOffset < offset else { return nil }
        var length = 0
        var next = span.firstOffset
        do {
            try forEachHeader(in: span) { h in
                guard h.lastOffset < offset else { throw StopWalk() }
                length += h.totalBytes
                next = h.nextOffset
            }
        } catch is StopWalk {}
        guard length > 0 else { return nil }
        var cut = span
        cut.length = length
        cut.nextOffset = next
        return cut
    }
}
