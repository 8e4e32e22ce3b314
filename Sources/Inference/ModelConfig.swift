import GGUF

/// Hyper-parameters of a model, read from GGUF metadata: the keys every architecture shares
/// (`<arch>.block_count`, `<arch>.embedding_length`, ...), then the architecture's own through its
/// `configure` hook (see `Architecture`).
public struct ModelConfig: Sendable, Equatable {
    /// `general.architecture`.
    public var architectureName: String
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
    /// The attention scale: 1/√head_dim (applied to the scores, or to Q first where the
    /// architecture says so).
    public var attentionScale: Float
    /// Positions a sliding-window layer attends to (itself and the `slidingWindow - 1` before it),
    /// nil when no layer has a window.
    public var slidingWindow: Int?
    /// Per layer: whether it is a sliding-window layer (empty when `slidingWindow` is nil).
    public var slidingWindowLayers: [Bool] = []
    /// RoPE base of the sliding-window layers.
    public var slidingWindowRopeFreqBase: Float = 10000
    /// logits = cap · tanh(logits / cap) when set (`final_logit_softcapping`).
    public var finalLogitSoftcap: Float?

    public var kvDimension: Int { kvHeadCount * headDimension }
    public var queryDimension: Int { headCount * headDimension }

    /// Whether layer `l` attends through the sliding window.
    public func isSlidingWindowLayer(_ l: Int) -> Bool {
        slidingWindow != nil && slidingWindowLayers[l]
    }

    /// The RoPE base and linear frequency scale layer `l` uses (sliding-window layers: their own
    /// base, unscaled, as llama.cpp's rope_freq_base_train_swa / rope_freq_scale_train_swa).
    public func rope(layer l: Int) -> (base: Float, scale: Float) {
        isSlidingWindowLayer(l) ? (slidingWindowRopeFreqBase, 1) : (ropeFreqBase, ropeFreqScale)
    }

    public init(gguf file: GGUFFile, architecture: Architecture) throws {
        let arch = architecture.name
        architectureName = arch
        func key(_ k: String) -> String { arch + "." + k }
        func required(_ k: String) throws -> Int {
            guard let v = file.int(key(k)) else { throw InferenceError.missingMetadata(key(k)) }
            guard v > 0 else { throw InferenceError.invalidMetadata(key(k), "must be positive, is \(v)") }
            return v
        }
        layerCount = try required("block_count")
        embeddingLength = try required("embedding_length")
        feedForwardLength = try required("feed_forward_length")
        headCount = try required("attention.head_count")
        kvHeadCount = file.int(key("attention.head_count_kv")) ?? headCount
        contextLength = try required("context_length")
        guard kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw InferenceError.invalidMetadata(key("attention.head_count_kv"),
                                                 "\(kvHeadCount) does not divide the head count \(headCount)")
        }
        headDimension = file.int(key("attention.key_length")) ?? embeddingLength / headCount
        guard headDimension > 0, headDimension % 2 == 0 else {
            throw InferenceError.invalidMetadata(key("attention.key_length"), "\(headDimension) must be positive and even")
        }
        if let v = file.int(key("attention.value_length")), v != headDimension {
            throw InferenceError.invalidMetadata(key("attention.value_length"), "differs from the key length")
        }
        vocabularySize = file.int(key("vocab_size")) ?? file.arrayCount("tokenizer.ggml.tokens") ?? 0
        ropeDimensionCount = file.int(key("rope.dimension_count")) ?? headDimension
        guard ropeDimensionCount > 0, ropeDimensionCount <= headDimension, ropeDimensionCount % 2 == 0 else {
            throw InferenceError.invalidMetadata(key("rope.dimension_count"),
                                                 "\(ropeDimensionCount) must be even and at most the head size \(headDimension)")
        }
        ropeFreqBase = file.float(key("rope.freq_base")) ?? 10000
        ropeFreqScale = 1
        if let type = file.string(key("rope.scaling.type")), type == "linear",
           let factor = file.float(key("rope.scaling.factor")), factor > 0 {
            ropeFreqScale = 1 / factor
        } else if let scale = file.float(key("rope.scale_linear")), scale > 0 {
            ropeFreqScale = 1 / scale
        }
        guard let eps = file.float(key("attention.layer_norm_rms_epsilon")) else {
            throw InferenceError.missingMetadata(key("attention.layer_norm_rms_epsilon"))
        }
        rmsEpsilon = eps
        attentionScale = 1 / Float(headDimension).squareRoot()
        try architecture.configure(&self, file)
        if let window = slidingWindow {
            guard window > 0, slidingWindowLayers.count == layerCount else {
                throw InferenceError.invalidMetadata(key("attention.sliding_window"), "\(window) with \(slidingWindowLayers.count) layer flags")
            }
        }
    }
}
