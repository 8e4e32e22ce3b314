import Inference
import OutpostCore

/// The agent's model: an `Engine` loaded with a SHA-256 fingerprint, the one generator requests
/// run in, and the API's queries and sampling parameters mapped onto the engine's turns and settings.
/// Not thread-safe by itself: `GenerationScheduler` runs one generation at a time.
final class ModelRuntime: @unchecked Sendable {
    // @unchecked: the generator is only used from the scheduler's serial queue.
    let engine: Engine
    let fingerprint: String
    /// Identifies the chat template in cache keys.
    let templateSource: String
    /// The model file's name without its extension (what the API calls the model).
    let name: String
    var contextLength: Int { engine.contextLength }
    private let generator: Generator

    init(path: String, threads: Int, contextLength: Int) throws {
        engine = try Engine(path: path, threads: threads, contextLength: contextLength, fingerprint: Self.sha256)
        fingerprint = engine.fingerprint!  // loaded with a hash
        templateSource = try engine.chatTemplateSource  // a model without a usable chat template is refused here
        generator = try engine.makeGenerator()
        name = Paths.deletingExtension(Paths.lastComponent(path))
    }

    private static func sha256(_ regions: [UnsafeRawBufferPointer]) -> String {
        var h = SHA256()
        for region in regions { h.update(bufferPointer: region) }
        return hexString(h.finalize())
    }

    /// The prompt tokens for a query: the chat template for chat messages, the raw text for a
    /// completion request.
    func promptTokens(_ query: Query) throws -> [Int32] {
        if query.messages.count == 1, query.messages[0].role == CompletionRequest.rawPromptRole {
            return engine.tokenizer.encode(query.messages[0].content, addSpecial: true, parseSpecial: false)
        }
        return try engine.promptTokens(for: query.messages.map { ChatTurn(role: $0.role, content: $0.content) })
    }

    static func options(_ s: SamplingParameters) -> GenerationOptions {
        GenerationOptions(
            maxTokens: s.maxTokens,
            sampling: SamplerSettings(
                temperature: Float(s.temperature), topK: s.topK, topP: Float(s.topP),
                repetitionPenalty: Float(s.repeatPenalty), seed: s.seed ?? 0))
    }

    func generate(_ promptIds: [Int32], sampling: SamplingParameters, isCancelled: () -> Bool,
                  onText: (String) -> Void) throws -> GenerationResult {
        try generator.generate(promptIds: promptIds, options: Self.options(sampling), isCancelled: isCancelled, onText: onText)
    }
}
