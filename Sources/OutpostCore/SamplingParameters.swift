/// Sampling parameters of a request.
///
/// Only the parameters that change the output take part in the cache key: with temperature 0
/// (greedy decoding) `topK`, `topP` and `seed` do not change the tokens chosen and are left out
/// of the canonical form, so a greedy request hits whatever those fields say.
public struct SamplingParameters: Sendable, Hashable, Codable {
    public var temperature: Double
    public var topK: Int
    public var topP: Double
    public var seed: UInt64?
    public var maxTokens: Int
    public var repeatPenalty: Double

    public init(
        temperature: Double = 0,
        topK: Int = 40,
        topP: Double = 0.95,
        seed: UInt64? = nil,
        maxTokens: Int = 256,
        repeatPenalty: Double = 1.0
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.maxTokens = maxTokens
        self.repeatPenalty = repeatPenalty
    }

    /// Greedy decoding: the output does not depend on the random state.
    public var isGreedy: Bool { temperature <= 0 }

    /// Whether two runs of the same request produce the same answer: greedy, or a fixed seed.
    public var isReproducible: Bool { isGreedy || seed != nil }

    /// Checks the ranges; throws `QueryError` naming the first field out of range.
    public func validate() throws(QueryError) {
        guard temperature.isFinite, temperature >= 0 else {
            throw .invalidParameter("temperature", "must be a finite number >= 0, got \(temperature)")
        }
        guard topK >= 0 else { throw .invalidParameter("top_k", "must be >= 0, got \(topK)") }
        guard topP.isFinite, topP > 0, topP <= 1 else {
            throw .invalidParameter("top_p", "must be in (0, 1], got \(topP)")
        }
        guard maxTokens > 0 else { throw .invalidParameter("max_tokens", "must be > 0, got \(maxTokens)") }
        guard repeatPenalty.isFinite, repeatPenalty > 0 else {
            throw .invalidParameter("repeat_penalty", "must be a finite number > 0, got \(repeatPenalty)")
        }
    }
}
