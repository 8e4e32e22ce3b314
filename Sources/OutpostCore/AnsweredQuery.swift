/// An answer and where it came from.
public struct AnsweredQuery: Sendable {
    public var answer: Answer
    public var cached: Bool
    public var stale: Bool
    public var cacheKey: CacheKey?
    public var gateway: String
    public var kernel: String
    public var timings: Timings

    public init(answer: Answer, cached: Bool, stale: Bool, cacheKey: CacheKey?, gateway: String, kernel: String, timings: Timings) {
        self.answer = answer
        self.cached = cached
        self.stale = stale
        self.cacheKey = cacheKey
        self.gateway = gateway
        self.kernel = kernel
        self.timings = timings
    }
}
