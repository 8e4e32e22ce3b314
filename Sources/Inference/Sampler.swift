/// How the sampler chooses the next token from the logits.
public struct SamplerSettings: Sendable, Equatable, Hashable {
    /// 0 (or less) picks the most likely token (ties go to the lowest id).
    public var temperature: Float
    /// Keep only the k most likely tokens (0 keeps all).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probabilities add up to p (1 keeps all).
    public var topP: Float
    /// Drop tokens less likely than minP × the most likely one's probability (0 keeps all).
    public var minP: Float
    /// Divides positive (multiplies negative) logits of recently seen tokens (1 disables).
    public var repetitionPenalty: Float
    /// How many of the latest tokens the repetition penalty looks at.
    public var repetitionWindow: Int
    /// Seed of the random draws; the same seed gives the same tokens on the same machine.
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repetitionPenalty: Float = 1, repetitionWindow: Int = 64, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.repetitionWindow = repetitionWindow
        self.seed = seed
    }

    public static let greedy = SamplerSettings()

    public var isGreedy: Bool { temperature <= 0 }

    func validate() throws {
        guard temperature.isFinite else { throw InferenceError.invalidArgument("temperature", "must be a finite number") }
        guard topK >= 0 else { throw InferenceError.invalidArgument("top-k", "must be 0 or more, is \(topK)") }
        guard topP > 0 && topP <= 1 else { throw InferenceError.invalidArgument("top-p", "must be in (0, 1], is \(topP)") }
        guard minP >= 0 && minP <= 1 else { throw InferenceError.invalidArgument("min-p", "must be in [0, 1], is \(minP)") }
        guard repetitionPenalty > 0 else {
            throw InferenceError.invalidArgument("repetition-penalty", "must be positive, is \(repetitionPenalty)")
        }
    }
}

/// Picks tokens from logits: repetition penalty, then greedy, or top-k → top-p → min-p on the
/// softmax, temperature, and a seeded draw (the order of llama.cpp's default sampler chain).
public struct Sampler {
    public let settings: SamplerSettings
    private var rng: SplitMix64
    private var candidates: [(id: Int32, logit: Float)] = []

    public init(_ settings: SamplerSettings) throws {
        try settings.validate()
        self.settings = settings
        self.rng = SplitMix64(seed: settings.seed)
    }

    /// The next token after `history` (the ids so far, for the repetition penalty).
    @_optimize(speed)
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, history: [Int32] = []) -> Int32 {
        let p = settings
        var penalised: [Int32: Float] = [:]
        if p.repetitionPenalty != 1 && p.repetitionWindow > 0 {
            for id in history.suffix(p.repetitionWindow) where id >= 0 && Int(id) < logits.count {
                let l = logits[Int(id)]
                penalised[id] = l <= 0 ? l * p.repetitionPenalty : l / p.repetitionPenalty
            }
        }
        @inline(__always) func logit(_ i: Int) -> Float { penalised.isEmpty ? logits[i] : (penalised[Int32(i)] ?? logits[i]) }

        if p.isGreedy {
            var best = 0
            var bestLogit = logit(0)
            for i in 1..<logits.count {
                let l = logit(i)
                if l > bestLogit { best = i; bestLogit = l }
            }
            return Int32(best)
        }

        candidates.removeAll(keepingCapacity: true)
        let before: ((id: Int32, logit: Float), (id: Int32, logit: Float)) -> Bool = {
            $0.logit != $1.logit ? $0.logit > $1.logit : $0.id < $1.id
        }
        if p.topK > 0 && p.topK < logits.count {
            // Keep the k best in a sorted array; most logits fail the first comparison.
            for i in 0..<logits.count {
                let c = (id: Int32(i), logit: logit(i))
                if candidates.count == p.topK {
                    guard before(c, candidates[candidates.count - 1]) else { continue }
                    candidates.removeLast()
                }
                var at = candidates.count
                while at > 0 && before(c, candidates[at - 1]) { at -= 1 }
                candidates.insert(c, at: at)
            }
        } else {
            for i in 0..<logits.count { candidates.append((Int32(i), logit(i))) }
            candidates.sort(by: before)
        }
        var probs = softmax(candidates.map { $0.logit })
        if p.topP < 1 {
            var cumulative: Double = 0
            var keep = candidates.count
            for (i, pr) in probs.enumerated() {
                cumulative += pr
                if cumulative >= Double(p.topP) { keep = i + 1; break }
            }
            candidates.removeSubrange(keep...)
            probs = softmax(candidates.map { $0.logit })
        }
        if p.minP > 0, let top = probs.first {
            let threshold = top * Double(p.minP)
            let keep = max(1, probs.prefix { $0 >= threshold }.count)
            candidates.removeSubrange(keep...)
        }
        let tempered = softmax(candidates.map { $0.logit / p.temperature })
        let u = rng.nextUnitDouble()
        var cumulative: Double = 0
        for (i, pr) in tempered.enumerated() {
            cumulative += pr
            if u < cumulative { return candidates[i].id }
        }
        return candidates[candidates.count - 1].id
    }

    private func softmax(_ values: [Float]) -> [Double] {
        guard let m = values.max() else { return [] }
        var out = values.map { expDouble(Double($0 - m)) }
        let sum = out.reduce(0, +)
        for i in out.indices { out[i] /= sum }
        return out
    }
}
