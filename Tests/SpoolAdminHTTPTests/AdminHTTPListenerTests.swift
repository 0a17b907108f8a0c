import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import SpoolAdminHTTP
import SpoolBroker
import Testing

/// The listener over a real socket: readiness before and after the broker is attached,
/// the metrics page, JSON errors, and the console's files.
@Suite struct AdminHTTPListenerTests {
    func get(_ address: String, _ path: String) async throws -> (status: Int, body: String, type: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://\(address)\(path)")!)
        let http = response as! HTTPURLResponse
        return (http.statusCode, String(decoding: data, as: UTF8.self), http.value(forHTTPHeaderField: "Content-Type") ?? "")
    }

    @Test func servesHealthReadinessMetricsAPIAndConsole() async throws {
        let t = try TestBroker()
        defer { Task { await t.close() } }
        _ = try await t.broker.createTopic("orders", partitions: 1)
        try await t.produce("orders", values: [Array("hello".utf8)])
        let listener = try AdminHTTPListener(exporter: t.exporter, host: "127.0.0.1", port: 0, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await listener.run() }
            let address = await listener.boundAddress()

            // Before the broker is attached: alive, not ready, API unavailable.
            #expect(try await get(address, "/health").status == 200)
            #expect(try await get(address, "/ready").status == 503)
            let early = try await get(address, "/v1/broker")
            #expect(early.status == 503 && early.body.contains("\"code\":\"UNAVAILABLE\""))

            listener.attach(t.api)
            #expect(try await get(address, "/ready").status == 200)
            let metrics = try await get(address, "/metrics")
            #expect(metrics.status == 200 && metrics.type.hasPrefix("text/plain; version=0.0.4"))
            #expect(metrics.body.contains(#"spool_records_in_total{topic="orders"} 1"#))
            let topics = try await get(address, "/v1/topics")
            #expect(topics.status == 200 && topics.type == "application/json" && topics.body.contains(#""endOffset":1"#))
            let records = try await get(address, "/v1/topics/orders/partitions/0/records?limit=1")
            #expect(records.status == 200 && records.body.contains(#""data":"hello""#))
            let missing = try await get(address, "/v1/topics/nope")
            #expect(missing.status == 404 && missing.body.contains("\"code\":\"NOT_FOUND\""))
            #expect(try await get(address, "/v1/topics/orders/partitions/0/records?limit=x").status == 400)
            let page = try await get(address, "/")
            #expect(page.status == 200 && page.type.hasPrefix("text/html") && page.body.contains("/console/app.js"))
            let script = try await get(address, "/console/app.js")
            #expect(script.status == 200 && script.type.hasPrefix("text/javascript") && script.body.contains("/v1/topics"))
            #expect(try await get(address, "/console/nothing.js").status == 404)
            group.cancelAll()
        }
    }
}
