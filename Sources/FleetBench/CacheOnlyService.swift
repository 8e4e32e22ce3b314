import AnswerCache
import OutpostCore

/// The agent's cache path without a model: a hit is answered from the `AnswerCache`, a miss with a
/// fixed text that then fills it. Enough to measure what MQTT and the cache add to a hit.
final class CacheOnlyService: AnswerService {
    let cache: AnswerCache
    let gateway: String

    init(cache: AnswerCache, gateway: String) {
        self.cache = cache
        self.gateway = gateway
    }

    func answer(_ query: Query, onPiece: @escaping @Sendable (String) async -> Void) async throws -> AnsweredQuery {
        let key = CacheKey.derive(modelFingerprint: "bench", chatTemplate: "", query: query)
        if let hit = cache.lookup(key).answer {
            await onPiece(hit.text)
            return AnsweredQuery(answer: hit, cached: true, stale: false, cacheKey: key, gateway: gateway, kernel: "none", timings: Timings())
        }
        let answer = Answer(text: "a fixed answer of moderate length, as a cached reply might be", completionTokens: 12)
        await onPiece(answer.text)
        cache.fill(key, answer: answer, namespace: query.namespace, tags: query.tags)
        return AnsweredQuery(answer: answer, cached: false, stale: false, cacheKey: key, gateway: gateway, kernel: "none", timings: Timings())
    }

    var modelName: String { "bench" }

    func health() async -> HealthReport {
        HealthReport(ready: true, modelLoaded: false, modelFingerprint: "bench", kernel: "none", configVersion: 0,
                     broker: "", gateway: gateway, uptimeSeconds: 0)
    }

    func cacheStatistics() async -> [String: Int] {
        cache.stats().counters
    }

    func invalidate(_ scope: InvalidationScope) async throws -> InvalidationReceipt {
        InvalidationReceipt(try cache.invalidate(scope))
    }

    func metricsText() async -> String { "" }
}
