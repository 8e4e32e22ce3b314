import CQuants
/// Why the engine could not load a model, tokenize, render a chat or evaluate tokens.
/// `description` says what was wrong and, where there is one, what to do about it.
public struct InferenceError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable {
        case unsupportedArchitecture
        case missingMetadata
        case invalidMetadata
        case missingTensor
        case badTensorShape
        case unsupportedTensorType
        case unsupportedTokenizer
        case unknownChatTemplate
        case tokenOutOfRange
        case contextFull
        case invalidArgument
        case cancelled
    }

    private let code: Code
    /// What was wrong, in words.
    public let detail: String
    /// The model file, tensor, metadata key or template the error is about, when there is one.
    public let context: String?

    private init(_ code: Code, _ detail: String, context: String? = nil) {
        self.code = code
        self.detail = detail
        self.context = context
    }

    public var description: String {
        if let context { return "\(context): \(detail)" }
        return detail
    }

    /// True when evaluation stopped because the caller cancelled it.
    public var isCancellation: Bool { code == .cancelled }
    /// True when the context window cannot take more tokens.
    public var isContextFull: Bool { code == .contextFull }

    static func unsupportedArchitecture(_ arch: String) -> InferenceError {
        InferenceError(.unsupportedArchitecture,
                       "architecture '\(arch)' is not supported; this engine runs " + Architecture.all.keys.sorted().joined(separator: ", "),
                       context: "general.architecture")
    }

    static func missingMetadata(_ key: String) -> InferenceError {
        InferenceError(.missingMetadata, "required metadata key is missing from the GGUF file", context: key)
    }

    static func invalidMetadata(_ key: String, _ detail: String) -> InferenceError {
        InferenceError(.invalidMetadata, detail, context: key)
    }

    static func missingTensor(_ name: String) -> InferenceError {
        InferenceError(.missingTensor, "required tensor is missing from the GGUF file", context: name)
    }

    static func badTensorShape(_ name: String, expected: [Int], found: [Int]) -> InferenceError {
        InferenceError(.badTensorShape, "tensor has shape \(found), expected \(expected)", context: name)
    }

    static func unsupportedTensorType(_ name: String, type: String) -> InferenceError {
        InferenceError(.unsupportedTensorType,
                       "tensor type \(type) is not supported (supported: \(supportedTypeNames.joined(separator: ", "))); re-quantize the model to one of them",
                       context: name)
    }

    /// The weight types the active kernel path runs, as CQuants names them.
    static var supportedTypeNames: [String] {
        (0..<Int32(CQ_TYPE_COUNT)).compactMap { id in
            guard cq_type_supported(id) != 0, let traits = cq_get_type_traits(id) else { return nil }
            return String(cString: traits.pointee.name)
        }
    }

    static func unsupportedTokenizer(_ key: String, _ detail: String) -> InferenceError {
        InferenceError(.unsupportedTokenizer, detail, context: key)
    }

    static func unknownChatTemplate(_ detail: String) -> InferenceError {
        InferenceError(.unknownChatTemplate, detail + "; pass --template NAME (chatml, llama3, llama2, llama2-sys, mistral-v1, mistral-v3, mistral-v7, zephyr, phi3, gemma)",
                       context: "tokenizer.chat_template")
    }

    static func tokenOutOfRange(_ id: Int, vocabularySize: Int) -> InferenceError {
        InferenceError(.tokenOutOfRange, "token id \(id) is outside the vocabulary (0..<\(vocabularySize))")
    }

    static func contextFull(needed: Int, capacity: Int) -> InferenceError {
        InferenceError(.contextFull,
                       "the context holds \(capacity) tokens but \(needed) are needed; shorten the input or ask for a larger context (--ctx)")
    }

    static func invalidArgument(_ name: String, _ detail: String) -> InferenceError {
        InferenceError(.invalidArgument, detail, context: name)
    }

    static func cancelled() -> InferenceError {
        InferenceError(.cancelled, "generation was cancelled")
    }
}
