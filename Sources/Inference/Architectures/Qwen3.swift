extension Architecture {
    /// `qwen3` (Qwen 3 dense): NeoX RoPE and per-head RMSNorm of Q and K before RoPE.
    /// llama.cpp: src/models/qwen3.cpp.
    public static let qwen3: Architecture = {
        var a = Architecture(name: "qwen3")
        a.ropeStyle = .neox
        a.normalizesQueryAndKey = true
        a.chatTemplateFamily = .chatml
        return a
    }()
}
