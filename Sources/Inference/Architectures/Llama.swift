extension Architecture {
    /// `llama` (Llama 2/3.x, SmolLM2, Mistral): the default graph. Llama 3.1+ files carry
    /// `rope_freqs.weight` (per-pair frequency divisors), read for every architecture.
    /// llama.cpp: src/models/llama.cpp.
    public static let llama = Architecture(name: "llama")
}
