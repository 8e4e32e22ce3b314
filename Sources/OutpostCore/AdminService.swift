/// What an operator asks of the agent through a door: its health, the answer cache's counters,
/// invalidations and metrics. Cheap calls that never wait for the model, so a door can answer
/// them while every generation slot is taken (the HTTP door's reserved connections).
public protocol AdminService: Sendable {
    func health() async -> HealthReport

    /// Counters of the answer cache, snake_case names (`hits`, `stale_hits`, …).
    func cacheStatistics() async -> [String: Int]

    /// Applies an invalidation durably (returns once it is on disk) and announces it to peers.
    func invalidate(_ scope: InvalidationScope) async throws -> InvalidationReceipt

    /// Prometheus text exposition of the agent's metrics.
    func metricsText() async -> String
}
