import CQuants
import GGUF

/// A Llama-family model loaded from a GGUF file: hyper-parameters, tokenizer and weights, the
/// weights used in place from the file's mapping. Immutable and shareable; evaluation state lives
/// in an `InferenceSession`.
public final class LlamaModel: @unchecked Sendable {
    struct Layer {
        let attentionNorm: [Float]
        let wq: WeightMatrix
        let wk: WeightMatrix
        let wv: WeightMatrix
        let wo: WeightMatrix
        let ffnNorm: [Float]
        let wGate: WeightMatrix
        let wUp: WeightMatrix
        let wDown: WeightMatrix
    }

    /// The memory the weights are read from in place (the file's parsed metadata is not kept).
    public let mapping: GGUFMapping
    public let fileSize: Int
    public let config: LlamaConfig
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
        let config = try LlamaConfig(gguf: file)
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

        func norm(_ name: String, _ n: Int) throws -> [Float] {
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

        let q = cfg.queryDimension, kv = cfg.kvDimension, ffn = cfg.feedForwardLength
        var layers: [Layer] = []
        layers.reserveCapacity(cfg.layerCount)
        for i in 0..<cfg.layerCount {
            let p = "blk.\(i)."
            layers.append(Layer(
                attentionNorm: try norm(p + "attn_norm.weight", dim),
                wq: try WeightMatrix(file: file, name: p + "attn_q.weight", columns: dim, rows: q, repack: repackWeights),
                wk: try WeightMatrix(file: file, name: p + "attn_k.weight", columns: dim, rows: kv, repack: repackWeights),
                wv: try WeightMatrix(file: file, name: p + "attn_v.weight", columns: dim, rows: kv, repack: repackWeights),
                wo: try WeightMatrix(file: file, name: p + "attn_output.weight", columns: q, rows: dim, repack: repackWeights),
                ffnNorm: try norm(p + "ffn_norm.weight", dim),
                wGate: try WeightMatrix(file: file, name: p + "ffn_gate.weight", columns: dim, rows: ffn, repack: repackWeights),
                wUp: try WeightMatrix(file: file, name: p + "ffn_up.weight", columns: dim, rows: ffn, repack: repackWeights),
                wDown: try WeightMatrix(file: file, name: p + "ffn_down.weight", columns: ffn, rows: dim, repack: repackWeights)))
        }
        self.layers = layers
        self.outputNorm = try norm("output_norm.weight", dim)
        if file.tensor(named: "output.weight") != nil {
            self.output = try WeightMatrix(file: file, name: "output.weight", columns: dim, rows: cfg.vocabularySize,
                                            repack: repackWeights)
        } else {
            self.output = embedding
        }
        if file.tensor(named: "rope_freqs.weight") != nil {
            self.ropeFrequencyFactors = try norm("rope_freqs.weight", cfg.ropeDimensionCount / 2)
        } else {
            self.ropeFrequencyFactors = nil
        }
        // Each repacked matrix dropped its file pages as it was copied, but faulting in the next
        // tensor maps neighbouring pages again (the kernel's fault-around, 64 KiB): drop them all
        // once more now that nothing reads them (~13 MB for the default model).
        for m in [tokenEmbedding, output] + layers.flatMap({ [$0.wq, $0.wk, $0.wv, $0.wo, $0.wGate, $0.wUp, $0.wDown] }) {
            if let region = m.repackedFrom { file.discardPages(of: region) }
        }
    }

    /// The chat template to use: the named family, else the one recognised in the model's template.
    public func chatTemplate(named name: String? = nil) throws -> ChatTemplate {
        if let name { return try ChatTemplate(named: name) }
        guard let source = chatTemplateSource else {
            throw InferenceError.unknownChatTemplate("the model has no chat template")
        }
        return try ChatTemplate(recognizing: source)
    }

    /// Bytes of weights one decode step reads: every layer matrix and the output matrix in full,
    /// one row of the token embedding (norms and the KV cache not included).
    public var weightBytesPerToken: Int {
        var total = output.rows * output.rowBytes + tokenEmbedding.rowBytes
        for l in layers {
            for m in [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown] { total += m.rows * m.rowBytes }
        }
        return total
    }

    /// How many weight matrices (token embedding, output, layer matrices) were repacked at load.
    public var repackedMatrixCount: Int {
        var count = tokenEmbedding.isRepacked ? 1 : 0
        if !hasTiedOutput, output.isRepacked { count += 1 }
        for l in layers {
            for m in [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown] where m.isRepacked { count += 1 }
        }
        return count
    }

    /// Whether output logits come from the token embedding (tied weights).
    public var hasTiedOutput: Bool { output.base == tokenEmbedding.base }
}
