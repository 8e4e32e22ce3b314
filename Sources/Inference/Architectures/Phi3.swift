extension Architecture {
    /// `phi3` (Phi-3 / 3.5 mini): NeoX RoPE, fused QKV and fused gate/up matrices (read whenever a
    /// file has them), Q scaled by 1/√head_dim before attention. Phi-3's sliding window is
    /// disabled in llama.cpp (its converters do not record the pattern), so it is ignored here too.
    /// llama.cpp: src/models/phi3.cpp.
    public static let phi3: Architecture = {
        var a = Architecture(name: "phi3")
        a.ropeStyle = .neox
        a.scalesQueryBeforeAttention = true
        a.chatTemplateFamily = .phi3
        return a
    }()
}
