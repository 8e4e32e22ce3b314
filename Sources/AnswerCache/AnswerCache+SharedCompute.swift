import OutpostCore

extension AnswerCache {
    /// Single-flight computation without a lookup, for callers that looked up themselves (so
    /// hits and misses are counted once) and want to stream what they compute: concurrent
    /// callers for `key` share one run of the first caller's `compute`; the answer fills the
    /// cache. `compute` runs only in the caller that started the flight.
    public func sharedCompute(
        for key: CacheKey, namespace: String = Query.defaultNamespace, tags: [String] = [],
        compute: @escaping @Sendable () async throws -> Answer
    ) async throws -> Answer {
        try await flight(for: key, namespace: namespace, tags: tags, compute: compute).value
    }

    /// Starts a background refresh of a stale entry, unless one is already running.
    public func refresh(
        for key: CacheKey, namespace: String = Query.defaultNamespace, tags: [String] = [],
        compute: @escaping @Sendable () async throws -> Answer
    ) {
        _ = flight(for: key, namespace: namespace, tags: tags, compute: compute)
    }
}
