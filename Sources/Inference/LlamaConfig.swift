import GGUF

/// Hyper-parameters of a Llama-family model, read from GGUF metadata (`llama.*` keys).
public struct LlamaConfig: Sendable, Equatable {
    public var layerCount: Int
    public var embeddingLength: Int
    public var feedForwardLength: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDimension: Int
    public var vocabularySize: Int
    public var contextLength: Int
    public var ropeDimensionCount: Int
    public var ropeFreqBase: Float
    /// 1 / linear RoPE scaling factor (1 when the model is not scaled).
    public var ropeFreqScale: Float
    public var rmsEpsilon: Float

    public var kvDimension: Int { kvHeadCount * headDimension }
    public var queryDimension: Int { headCount * headDimension }

    public init(gguf file: GGUFFile) throws {
        let arch = file.string("general.architecture") ?? ""
        guard arch == "llama" else { throw InferenceError.unsupportedArchitecture(arch) }
        func required(_ key: String) throws -> Int {
            guard let v = file.int("llama." + key) else { throw InferenceError.missingMetadata("llama." + key) }
            guard v > 0 else { throw InferenceError.invalidMetadata("llama." + key, "must be positive, is \(v)") }
            return v
        }
        layerCount = try required("block_count")
        embeddingLength = try required("embedding_length")
        feedForwardLength = try required("feed_forward_length")
        headCount = try required("attention.head_count")
        kvHeadCount = file.int("llama.attention.head_count_kv") ?? headCount
        contextLength = try required("context_length")
        guard kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw InferenceError.invalidMetadata("llama.attention.head_count_kv",
                                                 "\(kvHeadCount) does not divide the head count \(headCount)")
        }
        headDimension = file.int("llama.attention.key_length") ?? embeddingLength / headCount
        if let v = file.int("llama.attention.value_length"), v != headDimension {
            throw InferenceError.invalidMetadata("llama.attention.value_length", "differs from the key length")
        }
        vocabularySize = file.int("llama.vocab_size") ?? file.stringArray("tokenizer.ggml.tokens")?.count ?? 0
        ropeDimensionCount = file.int("llama.rope.dimension_count") ?? headDimension
        guard ropeDimensionCount <= headDimension, ropeDimensionCount % 2 == 0 else {
            throw InferenceError.invalidMetadata("llama.rope.dimension_count",
                                                 "\(ropeDimensionCount) must be even and at most the head size \(headDimension)")
        }
        ropeFreqBase = file.float("llama.rope.freq_base") ?? 10000
        ropeFreqScale = 1
        if let type = file.string("llama.rope.scaling.type"), type == "linear",
           let factor = file.float("llama.rope.scaling.factor"), factor > 0 {
            ropeFreqScale = 1 / factor
        } else if let scale = file.float("llama.rope.scale_linear"), scale > 0 {
            ropeFreqScale = 1 / scale
        }
        guard let eps = file.float("llama.attention.layer_norm_rms_epsilon") else {
            throw InferenceError.missingMetadata("llama.attention.layer_norm_rms_epsilon")
        }
        rmsEpsilon = eps
    }
}
