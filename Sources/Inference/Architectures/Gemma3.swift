import GGUF

extension Architecture {
    /// `gemma3` (Gemma 3 text models): embeddings scaled by √n_embd, per-head Q/K RMSNorm, RMSNorm
    /// of each sublayer's output, GeGLU, NeoX RoPE, Q scaled by 1/√key_length before attention,
    /// and interleaved sliding-window attention: of every `sliding_window_pattern` (default 6)
    /// layers all but the last attend to the last `sliding_window` positions only, with their own
    /// RoPE base (`rope.freq_base_swa`, default 10,000); the others attend to everything with
    /// `rope.freq_base`. An optional final logit soft-cap. (The converter stores Gemma's norm
    /// weights with their +1 already added, so the norms are plain RMSNorms.)
    /// llama.cpp: src/models/gemma3.cpp.
    public static let gemma3: Architecture = {
        var a = Architecture(name: "gemma3")
        a.ropeStyle = .neox
        a.activation = .gelu
        a.normalizesQueryAndKey = true
        a.normalizesSublayerOutputs = true
        a.scalesEmbedding = true
        a.scalesQueryBeforeAttention = true
        a.configure = { config, file in
            if let window = file.int("gemma3.attention.sliding_window"), window > 0 {
                let key = "gemma3.attention.sliding_window_pattern"
                if let flags = file.array(key) {
                    // One flag per layer (newer converters): true = sliding window.
                    guard flags.count >= config.layerCount else {
                        throw InferenceError.invalidMetadata(key, "\(flags.count) flags for \(config.layerCount) layers")
                    }
                    config.slidingWindowLayers = flags.prefix(config.layerCount).map { ($0.boolValue ?? false) || ($0.intValue ?? 0) != 0 }
                } else {
                    let period = file.int(key) ?? 6
                    config.slidingWindowLayers = (0..<config.layerCount).map { period == 0 || $0 % period < period - 1 }
                }
                config.slidingWindow = window
                config.slidingWindowRopeFreqBase = file.float("gemma3.rope.freq_base_swa") ?? 10000
            }
            if let cap = file.float("gemma3.final_logit_softcapping"), cap > 0 { config.finalLogitSoftcap = cap }
            // Gemma 3 27B (62 layers) scales by the query width per head instead (gemma_pytorch).
            if config.layerCount == 62 {
                config.attentionScale = 1 / Float(config.embeddingLength / config.headCount).squareRoot()
            }
        }
        a.chatTemplateFamily = .gemma
        return a
    }()
}
