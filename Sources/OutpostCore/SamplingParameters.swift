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

    /// Largest temperature accepted: far beyond any useful value, and well inside what the
    /// engine's 32-bit floats hold (3.5e38 would become infinity there).
    public static let maxTemperature = 100.0
    /// Smallest non-zero temperature, top_p and repeat_penalty accepted. The engine samples in
    /// 32-bit floats: a smaller value (1e-320, a denormal double) becomes 0 there or overflows the
    /// logits it divides, so it would be silently greedy or a NaN rather than what was asked.
    public static let minPositive = 1e-6
    /// Largest repeat_penalty accepted (a logit divided by more is zero in practice).
    public static let maxRepeatPenalty = 100.0

    /// Checks the ranges; throws `QueryError` naming the first field out of range. Every value
    /// that passes is one the engine computes with as given.
    public func validate() throws(QueryError) {
        guard temperature.isFinite, temperature == 0 || (Self.minPositive...Self.maxTemperature).contains(temperature) else {
            throw .invalidParameter("temperature", "must be 0 (greedy) or from \(Self.minPositive) to \(Self.maxTemperature), got \(temperature)")
        }
        guard topK >= 0 else { throw .invalidParameter("top_k", "must be >= 0, got \(topK)") }
        guard topP.isFinite, (Self.minPositive...1).contains(topP) else {
            throw .invalidParameter("top_p", "must be in (0, 1] and at least \(Self.minPositive), got \(topP)")
        }
        guard maxTokens > 0 else { throw .invalidParameter("max_tokens", "must be > 0, got \(maxTokens)") }
        guard repeatPenalty.isFinite, (Self.minPositive...Self.maxRepeatPenalty).contains(repeatPenalty) else {
            throw .invalidParameter("repeat_penalty", "must be from \(Self.minPositive) to \(Self.maxRepeatPenalty), got \(repeatPenalty)")
        }
    }
}
