import CQuants
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a generation is asked to do.
public struct GenerationOptions: Sendable, Equatable {
    public var maxTokens: Int
    public var sampling: SamplerSettings
    /// Generation stops before any of these strings; they are not part of the text.
    public var stopStrings: [String]

    public init(maxTokens: Int = 256, sampling: SamplerSettings = .greedy, stopStrings: [String] = []) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
    }
}

/// The outcome of one generation.
public struct GenerationResult: Sendable, Equatable {
    public enum FinishReason: String, Sendable {
        /// An end-of-generation token (included in `ids`, not in `text`).
        case endOfGeneration = "stop"
        /// A stop string (cut from `text`).
        case stopString = "stop_string"
        /// `maxTokens` tokens were generated.
        case length
        /// The context window is full.
        case contextFull = "context_full"
    }

    public var promptIds: [Int32]
    public var ids: [Int32]
    public var text: String
    public var finishReason: FinishReason
    /// Prompt tokens evaluated at the prompt tokens' rate (the ones not reused from the cache).
    public var promptTokensPerSecond: Double
    public var tokensPerSecond: Double
    /// Leading prompt tokens whose keys and values were already in the session's cache (a prefix
    /// shared with what the session evaluated before) and were not evaluated again.
    public var reusedPromptTokens: Int = 0
}

/// Generates text for prompts: evaluates the prompt as a batch, then one token per step,
/// streaming text pieces that never split a UTF-8 character.
public final class Generator {
    public let session: InferenceSession
    public var model: LanguageModel { session.model }

    public init(session: InferenceSession) {
        self.session = session
    }

    /// Generates after `promptIds`. The session keeps the longest prefix of what it already holds
    /// that `promptIds` starts with (a repeated system prompt, an earlier turn) and evaluates only
    /// the rest: the logits are those of a fresh evaluation. `onText` receives each new
    /// piece of text as it becomes final; `isCancelled` is polled between steps, and a
    /// cancellation throws `InferenceError` (`isCancellation`).
    public func generate(promptIds: [Int32], options: GenerationOptions,
                         isCancelled: () -> Bool = { false },
                         onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        guard !promptIds.isEmpty else { throw InferenceError.invalidArgument("prompt", "the prompt has no tokens") }
        guard options.maxTokens >= 0 else {
            throw InferenceError.invalidArgument("max-tokens", "must be 0 or more, is \(options.maxTokens)")
        }
        var sampler = try Sampler(options.sampling)
        let tokenizer = model.tokenizer
        let reused = session.reusePrefix(of: promptIds)

        let promptStart = monotonicSeconds()
        var logits = try session.evaluate(Array(promptIds[reused...]), isCancelled: isCancelled)
        let promptSeconds = monotonicSeconds() - promptStart

        var ids: [Int32] = []
        var history = promptIds
        var decoder = UTF8StreamDecoder()
        var text = ""          // final text so far
        var held = ""          // decoded text not yet released (could start a stop string)
        var finish = GenerationResult.FinishReason.length
        let genStart = monotonicSeconds()
        var evaluatedSteps = 0

        func release(_ s: String) {
            guard !s.isEmpty else { return }
            text += s
            onText(s)
        }

        while ids.count < options.maxTokens {
            if isCancelled() { throw InferenceError.cancelled() }
            let next = logits.withUnsafeBufferPointer { sampler.sample($0, history: history) }
            ids.append(next)
            history.append(next)
            if tokenizer.endOfGeneration.contains(next) {
                finish = .endOfGeneration
                break
            }
            held += decoder.append(tokenizer.piece(next))
            if let cut = Self.firstStop(in: held, options.stopStrings) {
                release(String(held[..<cut]))
                held = ""
                finish = .stopString
                break
            }
            let keep = Self.longestStopPrefixSuffix(held, options.stopStrings)
            let releaseEnd = held.index(held.endIndex, offsetBy: -keep)
            release(String(held[..<releaseEnd]))
            held = String(held[releaseEnd...])
            if ids.count >= options.maxTokens { break }
            if session.position >= session.contextLength {
                finish = .contextFull
                break
            }
            logits = try session.evaluate([next], isCancelled: isCancelled)
            evaluatedSteps += 1
        }
        if finish != .stopString {
            held += decoder.finish()
            if let cut = Self.firstStop(in: held, options.stopStrings) {
                release(String(held[..<cut]))
                finish = .stopString
            } else {
                release(held)
            }
        }
        let genSeconds = monotonicSeconds() - genStart
        return GenerationResult(
            promptIds: promptIds, ids: ids, text: text, finishReason: finish,
            promptTokensPerSecond: promptSeconds > 0 ? Double(promptIds.count - reused) / promptSeconds : 0,
            tokensPerSecond: genSeconds > 0 && !ids.isEmpty ? Double(ids.count) / genSeconds : 0,
            reusedPromptTokens: reused)
    }

    /// Where the earliest stop string starts in `text`.
    static func firstStop(in text: String, _ stops: [String]) -> String.Index? {
        var best: String.Index?
        for s in stops where !s.isEmpty {
            if let r = text.firstRange(of: s), best.map({ r.lowerBound < $0 }) ?? true { best = r.lowerBound }
        }
        return best
    }

    /// Characters at the end of `text` that begin some stop string (and so must be held back).
    static func longestStopPrefixSuffix(_ text: String, _ stops: [String]) -> Int {
        var longest = 0
        for s in stops where !s.isEmpty {
            let maxLen = min(s.count - 1, text.count)
            guard maxLen > longest else { continue }
            for len in stride(from: maxLen, to: longest, by: -1) where text.hasSuffix(s.prefix(len)) {
                longest = len
                break
            }
        }
        return longest
    }
}

/// Seconds on a monotonic clock.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
