/// A watch etcd created: an `AsyncSequence` of `EtcdWatchResponse`s, in revision order, from the
/// start revision asked for. It ends by throwing: `.compacted` (the start revision is gone: re-read
/// and watch again, or use `EtcdResumingWatch`), `.unavailable` (the member went away), or
/// `.cancelled` after `cancel()`. A watch costs one connection until it ends.
///
/// ```swift
/// let watch = try await client.watch(.prefix("/spool/c1/brokers/"), fromRevision: range.revision + 1)
/// for try await response in watch { for event in response.events { print(event.kind, event.kv.key) } }
/// ```
public final class EtcdWatch: AsyncSequence, Sendable {
    public typealias Element = EtcdWatchResponse

    /// The store's revision when the watch was created.
    public let createdRevision: Int64
    private let stream: AsyncThrowingStream<EtcdWatchResponse, any Error>
    private let connection: HTTPConnection
    private let sink: WatchStreamSink

    init(createdRevision: Int64, stream: AsyncThrowingStream<EtcdWatchResponse, any Error>, connection: HTTPConnection, sink: WatchStreamSink) {
        self.createdRevision = createdRevision
        self.stream = stream
        self.connection = connection
        self.sink = sink
    }

    /// Stops the watch (its sequence ends throwing `.cancelled`) and closes its connection.
    /// Dropping the sequence or cancelling the task iterating it closes the connection too.
    public func cancel() {
        let sink = self.sink
        connection.channel.eventLoop.execute { sink.cancel() }
        connection.close()
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<EtcdWatchResponse, any Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }
}
