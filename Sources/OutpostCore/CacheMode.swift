/// How a request uses the answer cache.
public enum CacheMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Answer from the cache when possible, fill it on a miss (the default).
    case use
    /// Skip the lookup, compute a fresh answer and fill the cache with it.
    case refresh
    /// Neither look up nor fill.
    case bypass
}
