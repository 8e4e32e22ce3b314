import FoundationEssentials
import GGUF
import Inference
import OutpostCore

/// The loaded model: weights mapped once, tokenizer, chat template, one inference session.
/// Not thread-safe by itself: `GenerationScheduler` runs one generation at a time.
final class ModelRuntime: @unchecked Sendable {
    // @unchecked: the session and generator are only used from the scheduler's serial queue.
    let model: LanguageModel
    let template: ChatTemplate
    let templateSource: String
    let fingerprint: String
    let name: String
    let contextLength: Int
    private let generator: Generator

    init(path: String, threads: Int, contextLength: Int) throws {
        (model, fingerprint) = try Self.load(path)
        // The parsed metadata went with the `GGUFFile` (the model keeps only the mapping and what
        // it built from it): hand the freed heap back to the system.
        #if canImport(Glibc)
        _ = outpost_malloc_trim(0)
        #endif
        template = try model.chatTemplate()
        templateSource = model.chatTemplateSource ?? template.family.rawValue
        self.contextLength = min(contextLength, model.config.contextLength)
        let session = try InferenceSession(model: model, contextLength: self.contextLength, threads: threads)
        generator = Generator(session: session)
        name = Paths.deletingExtension(Paths.lastComponent(path))
    }

    /// Maps and parses the file, takes its fingerprint, builds the model, then lets the kernel drop
    /// the header and vocabulary pages, which nothing reads again. The fingerprint comes first:
    /// reading the start of every tensor maps ~128 KiB around each, and building the model then
    /// drops the pages of the tensors it repacks (13 MB more resident the other way round).
    private static func load(_ path: String) throws -> (LanguageModel, String) {
        let file = try GGUFFile(path: path)
        file.adviseWillNeed()
        let fingerprint = Self.fingerprint(file)
        let model = try LanguageModel(file: file)
        file.releaseHeaderPages()
        return (model, fingerprint)
    }

    /// SHA-256 over the file size, the whole header/metadata/tensor-table region and the first
    /// 4 KiB of every tensor: the same file gives the same fingerprint on every gateway, and
    /// any re-quantization or different weights change it, without reading 100+ MB at start-up.
    static func fingerprint(_ file: GGUFFile) -> String {
        var h = SHA256()
        withUnsafeBytes(of: UInt64(file.fileSize).littleEndian) { h.update(bufferPointer: $0) }
        if let head = file.rawBytes(0..<file.dataOffset) {
            h.update(bufferPointer: head)
        }
        for t in file.tensors {
            if let data = try? file.data(for: t) {
                h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: data.prefix(4096)))
            }
        }
        return hexString(h.finalize())
    }

    /// The prompt tokens for a query: the chat template for chat messages, the raw text for a
    /// completion request.
    func promptTokens(_ query: Query) -> [Int32] {
        if query.messages.count == 1, query.messages[0].role == CompletionRequest.rawPromptRole {
            return model.tokenizer.encode(query.messages[0].content, addSpecial: true, parseSpecial: false)
        }
        let messages = query.messages.map { Inference.ChatMessage(role: $0.role, content: $0.content) }
        return model.tokenizer.encode(template.render(messages), addSpecial: true, parseSpecial: true)
    }

    static func options(_ s: OutpostCore.SamplingParameters) -> GenerationOptions {
        GenerationOptions(
            maxTokens: s.maxTokens,
            sampling: Inference.SamplingParameters(
                temperature: Float(s.temperature), topK: s.topK, topP: Float(s.topP),
                repetitionPenalty: Float(s.repeatPenalty), seed: s.seed ?? 0))
    }

    func generate(_ promptIds: [Int32], sampling: OutpostCore.SamplingParameters, isCancelled: () -> Bool,
                  onText: (String) -> Void) throws -> GenerationResult {
        try generator.generate(promptIds: promptIds, options: Self.options(sampling), isCancelled: isCancelled, onText: onText)
    }
}

#if canImport(Glibc)
/// glibc's `malloc_trim` (declared in `<malloc.h>`, which the Glibc module does not export):
/// returns freed heap memory to the system.
@_silgen_name("malloc_trim")
private func outpost_malloc_trim(_ pad: Int) -> Int32
#endif
