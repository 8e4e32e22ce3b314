import GGUF

/// What one model architecture (`general.architecture`) changes in the forward pass, as data plus
/// one hook for its own metadata. `InferenceSession.forward` reads these fields; everything an
/// architecture does not set is the `llama` graph (pre-norm RMSNorm, normal RoPE, SwiGLU, softmax
/// scale 1/√head_dim). llama.cpp keeps one graph builder per model in `src/models/`; here each
/// architecture is one file in this folder that defines its value and registers it in `all`.
///
/// Shared by every architecture, read when present: Q/K/V biases (`attn_{q,k,v}.bias`), fused QKV
/// (`attn_qkv.weight`, rows Q then K then V) instead of three matrices, fused gate/up (`ffn_up`
/// with 2·n_ff rows, gate first) instead of `ffn_gate`, `rope_freqs.weight`, a separate
/// `output.weight` (else the output is tied to the token embedding).
public struct Architecture: Sendable {
    /// How RoPE pairs a head's dimensions.
    public enum RopeStyle: Sendable {
        /// Adjacent pairs (x[2i], x[2i+1]): ggml's normal mode (`llama`, whose converter permutes
        /// Q/K rows for it).
        case normal
        /// Halves (x[i], x[i + n_rot/2]): ggml's NeoX mode (Qwen, Gemma, Phi-3).
        case neox
    }

    /// The gated feed-forward's activation: down(act(gate(x)) * up(x)).
    public enum GatedActivation: Sendable {
        /// SiLU (SwiGLU).
        case silu
        /// GELU, tanh approximation, through ggml's f16 table (GeGLU).
        case gelu
    }

    /// `general.architecture`, and the prefix of its metadata keys.
    public let name: String
    public var ropeStyle: RopeStyle = .normal
    public var activation: GatedActivation = .silu
    /// Per-head RMSNorm of Q and K before RoPE (`attn_q_norm.weight`, `attn_k_norm.weight`, one
    /// weight of head_dim for all heads): Gemma 3, Qwen 3.
    public var normalizesQueryAndKey = false
    /// RMSNorm of the attention output and of the feed-forward output before each residual add
    /// (`post_attention_norm.weight`, `post_ffw_norm.weight`): Gemma 3.
    public var normalizesSublayerOutputs = false
    /// Token embeddings multiplied by √n_embd: Gemma.
    public var scalesEmbedding = false
    /// Q multiplied by the attention scale before attention (then rounded to f16 with it), and
    /// softmax scale 1, as Gemma 3 and Phi-3 do in llama.cpp; else the scale is applied to the
    /// scores in the softmax (llama, Qwen).
    public var scalesQueryBeforeAttention = false
    /// The chat format of this family, used when a file has no `tokenizer.chat_template` (the
    /// published Gemma 3 270M file has none); nil where the family has no single format (`llama`).
    public var chatTemplateFamily: ChatTemplate.Family?
    /// Reads what only this architecture has (sliding windows, soft-caps, ...) into the
    /// configuration, after the shared keys are read.
    public var configure: @Sendable (inout ModelConfig, GGUFFile) throws -> Void = { _, _ in }

    public init(name: String) { self.name = name }

    /// Every architecture this engine runs, by name.
    public static let all: [String: Architecture] = Dictionary(
        uniqueKeysWithValues: [llama, qwen2, qwen3, gemma3, phi3].map { ($0.name, $0) })

    /// The architecture named `name`, or the error a user sees for a file of another one.
    public static func named(_ name: String) throws -> Architecture {
        guard let arch = all[name] else { throw InferenceError.unsupportedArchitecture(name) }
        return arch
    }
}
