import GGUF

extension Tokenizer {
    /// The tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata.
    public convenience init(gguf file: GGUFFile) throws {
        let model = file.string("tokenizer.ggml.model") ?? ""
        guard model == "gpt2" else {
            throw InferenceError.unsupportedTokenizer(
                "tokenizer.ggml.model",
                "tokenizer model '\(model)' is not supported; only byte-level BPE ('gpt2') is")
        }
        guard let tokens = file.stringArray("tokenizer.ggml.tokens") else {
            throw InferenceError.missingMetadata("tokenizer.ggml.tokens")
        }
        guard let merges = file.stringArray("tokenizer.ggml.merges") else {
            throw InferenceError.missingMetadata("tokenizer.ggml.merges")
        }
        try self.init(
            tokens: tokens,
            types: file.intArray("tokenizer.ggml.token_type"),
            merges: merges,
            preTokenizer: file.string("tokenizer.ggml.pre") ?? "gpt2",
            bos: file.int("tokenizer.ggml.bos_token_id"),
            eos: file.int("tokenizer.ggml.eos_token_id"),
            eot: file.int("tokenizer.ggml.eot_token_id"),
            addBOS: file.bool("tokenizer.ggml.add_bos_token") ?? false,
            addEOS: file.bool("tokenizer.ggml.add_eos_token") ?? false)
    }
}
