
/// Perplexity of a token sequence: exp of the mean negative log-likelihood of each next token,
/// the whole sequence in one context (as llama.cpp's golden figure was made).
public enum Perplexity {
    public struct Result: Sendable {
        /// Tokens in the sequence.
        public var tokens: Int
        /// Next-token predictions scored (tokens - 1).
        public var scored: Int
        public var perplexity: Double
    }

    /// - Parameter window: context length; a longer sequence is scored in consecutive windows
    ///   of this many tokens, each starting with an empty cache (default: the whole sequence).
    public static func compute(model: LanguageModel, tokens: [Int32], window: Int? = nil, threads: Int? = nil,
                               isCancelled: () -> Bool = { false }) throws -> Result {
        guard tokens.count >= 2 else {
            throw InferenceError.invalidArgument("text", "perplexity needs at least 2 tokens, got \(tokens.count)")
        }
        let ctx = min(window ?? tokens.count, model.config.contextLength)
        guard ctx >= 2 else { throw InferenceError.invalidArgument("ctx", "must be at least 2") }
        let session = try InferenceSession(model: model, contextLength: min(ctx, tokens.count), threads: threads)
        var nll: Double = 0
        var scored = 0
        var start = 0
        while start < tokens.count - 1 {
            let chunk = Array(tokens[start..<min(start + ctx, tokens.count)])
            session.reset()
            try session.evaluate(chunk, allLogits: true, isCancelled: isCancelled) { i, logits in
                guard i + 1 < chunk.count else { return }
                nll -= logSoftmax(logits, at: Int(chunk[i + 1]))
                scored += 1
            }
            start += chunk.count
        }
        return Result(tokens: tokens.count, scored: scored, perplexity: expDouble(nll / Double(max(scored, 1))))
    }

    /// log softmax(logits)[index], computed in double.
    @_optimize(speed)
    static func logSoftmax(_ logits: UnsafeBufferPointer<Float>, at index: Int) -> Double {
        var maxLogit = -Float.infinity
        for l in logits { maxLogit = max(maxLogit, l) }
        var sum: Double = 0
        for l in logits { sum += expDouble(Double(l - maxLogit)) }
        return Double(logits[index] - maxLogit) - logDouble(sum)
    }
}

