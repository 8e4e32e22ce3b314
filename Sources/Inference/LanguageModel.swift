import CQuants
import GGUF

/// A model loaded from a GGUF file: its architecture, hyper-parameters, tokenizer and weights, the
/// weights used in place from the file's mapping. Immutable and shareable; evaluation state lives
/// in an `InferenceSession`.
public final class LanguageModel: @unchecked Sendable {
    /// One transformer block's weights. The optional ones are those an architecture may have.
    struct Layer {
        let attentionNorm: [Float]
        let wq: WeightMatrix
        let wk: WeightMatrix
        let wv: WeightMatrix
        /// Q/K/V biases [queryDimension], [kvDimension], [kvDimension] (Qwen 2).
        let qBias: [Float]?
        let kBias: [Float]?
        let vBias: [Float]?
        /// Per-head RMSNorm weights of Q and K [headDimension] (Gemma 3, Qwen 3).
        let qNorm: [Float]?
        let kNorm: [Float]?
        let wo: WeightMatrix
        /// RMSNorm weight of the attention output before the residual add [embeddingLength] (Gemma 3).
        let postAttentionNorm: [Float]?
        let ffnNorm: [Float]
        let wGate: WeightMatrix
        let wUp: WeightMatrix
        let wDown: WeightMatrix
        /// RMSNorm weight of the feed-forward output before the residual add [embeddingLength] (Gemma 3).
        let postFeedForwardNorm: [Float]?

        var matrices: [WeightMatrix] { [wq, wk, wv, wo, wGate, wUp, wDown] }
    }

    /// The memory the weights are read from in place (the file's parsed metadata is not kept).
    public let mapping: GGUFMapping
    public let fileSize: Int
    public let architecture: Architecture
    public let config: ModelConfig
    public let tokenizer: Tokenizer
    /// The Jinja source of the model's chat template, when it has one.
    public let chatTemplateSource: String?

    let tokenEmbedding: WeightMatrix
    let layers: [Layer]
    let outputNorm: [Float]
    let output: WeightMatrix
    /// Per-dimension-pair RoPE frequency divisors (`rope_freqs.weight`, Llama 3.1), when present.
    let ropeFrequencyFactors: [Float]?

    public convenience init(path: String) throws {
        try self.init(file: GGUFFile(path: path))
    }

    /// Loads the model from `file`. With `repackWeights` (the default) the matrices whose type the
    /// active kernel path runs faster repacked are copied into that layout (see `WeightMatrix`);
    /// without it every matrix is used in place from the file.
    public init(file: GGUFFile, repackWeights: Bool = true) throws {
        self.mapping = file.mapping
        self.fileSize = file.fileSize
        let architecture = try Architecture.named(file.string("general.architecture") ?? "")
        self.architecture = architecture
        let config = try ModelConfig(gguf: file, architecture: architecture)
        self.tokenizer = try Tokenizer(gguf: file)
        self.chatTemplateSource = file.string("tokenizer.chat_template")

        let dim = config.embeddingLength
        let embedding = try WeightMatrix(file: file, name: "token_embd.weight", columns: dim,
                                         rows: file.tensor(named: "token_embd.weight")?.dimensions.last ?? 0,
                                         repack: repackWeights)
        var cfg = config
        if cfg.vocabularySize == 0 { cfg.vocabularySize = embedding.rows }
        guard embedding.rows == cfg.vocabularySize, tokenizer.vocabularySize <= cfg.vocabularySize else {
            throw InferenceError.badTensorShape("token_embd.weight", expected: [dim, cfg.vocabularySize],
                                                found: [dim, embedding.rows])
        }
        self.config = cfg
        self.tokenEmbedding = embedding

        /// A vector tensor (norm weight, bias) as f32.
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            guard let info = file.tensor(named: name) else { throw InferenceError.missingTensor(name) }
            guard info.elementCount == n else { throw InferenceError.badTensorShape(name, expected: [n], found: info.dimensions) }
            guard info.type == .f32 || info.type == .f16 else {
                throw InferenceError.unsupportedTensorType(name, type: info.type.name)
            }
            let data = try file.data(for: info)
            var out = [Float](repeating: 0, count: n)
            out.withUnsafeMutableBufferPointer { o in
                _ = cq_dequantize_row(Int32(info.type.rawValue), data.baseAddress!, o.baseAddress!, Int64(n))
            }
            return out
        }
        func optionalVector(_ name: String, _ n: Int) throws -> [Float]? {
            file.tensor(named: name) == nil ? nil : try vector(name, n)
        }
        func matrix(_ name: String, columns: Int, rows: Int, slice: Range<Int>? = nil) throws -> WeightMatrix {
            try WeightMatrix(file: file, name: name, columns: columns, rows: rows, slice: slice, repack: repackWeights)
        }

