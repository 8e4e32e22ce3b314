import GGUF

extension Tokenizer {
    /// The tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata: byte-level BPE
    /// (`tokenizer.ggml.model = gpt2`) or SentencePiece (`llama`), with llama.cpp's defaults for
    /// keys the file leaves out.
    public convenience init(gguf file: GGUFFile) throws {
        let model = file.string("tokenizer.ggml.model") ?? ""
        guard let tokens = file.stringArray("tokenizer.ggml.tokens") else {
            if model == "gpt2" || model == "llama" { throw InferenceError.missingMetadata("tokenizer.ggml.tokens") }
            throw Self.unsupportedModel(model)
        }
        let types = file.intArray("tokenizer.ggml.token_type")
        let eot = file.int("tokenizer.ggml.eot_token_id")
        switch model {
        case "gpt2":
            guard let merges = file.stringArray("tokenizer.ggml.merges") else {
                throw InferenceError.missingMetadata("tokenizer.ggml.merges")
            }
            try self.init(
                tokens: tokens,
                types: types,
                merges: merges,
                preTokenizer: file.string("tokenizer.ggml.pre") ?? "gpt2",
                bos: file.int("tokenizer.ggml.bos_token_id"),
                eos: file.int("tokenizer.ggml.eos_token_id"),
                eot: eot,
                addBOS: file.bool("tokenizer.ggml.add_bos_token") ?? false,
                addEOS: file.bool("tokenizer.ggml.add_eos_token") ?? false)
        case "llama":
            // llama.cpp's SentencePiece defaults: BOS 1, EOS 2 (when in the vocabulary), BOS added,
            // a prefix space.
            func id(_ key: String, default fallback: Int) -> Int? {
                file.int(key) ?? (fallback < tokens.count ? fallback : nil)
            }
            try self.init(
                sentencePieceTokens: tokens,
                scores: try Self.scores(file, count: tokens.count),
                types: types,
                bos: id("tokenizer.ggml.bos_token_id", default: 1),
                eos: id("tokenizer.ggml.eos_token_id", default: 2),
                eot: eot,
                addBOS: file.bool("tokenizer.ggml.add_bos_token") ?? true,
                addEOS: file.bool("tokenizer.ggml.add_eos_token") ?? false,
                addSpacePrefix: file.bool("tokenizer.ggml.add_space_prefix") ?? true)
        default:
            throw Self.unsupportedModel(model)
        }
    }

    private static func unsupportedModel(_ model: String) -> InferenceError {
        InferenceError.unsupportedTokenizer(
            "tokenizer.ggml.model",
            "tokenizer model '\(model)' is not supported; byte-level BPE ('gpt2') and SentencePiece ('llama') are")
    }

    /// `tokenizer.ggml.scores`: float32 (or, as llama.cpp also accepts, int32), one per token.
    private static func scores(_ file: GGUFFile, count: Int) throws -> [Float] {
        let key = "tokenizer.ggml.scores"
        guard let value = file.metadata[key] else { throw InferenceError.missingMetadata(key) }
        guard case .array(let elementType, let values) = value, elementType == .float32 || elementType == .int32 else {
            throw InferenceError.invalidMetadata(key, "must be an array of float32 (or int32) scores, one per token")
        }
        guard values.count == count else {
            throw InferenceError.invalidMetadata(key, "has \(values.count) entries for \(count) tokens")
        }
        var scores: [Float] = []
        scores.reserveCapacity(count)
        for v in values {
            switch v {
            case .float32(let f): scores.append(f)
            case .int32(let i): scores.append(Float(i))
            default: throw InferenceError.invalidMetadata(key, "must be an array of float32 (or int32) scores, one per token")
            }
        }
        return scores
    }
}
