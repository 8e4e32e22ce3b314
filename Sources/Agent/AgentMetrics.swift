import AnswerCache
import CoreMetrics
import FoundationEssentials
import OutpostCore
import Synchronization

/// The agent's metrics through swift-metrics (the executable bootstraps the backend; Prometheus
/// text comes from `render`). Names follow `outpost_<module>_<name>`.
final class AgentMetrics: @unchecked Sendable {
    // @unchecked: swift-metrics handlers are thread-safe; the rest is immutable.
    private let cachedRequests = Counter(label: "outpost_agent_requests_total", dimensions: [("cached", "true")])
    private let generatedRequests = Counter(label: "outpost_agent_requests_total", dimensions: [("cached", "false")])
    private let tokens = Counter(label: "outpost_agent_generated_tokens_total")
    private let latency = CoreMetrics.Timer(label: "outpost_agent_request_duration_seconds")
    private let queueDepth = Gauge(label: "outpost_agent_queue_depth")
    private let cacheGauges: [(KeyPath<AnswerCacheStats, Int>, Gauge)] = [
        (\.hits, Gauge(label: "outpost_cache_hits")),
        (\.staleHits, Gauge(label: "outpost_cache_stale_hits")),
        (\.misses, Gauge(label: "outpost_cache_misses")),
        (\.fills, Gauge(label: "outpost_cache_fills")),
        (\.fillsDropped, Gauge(label: "outpost_cache_fills_dropped")),
        (\.flushes, Gauge(label: "outpost_cache_flushes")),
        (\.queueDepth, Gauge(label: "outpost_cache_queue_depth")),
        (\.entries, Gauge(label: "outpost_cache_entries")),
        (\.bytes, Gauge(label: "outpost_cache_bytes")),
        (\.invalidationsApplied, Gauge(label: "outpost_cache_invalidations_applied")),
    ]
    /// PeerSync's counters, one gauge each (`outpost_mqtt_<counter>`), made on first sight.
    private let peerGauges = Mutex<[String: Gauge]>([:])
    private let brokerConnected = Gauge(label: "outpost_mqtt_connected")
    let render: @Sendable () -> String

    init(render: @escaping @Sendable () -> String) {
        self.render = render
    }

    func request(cached: Bool, seconds: Double, completionTokens: Int) {
        (cached ? cachedRequests : generatedRequests).increment()
        if completionTokens > 0 { tokens.increment(by: completionTokens) }
        latency.recordNanoseconds(Int64(seconds * 1e9))
    }

    /// A fleet config received over MQTT: `applied`, `rejected`, `rolled_back`, `redelivered`
    /// (a retained one already applied), `empty` (the retained config cleared) or `dropped`.
    func configs(outcome: String) {
        Counter(label: "outpost_agent_fleet_configs_total", dimensions: [("outcome", outcome)]).increment()
    }

    func update(cache stats: AnswerCacheStats, queueDepth depth: Int) {
        for (path, gauge) in cacheGauges { gauge.record(Double(stats[keyPath: path])) }
        queueDepth.record(Double(depth))
    }

    /// PeerSync's counters (requests, replies, invalidations sent and applied, gaps, session
    /// losses, …) and whether the broker connection is up.
    func update(peer counters: [String: Int], connected: Bool) {
        brokerConnected.record(connected ? 1 : 0)
        for (name, value) in counters {
            let gauge = peerGauges.withLock { gauges in
                if let g = gauges[name] { return g }
                let label = "outpost_mqtt_" + String(name.unicodeScalars.map {
                    $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) ? Character($0) : "_"
                })
                let g = Gauge(label: label)
                gauges[name] = g
                return g
            }
            gauge.record(Double(value))
        }
    }
}