        let q = cfg.queryDimension, kv = cfg.kvDimension, ffn = cfg.feedForwardLength, hd = cfg.headDimension
        var layers: [Layer] = []
        layers.reserveCapacity(cfg.layerCount)
        for i in 0..<cfg.layerCount {
            let p = "blk.\(i)."
            // Q, K, V: three matrices, or row ranges of one fused matrix (Phi-3).
            let wq, wk, wv: WeightMatrix
            if file.tensor(named: p + "attn_qkv.weight") != nil {
                let name = p + "attn_qkv.weight", rows = q + 2 * kv
                wq = try matrix(name, columns: dim, rows: rows, slice: 0..<q)
                wk = try matrix(name, columns: dim, rows: rows, slice: q..<(q + kv))
                wv = try matrix(name, columns: dim, rows: rows, slice: (q + kv)..<rows)
            } else {
                wq = try matrix(p + "attn_q.weight", columns: dim, rows: q)
                wk = try matrix(p + "attn_k.weight", columns: dim, rows: kv)
                wv = try matrix(p + "attn_v.weight", columns: dim, rows: kv)
            }
            // Gate and up: two matrices, or the two halves of a fused `ffn_up` (gate first).
            let wGate, wUp: WeightMatrix
            if file.tensor(named: p + "ffn_gate.weight") != nil {
                wGate = try matrix(p + "ffn_gate.weight", columns: dim, rows: ffn)
                wUp = try matrix(p + "ffn_up.weight", columns: dim, rows: ffn)
            } else {
                wGate = try matrix(p + "ffn_up.weight", columns: dim, rows: 2 * ffn, slice: 0..<ffn)
                wUp = try matrix(p + "ffn_up.weight", columns: dim, rows: 2 * ffn, slice: ffn..<(2 * ffn))
            }
            let post = architecture.normalizesSublayerOutputs
            let qk = architecture.normalizesQueryAndKey
            layers.append(Layer(
                attentionNorm: try vector(p + "attn_norm.weight", dim),
                wq: wq, wk: wk, wv: wv,
                qBias: try optionalVector(p + "attn_q.bias", q),
                kBias: try optionalVector(p + "attn_k.bias", kv),
                vBias: try optionalVector(p + "attn_v.bias", kv),
                qNorm: qk ? try vector(p + "attn_q_norm.weight", hd) : nil,
                kNorm: qk ? try vector(p + "attn_k_norm.weight", hd) : nil,
                wo: try matrix(p + "attn_output.weight", columns: q, rows: dim),
                postAttentionNorm: post ? try vector(p + "post_attention_norm.weight", dim) : nil,
                ffnNorm: try vector(p + "ffn_norm.weight", dim),
                wGate: wGate, wUp: wUp,
                wDown: try matrix(p + "ffn_down.weight", columns: ffn, rows: dim),
                postFeedForwardNorm: post ? try vector(p + "post_ffw_norm.weight", dim) : nil))
        }
        self.layers = layers
        self.outputNorm = try vector("output_norm.weight", dim)
        if file.tensor(named: "output.weight") != nil {
            self.output = try matrix("output.weight", columns: dim, rows: cfg.vocabularySize)
        } else {
            self.output = embedding
        }
        self.ropeFrequencyFactors = try optionalVector("rope_freqs.weight", cfg.ropeDimensionCount / 2)
        // Each repacked matrix dropped its file pages as it was copied, but faulting in the next
        // tensor maps neighbouring pages again (the kernel's fault-around, 64 KiB): drop them all
        // once more now that nothing reads them (~13 MB for the default model).
        for m in [tokenEmbedding, output] + layers.flatMap(\.matrices) {
            if let region = m.repackedFrom { file.discardPages(of: region) }
        }
    }

    /// The chat template to use: the named family, else the one recognised in the model's template,
    /// else (a file without one) its architecture's family.
    public func chatTemplate(named name: String? = nil) throws -> ChatTemplate {
        if let name { return try ChatTemplate(named: name) }
        guard let source = chatTemplateSource else {
            if let family = architecture.chatTemplateFamily { return ChatTemplate(family: family) }
            throw InferenceError.unknownChatTemplate("the model has no chat template")
        }
        return try ChatTemplate(recognizing: source)
    }

    /// Bytes of weights one decode step reads: every layer matrix and the output matrix in full,
    /// one row of the token embedding (norms and the KV cache not included).
    public var weightBytesPerToken: Int {
        var total = output.rows * output.rowBytes + tokenEmbedding.rowBytes
        for l in layers {
            for m in l.matrices { total += m.rows * m.rowBytes }
        }
        return total
    }

    /// How many weight matrices (token embedding, output, layer matrices) were repacked at load.
    public var repackedMatrixCount: Int {
        var count = tokenEmbedding.isRepacked ? 1 : 0
        if !hasTiedOutput, output.isRepacked { count += 1 }
        for l in layers {
            for m in l.matrices where m.isRepacked { count += 1 }
        }
        return count
    }

    /// Whether output logits come from the token embedding (tied weights).
    public var hasTiedOutput: Bool { output.base == tokenEmbedding.base }
}
