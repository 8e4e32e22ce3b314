import GGUF
#if canImport(Glibc)
import Glibc
#endif

/// A model ready to run: the GGUF file mapped once, the weights built from it, its tokenizer, chat
/// template and fingerprint, and the sessions prompts are evaluated in. The agent serves one; the
/// engine commands of the CLI load one per run.
public final class Engine: Sendable {
    /// Hashes byte regions, in order, into a printable digest (the agent passes SHA-256 from
    /// libcrypto: Inference has no cryptography of its own).
    public typealias FingerprintHash = (_ regions: [UnsafeRawBufferPointer]) -> String

    public let path: String
    public let model: LanguageModel
    public var tokenizer: Tokenizer { model.tokenizer }
    /// Forward-pass threads of each session, the caller included (nil: `InferenceSession`'s default).
    public let threads: Int?
    /// Tokens the cache of a session made without a length holds: the length asked for at load
    /// (default `InferenceSession.defaultContextLength`), capped at the model's.
    public let contextLength: Int
    /// The file's fingerprint (see `fingerprint(_:hash:)`), when the engine was loaded with a hash.
    public let fingerprint: String?
    /// The chat template and what identifies it, or why there is none.
    private let chat: Result<(template: ChatTemplate, source: String), any Error>

    /// Maps the model file at `path` and builds the model.
    /// - Parameters:
    ///   - threads: forward-pass threads of each session (default: the online CPUs, at most 8).
    ///   - contextLength: the cache length of sessions made without one.
    ///   - chatTemplate: a template family to use instead of the model's (see `ChatTemplate.Family`).
    ///   - hash: takes the file's fingerprint; without it `fingerprint` is nil.
    public init(path: String, threads: Int? = nil, contextLength: Int? = nil, chatTemplate name: String? = nil,
                fingerprint hash: FingerprintHash? = nil) throws {
        self.path = path
        (model, fingerprint) = try Self.load(path, hash: hash)
        // The parsed metadata went with the `GGUFFile` (the model keeps only the mapping and what
        // it built from it): hand the freed heap back to the system.
        #if canImport(Glibc)
        _ = outpost_malloc_trim(0)
        #endif
        self.threads = threads
        self.contextLength = min(contextLength ?? InferenceSession.defaultContextLength, model.config.contextLength)
        let model = self.model
        chat = Result {
            let template = try model.chatTemplate(named: name)
            return (template, name == nil ? model.chatTemplateSource ?? template.family.rawValue : template.family.rawValue)
        }
    }

    /// Maps and parses the file, takes its fingerprint, builds the model, then lets the kernel drop
    /// the header and vocabulary pages, which nothing reads again. The fingerprint comes first:
    /// reading the start of every tensor maps ~128 KiB around each, and building the model then
    /// drops the pages of the tensors it repacks (13 MB more resident the other way round).
    private static func load(_ path: String, hash: FingerprintHash?) throws -> (LanguageModel, String?) {
        let file = try GGUFFile(path: path)
        file.adviseWillNeed()
        let fingerprint = hash.map { Self.fingerprint(file, hash: $0) }
        let model = try LanguageModel(file: file)
        file.releaseHeaderPages()
        return (model, fingerprint)
    }

    /// Only the tokenizer of the model file at `path`: tokenizing needs no weights.
    public static func loadTokenizer(path: String) throws -> Tokenizer {
        try Tokenizer(gguf: GGUFFile(path: path))
    }

    /// `hash` over the file size (8 bytes, little-endian), the whole header/metadata/tensor-table
    /// region and the first 4 KiB of every tensor: the same file gives the same fingerprint on
    /// every gateway, and any re-quantization or different weights change it, without reading
    /// 100+ MB at start-up.
    public static func fingerprint(_ file: GGUFFile, hash: FingerprintHash) -> String {
        withUnsafeBytes(of: UInt64(file.fileSize).littleEndian) { size in
            var regions = [size]
            if let head = file.rawBytes(0..<file.dataOffset) {
                regions.append(head)
            }
            for t in file.tensors {
                if let data = try? file.data(for: t) {
                    regions.append(UnsafeRawBufferPointer(rebasing: data.prefix(4096)))
                }
            }
            return hash(regions)
        }
    }

    /// The chat template: the family named at load, else the one recognised in the model's
    /// template, else (a file without one) its architecture's family. Throws when there is none.
    public var chatTemplate: ChatTemplate {
        get throws { try chat.get().template }
    }

    /// What identifies the chat template in use (cache keys): the model's own template text, or the
    /// family's name when a family was named at load or the model has no template text.
    public var chatTemplateSource: String {
        get throws { try chat.get().source }
    }

    /// The prompt tokens of a conversation: rendered with the chat template, ending with the
    /// assistant's turn opener, special-token text mapped to its ids.
    public func promptTokens(for turns: [ChatTurn]) throws -> [Int32] {
        tokenizer.encode(try chatTemplate.render(turns), addSpecial: true, parseSpecial: true)
    }

    /// A new session (its own KV cache and threads) holding `contextLength` tokens (default: the
    /// engine's `contextLength`).
    public func makeSession(contextLength: Int? = nil) throws -> InferenceSession {
        try InferenceSession(model: model, contextLength: contextLength ?? self.contextLength, threads: threads)
    }

    /// A generator over a new session (see `makeSession`).
    public func makeGenerator(contextLength: Int? = nil) throws -> Generator {
        Generator(session: try makeSession(contextLength: contextLength))
    }
}

#if canImport(Glibc)
/// glibc's `malloc_trim` (declared in `<malloc.h>`, which the Glibc module does not export):
/// returns freed heap memory to the system.
@_silgen_name("malloc_trim")
private func outpost_malloc_trim(_ pad: Int) -> Int32
#endif
