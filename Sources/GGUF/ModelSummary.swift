/// What `outpost model info` reports about a model file, derived from its GGUF metadata and
/// tensor table alone (no weights are read).
public struct ModelSummary: Sendable, Equatable, Codable {
    public var architecture: String
    public var name: String?
    /// Sum of the element counts of every tensor.
    public var parameters: Int
    public var contextLength: Int?
    public var embeddingLength: Int?
    public var layers: Int?
    public var heads: Int?
    public var kvHeads: Int?
    public var vocabSize: Int?
    /// Tensor type name → number of tensors of that type.
    public var tensorTypes: [String: Int]
    /// The file's quantization, from `general.file_type` or else the dominant weight type.
    public var quantization: String
    public var fileBytes: Int
    public var ggufVersion: Int
    public var tensorCount: Int

    enum CodingKeys: String, CodingKey {
        case architecture, name, parameters
        case contextLength = "context_length"
        case embeddingLength = "embedding_length"
        case layers, heads
        case kvHeads = "kv_heads"
        case vocabSize = "vocab_size"
        case tensorTypes = "tensor_types"
        case quantization
        case fileBytes = "file_bytes"
        case ggufVersion = "gguf_version"
        case tensorCount = "tensor_count"
    }

    public init(_ file: GGUFFile) {
        let arch = file.string("general.architecture") ?? "unknown"
        architecture = arch
        name = file.string("general.name")
        parameters = file.tensors.reduce(0) { $0.addingReportingOverflow($1.elementCount).partialValue }
        contextLength = file.int("\(arch).context_length")
        embeddingLength = file.int("\(arch).embedding_length")
        layers = file.int("\(arch).block_count")
        heads = file.int("\(arch).attention.head_count")
        kvHeads = file.int("\(arch).attention.head_count_kv") ?? heads
        vocabSize = file.int("\(arch).vocab_size") ?? file.arrayCount("tokenizer.ggml.tokens")
        var types: [String: Int] = [:]
        for t in file.tensors { types[t.type.name, default: 0] += 1 }
        tensorTypes = types
        quantization = Self.fileTypeName(file.int("general.file_type")) ?? Self.dominantWeightType(file)
        fileBytes = file.fileSize
        ggufVersion = Int(file.version)
        tensorCount = file.tensors.count
    }

    /// llama.cpp's `llama_ftype` names (`general.file_type`).
    static func fileTypeName(_ fileType: Int?) -> String? {
        guard let fileType else { return nil }
        let names: [Int: String] = [
            0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
            10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
            16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
            22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
            28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
            37: "TQ2_0", 38: "MXFP4_MOE",
        ]
        return names[fileType]
    }

    /// The type holding the most bytes among matrices, for files without `general.file_type`.
    static func dominantWeightType(_ file: GGUFFile) -> String {
        var bytes: [GGMLType: Int] = [:]
        for t in file.tensors where t.dimensions.count >= 2 {
            bytes[t.type, default: 0] += t.byteCount ?? 0
        }
        return bytes.max { $0.value < $1.value || ($0.value == $1.value && $0.key.rawValue > $1.key.rawValue) }?.key.name ?? "unknown"
    }
}
