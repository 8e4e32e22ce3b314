extension Architecture {
    /// `qwen2` (Qwen 2 / 2.5): the llama graph with NeoX RoPE and Q/K/V biases (read whenever a
    /// file has them). llama.cpp: src/models/qwen2.cpp.
    public static let qwen2: Architecture = {
        var a = Architecture(name: "qwen2")
        a.ropeStyle = .neox
        a.chatTemplateFamily = .chatml
        return a
    }()
}
